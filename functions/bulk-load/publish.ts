/**
 * Publish — check every build result (verified by Build; counts, ranges, shards, unique paths), HeadObject every SST
 * file (present, with its verified size; no re-read), write the immutable manifest, mark STAGED.
 *
 * Input: PlanPointer. Output: PlanPointer + { manifestKey, records, duplicates, skipped, entries, files, bytes,
 * emptyShards }.
 */
import { ENV, requireEnv } from "../../core/env.js";
import type { PlanPointer } from "../../core/pipeline/plan.js";
import { type PublishOutput, publish } from "../../core/pipeline/publish.js";

export async function handler(event: PlanPointer): Promise<PublishOutput> {
  return publish(event, requireEnv(ENV.controlTable));
}
