/**
 * MarkFailed — the Catch target of every state: the version becomes FAILED with the error (unless another execution
 * owns it), the fleet directive is withdrawn if it still targets this version; the active version is untouched.
 *
 * Input: { state: <the failing state's input with error: {Error, Cause}>, executionInput, execution }.
 * Output: { dataset, version, status, error, cause } — the state machine then fails with the same error and cause.
 */
import { withdrawDirective } from "../../core/control/fleet.js";
import { ENV, requireEnv } from "../../core/env.js";
import { failureTarget, markFailed } from "../../core/pipeline/publish.js";

interface MarkFailedEvent {
  state?: Record<string, unknown>;
  executionInput?: Record<string, unknown>;
  execution?: string;
}

export async function handler(event: MarkFailedEvent) {
  const table = requireEnv(ENV.controlTable);
  const target = failureTarget(event.state ?? {}, event.executionInput ?? {});
  const out = await markFailed(target, table, process.env[ENV.dataBucket]);
  if (target.fleet && out.dataset && out.version && out.status === "FAILED") {
    await withdrawDirective(table, { fleet: target.fleet, dataset: out.dataset, version: out.version });
  }
  return out;
}
