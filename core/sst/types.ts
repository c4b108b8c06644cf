/**
 * Public types of core/sst. See docs/sst.md and /work/shared/docs/sst-format.md.
 */

/** Where an SST file's bytes go (a local file, an S3 multipart upload, memory). */
export interface ByteSink {
  /**
   * Takes ownership of `chunk` (the writer never reuses a chunk it handed over). May return a promise when the sink
   * wants back-pressure: the writer awaits it before handing over the next chunk.
   */
  write(chunk: Uint8Array): void | Promise<void>;
  /** All bytes written: make them durable/visible (fsync + rename, complete the multipart upload). */
  close(): Promise<void>;
  /**
   * true when write() is done with the chunk by the time it returns without a promise (e.g. a synchronous file
   * write): the writer may then reuse the chunk's memory instead of allocating a new one.
   */
  readonly consumesSynchronously?: boolean;
  /** Give up: remove partial output (temp file, abort the multipart upload). Never leave a file that looks valid. */
  abort?(err?: unknown): Promise<void>;
}

export type SstCompression = "none" | "snappy" | "lz4" | "zstd";

export interface SstWriterOptions {
  /** block compression (default "none") */
  compression?: SstCompression;
  /** full bloom filter bits per key; 0 = no filter (default SST.bloomBitsPerKey) */
  bloomBitsPerKey?: number;
  /** target uncompressed data block size in bytes (default SST.blockSize) */
  blockSize?: number;
  /** name used in error messages (file path, s3 key) */
  name?: string;
  /** write rocksdb.creating.session.identity + rocksdb.original.file.number (fresh random per file; default true) */
  sessionIdentity?: boolean;
  /** rocksdb.creation.time property (seconds since epoch; default 0 as SstFileWriter writes). */
  creationTime?: number;
  /**
   * compress data blocks on a worker thread (pooled, at most availableParallelism() - 1 per process; env
   * FERRY_SST_COMPRESSION_THREADS overrides, 0 = never) while this thread builds the next ones. The output bytes are
   * identical either way. Default: true for compressed codecs; for "none" only when set to true explicitly (the
   * worker then computes CRCs and bloom hashes: measured, that costs more CPU than it saves).
   */
  parallelCompression?: boolean;
}

export interface SstFileInfo {
  smallestKey: Uint8Array;
  largestKey: Uint8Array;
  entries: number;
  /** file size in bytes */
  bytes: number;
  /** hex sha256 of the whole file */
  sha256: string;
  /** sum of user key bytes and value bytes (uncompressed payload) */
  rawKeyBytes: number;
  rawValueBytes: number;
  /** index of the file in an SstFileSetWriter set (0 for a single writer) */
  index: number;
}

export interface SstFileSetWriterOptions extends SstWriterOptions {
  /** roll over to a new file once the current one passes this many bytes (only between keys; default SST.targetFileSize) */
  targetFileSize?: number;
}

/** Random-access bytes (a local file, an in-memory buffer, ranged S3 reads). */
export interface RandomAccessSource {
  size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  /** optional synchronous read: enables SstReader.getSync() (the serving store's fast path) */
  readSync?(offset: number, length: number): Uint8Array;
  close?(): Promise<void>;
  /** name used in error messages */
  name?: string;
}

export interface SstScanOptions {
  /** inclusive lower bound */
  from?: Uint8Array;
  /** exclusive upper bound */
  to?: Uint8Array;
  limit?: number;
}

export interface SstReaderOptions {
  /** block cache capacity in bytes (default SST.blockCacheBytes) */
  blockCacheBytes?: number;
  /** verify block checksums on every read (default true) */
  verifyChecksums?: boolean;
}

/** Decoded table properties (numbers as number, strings as string, unknown/binary ones as hex). */
export interface SstProperties {
  [name: string]: string | number | bigint;
}

export interface BlockHandle {
  offset: number;
  size: number;
}
