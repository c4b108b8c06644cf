/**
 * WaitForHosts — one coverage poll (the state machine loops Wait → WaitForHosts until `covered`).
 *
 * Input: Signal's output (flat, or under `signal`).
 * Output: the input plus { covered: boolean, failed: [{host, error}], uncovered: number[], deadlinePassed: boolean }.
 * Throws HostsNotReadyError (error name "HostsNotReadyError", not retryable; catch → MarkFailed) naming the uncovered
 * shards when a host reported FAILED or the deadline passed without coverage. The active version keeps serving.
 */
import { type WaitForHostsOutput, waitForHostsStep } from "../../core/control/fleet.js";
import { ENV, requireEnv } from "../../core/env.js";
import { signalOutputSchema } from "./cutover.js";
import { parseInput } from "./signal.js";

export async function handler(event: unknown): Promise<WaitForHostsOutput> {
  const input = parseInput(signalOutputSchema, event, "WaitForHosts");
  return waitForHostsStep(requireEnv(ENV.controlTable), input);
}
