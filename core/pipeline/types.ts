/**
 * The bulk-load pipeline's contracts between tasks. Step payloads stay small: tasks pass these small objects and
 * S3 keys, never data. Definitions (what the user asked for) and runtime state (a planned version) are separate
 * types. Written once here so Plan, Partition, Build and Publish agree.
 */

export type InputFormat = "jsonl" | "csv" | "parquet";
export type InputCompression = "none" | "gzip" | "zstd";
export type SstCompression = "none" | "snappy" | "lz4" | "zstd";
export type DuplicatePolicy = "error" | "last" | "first";
export type BadRecordPolicy = "fail" | "skip";

/** What the user asked for (validated by core/pipeline/config.ts with zod). */
export interface LoadRequest {
  dataset: string;
  version: string;
  /** s3://bucket/prefix-or-key */
  input: string;
  format: InputFormat;
  /** auto-detected from the object name (.gz, .zst) when absent */
  compression?: InputCompression;
  key: string[];
  /** value = JSON object of these columns (default: all but the key columns) */
  value?: string[];
  /** value = the raw bytes (UTF-8) of this one column */
  valueRaw?: string;
  /**
   * CSV only: split large uncompressed CSV objects into byte ranges (default PIPELINE.csvSplit). Unsafe when quoted
   * fields contain newlines: such a file fails with an InputError telling to set this to false.
   */
  csvSplit?: boolean;
  shards: number;
  duplicates: DuplicatePolicy;
  badRecords: BadRecordPolicy;
  maxBadRecords: number;
  sstCompression: SstCompression;
  bloomBitsPerKey: number;
  targetFileSize: number;
  /** serving fleet to signal; absent = stage and activate directly */
  fleet?: string;
  minReplicas: number;
  keepVersions: number;
}

/** One unit of Partition work: a whole object, a byte range of a splittable one, or Parquet row groups. */
export interface Chunk {
  /** stable id, also the run object name: staging/<d>/<v>/runs/<id>.run */
  id: string;
  bucket: string;
  key: string;
  /** byte range [start, end) for JSONL/CSV: the chunk owns the lines that START inside it */
  start?: number;
  end?: number;
  /** Parquet: row groups [first, last] */
  rowGroups?: [number, number];
  /** object size, for progress */
  size: number;
  /** position of the chunk in input order (0-based; planChunks sets it, the id ends with it). Orders duplicates. */
  index?: number;
  /** the object's compression when not "none" (compressed objects are one chunk each) */
  compression?: InputCompression;
}

/** One unit of Build work: one shard x one key range [lowerKey, upperKey) (hex; empty = open end). */
export interface Bucket {
  /** zero-padded, sorts in key order within the shard: e.g. "s0003-b0002" */
  id: string;
  shard: number;
  /** index of this bucket in plan.buckets (also its index in every run's segment table) */
  index: number;
  lowerKey: string;
  upperKey: string;
}

/** staging/<d>/<v>/plan.json */
export interface Plan {
  request: LoadRequest;
  dataBucket: string;
  createdAt: string;
  chunks: number;
  buckets: Bucket[];
  inputBytes: number;
}

/** What Partition returns per chunk (small: goes through the Map's ResultWriter). */
export interface PartitionResult {
  chunkId: string;
  runKey: string;
  records: number;
  skipped: number;
  /** up to a few examples of skipped records: "s3://b/k line 12: ..." */
  skippedExamples: string[];
  bytesIn: number;
  /** the run object's size (absent in results written before it was recorded): Build then needs no HEAD per run */
  runBytes?: number;
}

/** What Build returns per bucket. */
export interface BuildResult {
  bucketId: string;
  shard: number;
  recordsIn: number;
  duplicates: number;
  files: Array<{
    shard: number;
    /** relative to versions/<d>/<v>/ */
    path: string;
    smallestKey: string;
    largestKey: string;
    entries: number;
    bytes: number;
    sha256: string;
    /**
     * Xxh3x2 (core/aws/s3.ts: 128-bit, non-cryptographic) of the bytes as they went to the upload, which Build's
     * verification re-read compares instead of re-doing sha256 (see verifyBuiltFile). Not in the manifest (its
     * schema keeps sha256 only). Absent in results written by older builds: those verify by sha256.
     */
    xxh3x2?: string;
  }>;
  /**
   * Set by Build once every file was re-read from S3 after its upload (size and checksum — xxh3x2, else sha256 — of
   * the landed bytes, SST properties read back); Publish refuses a result without it. `files`/`bytes` are what was verified.
   */
  verified?: { method: string; files: number; bytes: number };
}
