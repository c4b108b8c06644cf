/**
 * Build — one Distributed Map item: merge one bucket's run segments into SST files (core/pipeline/build.ts).
 *
 * Input (ItemSelector): { bucket: Bucket, dataBucket, planKey, runsKey }
 * Output: { bucketId, files, entries, bytes, reused } (the full BuildResult is stored at results/build/<bucket>.json)
 */
import { type BuildTaskArgs, type BuildTaskResult, buildTask } from "../../core/pipeline/publish.js";

export async function handler(event: BuildTaskArgs): Promise<BuildTaskResult> {
  return buildTask(event);
}
