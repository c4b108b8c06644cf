/**
 * Partition — one Distributed Map item: partition one chunk into one run object (core/pipeline/partition.ts).
 *
 * Input (ItemSelector): { chunk: Chunk, dataBucket, planKey }
 * Output: { chunkId, records, skipped, reused } (the full PartitionResult is stored at results/partition/<chunk>.json)
 */
import { type PartitionTaskArgs, type PartitionTaskResult, partitionTask } from "../../core/pipeline/plan.js";

export async function handler(event: PartitionTaskArgs): Promise<PartitionTaskResult> {
  return partitionTask(event);
}
