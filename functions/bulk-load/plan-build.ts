/**
 * PlanBuild — gather the partition results, enforce the bad-records limit, write runs.json, mark PARTITIONED.
 *
 * Input: PlanPointer (Plan's output). Output: PlanPointer + { records, skipped }.
 */
import { ENV, requireEnv } from "../../core/env.js";
import { type PlanPointer, planBuild } from "../../core/pipeline/plan.js";

export async function handler(event: PlanPointer): Promise<PlanPointer & { records: number; skipped: number }> {
  return planBuild(event, requireEnv(ENV.controlTable));
}
