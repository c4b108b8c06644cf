/**
 * Build — one Distributed Map item: merge one bucket's run segments into SST files (core/pipeline/build.ts), then
 * re-read every file it uploaded (size + sha256 of the landed bytes, SST properties) and record it as verified.
 *
 * Input (ItemSelector): { bucket: Bucket, dataBucket, planKey, runsKey }
 * Output: { bucketId, files, entries, bytes, reused } (the full BuildResult is stored at results/build/<bucket>.json)
 */
import { type BuildTaskArgs, type BuildTaskResult, buildTask } from "../../core/pipeline/publish.js";

export async function handler(event: BuildTaskArgs): Promise<BuildTaskResult> {
  return buildTask(event);
}
