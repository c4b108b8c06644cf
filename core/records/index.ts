/**
 * core/records: input readers (JSONL, CSV, Parquet; gzip/zstd) and record → key/value mapping.
 * See docs/data-plane.md.
 */
export { compressionFromMagic, compressionFromName, decompress } from "./compression.js";
export {
  canonicalString,
  decodeTupleKey,
  decodeTupleKeyStrings,
  encodeTupleKey,
  type KeyKind,
  keyProblem,
  printableKey,
  scalarBytes,
} from "./key.js";
export { type FastJsonlMapper, type FastJsonlOptions, makeFastJsonlMapper } from "./jsonl-fast.js";
export {
  isSkipped,
  type MappedRecord,
  type MapResult,
  makeRecordMapper,
  type RecordMapper,
  type RecordMapperOptions,
  type SkippedRecord,
  valueJson,
} from "./mapper.js";
export {
  chunkId,
  chunkIndex,
  forEachJsonlLine,
  type InputObject,
  jsonlRecord,
  type PlanChunksOptions,
  parquetRowGroups,
  planChunks,
  type ReadOptions,
  readChunk,
  readParquetMetadata,
  type SourceRecord,
  where,
} from "./readers.js";
export {
  fileObject,
  memoryObject,
  memoryStore,
  type ObjectReader,
  type OpenObject,
  openS3Object,
  s3Url,
} from "./source.js";
