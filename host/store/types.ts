/**
 * Per-version stores for serving hosts. One VersionStore = one dataset version on this host, in its own directory
 * (the host agent chooses `<data-dir>/<dataset>/<version>/db`). Load beside the active one, switch reads on cutover,
 * destroy() when the version is retired.
 *
 * Backends:
 * - "rocksdb": real RocksDB (Debian librocksdb 7.8.x) through its C API, loaded with koffi. Ingest is
 *   IngestExternalFile with move_files (a hard link: the files must be on the same filesystem as the store dir).
 * - "sst": a read-only store over core/sst (SstReader per file, bloom filter + block cache). Ingest moves the files
 *   into the store dir (rename) and opens them. The embedded default when librocksdb is absent.
 */

/** Keys and values are raw bytes. */
export type Bytes = Uint8Array;

export interface StoreStats {
  backend: "rocksdb" | "sst";
  dataset: string;
  version: string;
  dir: string;
  /** SST files ingested so far (this process's view; after reopen: files found in the store) */
  files: number;
  /** entries ingested (sum of the ingested files' entries; estimate for rocksdb: rocksdb.estimate-num-keys) */
  entries: number;
  /** bytes of SST data held by the store */
  bytes: number;
  /** reads served since open */
  gets: number;
  /** gets that found nothing */
  misses: number;
  closed: boolean;
}

export interface VersionStore {
  readonly backend: "rocksdb" | "sst";
  readonly dataset: string;
  readonly version: string;
  /** the store's own directory (deleted by destroy()) */
  readonly dir: string;
  /**
   * Ingest complete, already verified SST files (sha256/size checked by the caller against the manifest).
   * The files are MOVED into the store (hard link or rename: same filesystem as `dir`); after success the source
   * paths are gone. Files of one call must not overlap each other in key range (one shard's files never do).
   * Idempotent at the call level only in the sense that a failed call leaves the store as it was.
   * Throws CorruptionError for a file that is not a valid SST, ValidationError for overlapping/empty input.
   */
  ingest(files: string[]): Promise<void>;
  /** point read; undefined when absent */
  get(key: Bytes): Promise<Bytes | undefined>;
  /** synchronous point read (both backends support it: RocksDB's C API is synchronous, core/sst reads with pread) */
  getSync(key: Bytes): Bytes | undefined;
  /** values in the order of `keys` */
  multiGet(keys: Bytes[]): Promise<(Bytes | undefined)[]>;
  /** synchronous multiGet (rocksdb: one rocksdb_multi_get call); the server uses it so a batch reads one version */
  multiGetSync(keys: Bytes[]): (Bytes | undefined)[];
  stats(): StoreStats;
  /** release file handles/memory; further calls throw. Idempotent. */
  close(): Promise<void>;
  /** close (if open) and delete the store's directory. Idempotent. */
  destroy(): Promise<void>;
}

export interface OpenOptions {
  /** open an existing store read-only (rocksdb: rocksdb_open_for_read_only). Default false. */
  readOnly?: boolean;
}

export interface StoreBackend {
  readonly name: "rocksdb" | "sst";
  /** true when usable here, else a sentence saying why not (e.g. librocksdb not found in ...) */
  available(): true | string;
  /** open or create the store in `dir` (created if missing) */
  open(dir: string, dataset: string, version: string, options?: OpenOptions): Promise<VersionStore>;
}

export type BackendName = StoreBackend["name"];
