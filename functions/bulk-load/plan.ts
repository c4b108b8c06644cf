/**
 * Plan — validate the load request, list the input, write plan.json / chunks.jsonl / buckets.jsonl, register the
 * version PLANNED. See core/pipeline/plan.ts.
 *
 * Input: { input: <execution input>, execution: $$.Execution.Name } where the execution input is
 *   { request: {dataset, version?, input, format, key, ...} } or the request itself (CLI, `ferry load`), or
 *   { dataset, trigger: {kind, time, bucket?, key?}, config? } (EventBridge triggers).
 * Output: PlanPointer (small; S3 keys only). `alreadyDone: true` when the version is already published.
 */
import { ENV, requireEnv } from "../../core/env.js";
import { getDataset } from "../../core/control/datasets.js";
import { requestFromTrigger } from "../../core/pipeline/config.js";
import { type PlanPointer, planLoad } from "../../core/pipeline/plan.js";

interface PlanEvent {
  input?: Record<string, unknown>;
  execution?: string;
}

export async function handler(event: PlanEvent): Promise<PlanPointer> {
  const table = requireEnv(ENV.controlTable);
  const dataBucket = requireEnv(ENV.dataBucket);
  const input = (event?.input ?? event ?? {}) as Record<string, unknown>;
  let request: unknown = input.request ?? input;
  if (input.trigger) {
    const dataset = String(input.dataset ?? "");
    const stored = input.config ? undefined : (await getDataset(table, dataset))?.config;
    request = requestFromTrigger(input, stored);
  }
  return planLoad({ request, dataBucket, table, execution: event?.execution });
}
