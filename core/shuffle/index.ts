/** core/shuffle: sharding, run objects (sorted per-bucket segments), k-way merge. See docs/data-plane.md. */
export { murmur3_32, murmur3_32Range, SHARD_HASH, shardOf } from "./shard.js";
export { type KeyTable, keyPrefix, sortKeys } from "./sort.js";
export {
  compareBytes,
  compareColumns,
  kWayMerge,
  kWayMergeBatches,
  kWayMergeKeyed,
  type MergedBatch,
  mergeSegmentColumns,
} from "./merge.js";
export {
  compareRunRecords,
  decodeHeader,
  encodeHeader,
  parseRecords,
  RUN_ENTRY_BYTES,
  RUN_HEADER_BYTES,
  RUN_MAGIC,
  type RunEntry,
  type RunHeader,
  type RunMeta,
  type RunRecord,
  type RunSummary,
  RunWriter,
  type RunWriterOptions,
  readRunEntry,
  readRunIndex,
  readRunMeta,
  readSegment,
  readSegmentBatches,
  parseRecordBatches,
  parseSegmentColumns,
  readSegmentColumns,
  type SegmentBatch,
} from "./run.js";
export { memorySinks, type OpenSink, openS3Sink } from "./io.js";
export { decodeVarint, readVarint, varintEnd, varintLength, writeVarint } from "./varint.js";
