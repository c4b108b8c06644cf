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
  /** writer: shared block ring for parallel sealing, ~this many bytes (slots of ~2 x blockSize, 4..128 of them) */
  sealRingBytes: 1100 * KiB,
  /** writer: blocks larger than this are never pipelined (sealed on the writer's thread) */
  sealRingMaxBlockSize: 1 * MiB,
  /** writer: event-loop turn every this many lz4/zstd blocks (native codecs' output buffers are freed on a turn) */
  nativeCodecTurnEvery: 256,
  /** writer: a compression worker that makes no progress for this long is an EnvironmentError */
  sealWorkerStallMs: 120_000,
} as const;

/** Bulk-load pipeline (core/records, core/shuffle, core/manifest, functions/bulk-load). */
export const PIPELINE = {
  defaultShards: 8,
  maxShards: 4096,
  /** byte-range chunk size for splittable inputs (JSONL/CSV): one Partition task each */
  chunkBytes: 128 * MiB,
  /** target SST bytes per bucket (one shard x one key range) */
  bucketTargetBytes: 256 * MiB,
  /**
   * Every Build reads one segment from every run object: chunks × buckets segment reads. Past ~16 GiB of input, Plan
   * grows the chunk size and the bucket target together (core/pipeline/plan.ts scaledSizes) so the average segment
   * stays at least this big: at 50 TB, ~7 GB chunks and buckets (~7,000 each, ~5×10⁷ reads) instead of 128 MiB chunks
   * and 256 MiB buckets (~370,000 × 186,000 ≈ 6.9×10¹⁰ reads of ~700 bytes).
   */
  minSegmentBytes: 1 * MiB,
  /**
   * the most scaledSizes grows a chunk or a bucket to (one Lambda of 15 minutes: ~8 GiB at ~40 MB per CPU-second is
   * ~3.5 minutes of scanning plus spills); past ~64 TiB of input the segments get smaller instead
   */
  maxScaledBytes: 8 * 1024 * MiB,
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
  // ---- data plane (core/records, core/shuffle, partition/build) ----
  /** longest input line / record accepted (a JSONL line, a CSV record) */
  maxRecordBytes: 80 * MiB,
  /** split large uncompressed CSV objects by byte range (fails clearly on quoted newlines) */
  csvSplit: true,
  /** Partition: sorted records kept in memory before a sorted sub-run is spilled to local disk */
  partitionMemoryBytes: 256 * MiB,
  /** Build/merge: bytes per ranged GET when streaming a run segment (2 windows in memory per merged run); minimum */
  segmentReadBytes: 1 * MiB,
  /**
   * Build: memory for the segment read windows of one merge (windows grow past segmentReadBytes while runs are few;
   * 128 MiB = 8 MiB windows for up to 8 runs, 1 MiB from 64 runs on). Measured (session 3, one 125 MB bucket from 8
   * runs on the local stack, A/B interleaved): 8 MiB windows took 10-15% less of Build's CPU than 2 or 4 MiB
   * windows (fewer GETs at ~2-3 ms of SDK CPU each, fewer and larger parse batches). One Build per Lambda (3008 MB)
   * holds at most this much in windows; the local runner's 8 builds in one process hold 8x.
   */
  buildReadBudgetBytes: 128 * MiB,
  /**
   * input bytes Plan reads per sampled chunk (spread over a few windows of byte-range chunks). 256 KiB of ~100-byte
   * records is ~2,500 records for the 1,000 keys kept; Plan parses all of it in one Lambda, so at the sampleMaxChunks
   * cap (2,000 chunks) this bounds Plan's sampling to ~0.5 GiB (1 MiB per chunk was 2 GiB: minutes of CPU)
   */
  sampleBytesPerChunk: 256 * 1024,
  /** Plan samples at most this many chunks (evenly spaced), weights scaled to the whole input */
  sampleMaxChunks: 2000,
  /** duplicate-key examples named in an InputError (policy "error") and skipped-record examples kept */
  maxExamples: 5,
} as const;

/**
 * WebAssembly JSONL scanner (core/records/jsonl-wasm.ts, one module instance and memory per Partition task).
 * Memory per task besides the RunWriter's arena and input stage: these two regions, 16 bytes × maxGaps of tables
 * (1 MiB) and ~10 KiB more, ~3 MiB in all (all committed only as touched).
 */
export const JSONL_WASM = {
  /** composite keys and `value`-column objects are assembled here; a line needing more takes the JS path */
  scratchBytes: 1 * MiB,
  /** a line handed in from outside the module's memory is copied here first; longer ones take the JS path */
  lineCopyBytes: 1 * MiB,
  /** whitespace runs and cut key members per line (value segments; 16 bytes each); a line with more takes the JS path */
  maxGaps: 65536,
  /** records Partition's batched line loop (mapAppendLines) maps, routes and appends per call into the module */
  appendRows: 4096,
} as const;

/** The S3 client's GET transport (core/aws/lean-http.ts). */
export const S3_HTTP = {
  /** each connection reads into one buffer of this size (net/tls `onread`): the most one socket read can return */
  readBufferBytes: 256 * KiB,
  /** body bytes a response buffers (copies) before its consumer asks for them; past this the socket is paused */
  pendingBytes: 1 * MiB,
  /** a response head (status line + headers) longer than this is an error */
  maxHeadBytes: 64 * KiB,
  /** idle keep-alive connections kept per endpoint */
  maxIdlePerOrigin: 64,
  /** no byte from the server for this long while a request is open: the connection is dropped (ETIMEDOUT) */
  socketTimeoutMs: 120_000,
  /** connection establishment (TCP + TLS) */
  connectTimeoutMs: 10_000,
} as const;

/** Serving hosts (host/). */
export const HOST = {
  pollIntervalMs: 2000,
  heartbeatIntervalMs: 5000,
  /** a host whose heartbeat is older than this is not counted for coverage */
  heartbeatStaleMs: 30_000,
  downloadConcurrency: 4,
  downloadPartBytes: 8 * MiB,
  /** megabits per second for all of a host's downloads together (token bucket); 0 = no cap */
  maxDownloadMbps: 0,
  batchGetMaxKeys: 1000,
  /** versions a host keeps per dataset: the active one and the previous one (rollback); a load in flight is extra */
  keepVersions: 2,
  /** host-load item progress updates at most this often */
  progressReportMs: 1000,
  /** a load that failed for a transient reason (network, throttling) is tried again after this */
  loadRetryMs: 5000,
  /** per-version store: block cache of a RocksDB store / shared budget of an sst store's readers */
  storeBlockCacheBytes: 64 * MiB,
  /** reference KV server: largest request body (batchGet JSON) */
  serverMaxBodyBytes: 4 * MiB,
} as const;

/** Event ingestion (core/events, functions/events, infra/constructs/event-ingestion.ts). See docs/events.md. */
export const EVENTS = {
  /** one event as canonical JSON (the SQS message body) */
  maxEventBytes: 64 * KiB,
  maxPayloadBytes: 48 * KiB,
  maxEntityKeyBytes: 512,
  maxEventIdBytes: 128,
  maxTypeChars: 64,
  /** events per accept request */
  maxBatchEvents: 500,
  /** accept request body */
  maxRequestBytes: 6 * MiB,
  /** SendMessageBatch: entries per call (SQS limit) and bytes per call (kept under the 256 KiB classic limit) */
  sendBatchEntries: 10,
  sendBatchBytes: 240 * KiB,
  /** SendMessageBatch attempts for entries that failed (partial failures, throttling) */
  sendAttempts: 4,
  sendBackoffMs: 50,
  /** SendMessageBatch calls in flight per accept request */
  sendConcurrency: 8,
  /** history entries returned by a state read (newest N, shown oldest first); storage keeps all */
  historyLimit: 1000,
  consumerBatchSize: 100,
  consumerBatchingWindowSeconds: 1,
  consumerMaxConcurrency: 10,
  maxReceiveCount: 5,
  consumerTimeoutSeconds: 30,
  /** entities whose known `latest` (time, id) a consumer process remembers to skip writes that cannot win */
  latestFloorEntries: 50_000,
  /** visibility timeout = this × consumer timeout (AWS: at least 6×) */
  visibilityTimeoutFactor: 6,
  /** alarms: DLQ depth above this; oldest message older than this */
  dlqAlarmThreshold: 0,
  queueAgeAlarmSeconds: 300,
  /** DLQ/queue retention */
  dlqRetentionDays: 14,
  queueRetentionDays: 4,
} as const;

/** Local Step Functions runner (local/sfn). */
export const LOCAL_SFN = {
  /** concurrency of a Map whose MaxConcurrency is 0/absent (the service: up to 10,000 for Distributed Maps) */
  defaultMapConcurrency: 16,
  /** local cap on any Map's concurrency (handlers share this process: 1,000 Partition tasks at once would not fit) */
  maxMapConcurrency: 16,
  /** TimeoutSeconds given to Task states that set none (handlers run in process, slower than Lambda) */
  taskTimeoutSeconds: 3600,
} as const;

/** Local SQS → Lambda event source mapping emulation (local/event-source). */
export const LOCAL_ESM = {
  /** pollers (= concurrent invocations) when ScalingConfig.MaximumConcurrency is absent (Lambda starts with 5) */
  defaultConcurrency: 5,
  /** ReceiveMessage long-poll wait (Lambda uses 20 s). stop() waits for a running poll: an aborted one would live on
   * in the emulator and swallow the next messages, so polls are kept short */
  receiveWaitSeconds: 1,
  /** function timeout when the mapping's function declares none (Lambda's default is 3 s; ferry's consumers set 30) */
  functionTimeoutSeconds: 30,
} as const;

export const UNITS = { KiB, MiB, GiB } as const;
