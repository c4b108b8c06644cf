/**
 * Every limit and default in ferry lives here, one section per area. Docs (docs/limits.md) describe them.
 * Change a number here, nowhere else.
 */
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** SST files (core/sst). */
export const SST = {
  /** target uncompressed size of a data block before it is cut */
  blockSize: 4 * KiB,
  /** restart interval in data blocks (RocksDB default) */
  restartInterval: 16,
  /** bits per key for the full bloom filter; 0 disables it */
  bloomBitsPerKey: 10,
  /** a compressed block is kept only when it is smaller than this share of the raw block (RocksDB: 7/8) */
  minCompressionRatio: 7 / 8,
  /** largest user key accepted */
  maxKeyBytes: 64 * KiB,
  /** largest value accepted */
  maxValueBytes: 64 * MiB,
  /** file-set writer: roll over to a new file past this many bytes */
  targetFileSize: 256 * MiB,
  /** reader: block cache capacity in bytes */
  blockCacheBytes: 64 * MiB,
} as const;

/** Bulk-load pipeline (core/records, core/shuffle, core/manifest, functions/bulk-load). */
export const PIPELINE = {
  defaultShards: 8,
  maxShards: 4096,
  /** byte-range chunk size for splittable inputs (JSONL/CSV): one Partition task each */
  chunkBytes: 128 * MiB,
  /** target SST bytes per bucket (one shard x one key range) */
  bucketTargetBytes: 256 * MiB,
  /** keys sampled per chunk by Plan to choose split points */
  sampleKeysPerChunk: 1000,
  /** bounded fan-in of the k-way merge; more runs than this add a merge round */
  mergeFanIn: 64,
  maxBadRecords: 0,
  keepVersions: 3,
  /** Step Functions Distributed Map concurrency */
  mapMaxConcurrency: 1000,
  /** how long WaitForHosts waits for coverage before failing */
  waitForHostsSeconds: 1800,
  waitPollSeconds: 5,
  minReplicas: 1,
} as const;

/** Serving hosts (host/). */
export const HOST = {
  pollIntervalMs: 2000,
  heartbeatIntervalMs: 5000,
  /** a host whose heartbeat is older than this is not counted for coverage */
  heartbeatStaleMs: 30_000,
  downloadConcurrency: 4,
  downloadPartBytes: 8 * MiB,
  /** 0 = no cap */
  maxDownloadMbps: 0,
  batchGetMaxKeys: 1000,
  keepVersions: 2,
} as const;

/** Event ingestion (core/events, functions/events). */
export const EVENTS = {
  maxEventBytes: 64 * KiB,
  maxPayloadBytes: 48 * KiB,
  maxEntityKeyBytes: 512,
  maxEventIdBytes: 128,
  maxBatchEvents: 500,
  /** history entries kept per entity */
  historyLimit: 1000,
  consumerBatchSize: 100,
  consumerBatchingWindowSeconds: 1,
  consumerMaxConcurrency: 10,
  maxReceiveCount: 5,
  consumerTimeoutSeconds: 30,
} as const;

export const UNITS = { KiB, MiB, GiB } as const;
