/**
 * The "rocksdb" store backend: one real RocksDB database per dataset version, through the C API (rocksdb-lib.ts).
 *
 * `RocksDb` is the low-level handle (read, ingest, and the write path the serving benchmark compares against:
 * WriteBatch + WAL, flush, waiting for compactions to settle). `rocksdbBackend` wraps it as a VersionStore.
 *
 * Long calls (open, ingest, write, flush, compact) run on koffi's worker threads (`.async`) so the event loop keeps
 * serving reads meanwhile; point reads are synchronous calls (a block-cache hit is a few microseconds).
 */
import { mkdirSync, rmSync, statSync } from "node:fs";
import { resolve } from "node:path";
import koffi from "koffi";
import { ConfigError, EnvironmentError, ValidationError } from "../../core/errors.js";
import { HOST, SST } from "../../core/limits.js";
import { preflightSstFiles } from "./preflight.js";
import { loadRocksLib, NativeBytesArray, type Ptr, type RocksLib, rocksError, takeError } from "./rocksdb-lib.js";
import type { Bytes, OpenOptions, StoreBackend, StoreStats, VersionStore } from "./types.js";

export interface RocksDbOptions {
  /** create the database when the directory holds none (default true; ignored with readOnly) */
  createIfMissing?: boolean;
  /** rocksdb_open_for_read_only (no ingest, no writes) */
  readOnly?: boolean;
  /** LRU block cache capacity (default HOST.storeBlockCacheBytes) */
  blockCacheBytes?: number;
  /** bits per key of the full bloom filter policy: used to read the filters of ingested files and for files
   * RocksDB writes itself (default SST.bloomBitsPerKey; 0 = no filter policy) */
  bloomBitsPerKey?: number;
  /** no background compactions (an immutable, ingest-only version store never needs them). Default false. */
  disableAutoCompactions?: boolean;
}

export interface WriteOptions {
  /** default false: writes go to the WAL (durable across a process crash) */
  disableWal?: boolean;
  /** fsync the WAL on every write (default false: RocksDB's default) */
  sync?: boolean;
}

function requireLib(): RocksLib {
  const lib = loadRocksLib();
  if (typeof lib === "string") throw new EnvironmentError(lib);
  return lib;
}

function callAsync(fn: { async: (...args: unknown[]) => void }, ...args: unknown[]): Promise<unknown> {
  return new Promise((res, rej) => {
    fn.async(...args, (err: unknown, result: unknown) => (err ? rej(err) : res(result)));
  });
}

/** A RocksDB WriteBatch. put() copies the bytes into the batch; reuse it with clear(); destroy() it once. */
export class RocksWriteBatch {
  private h: Ptr | undefined;
  constructor(private readonly lib: RocksLib) {
    this.h = lib.fns.writebatch_create() as Ptr;
  }
  get handle(): Ptr {
    if (this.h === undefined) throw new EnvironmentError("RocksWriteBatch: used after destroy()");
    return this.h;
  }
  put(key: Bytes, value: Bytes): void {
    this.lib.fns.writebatch_put(this.handle, key, key.length, value, value.length);
  }
  get count(): number {
    return this.lib.fns.writebatch_count(this.handle) as number;
  }
  clear(): void {
    this.lib.fns.writebatch_clear(this.handle);
  }
  destroy(): void {
    if (this.h !== undefined) {
      this.lib.fns.writebatch_destroy(this.h);
      this.h = undefined;
    }
  }
}

/** One open RocksDB database. Not safe to use after close(); close() waits for in-flight background calls. */
export class RocksDb {
  private db: Ptr | undefined;
  private readonly errBuf = Buffer.alloc(8);
  private readonly lenBuf = Buffer.alloc(8);
  private readonly u64Buf = Buffer.alloc(8);
  private inflight = 0;
  private idleWaiters: (() => void)[] = [];
  private closing = false;

  private constructor(
    readonly lib: RocksLib,
    readonly dir: string,
    readonly readOnly: boolean,
    private readonly opts: Ptr,
    private readonly cache: Ptr,
    private readonly ro: Ptr,
    private readonly wo: Ptr,
  ) {}

  /** Opens (or creates) the database in `dir`. Throws EnvironmentError when librocksdb is missing. */
  static async open(dir: string, o: RocksDbOptions = {}): Promise<RocksDb> {
    const lib = requireLib();
    const f = lib.fns;
    const abs = resolve(dir);
    const readOnly = o.readOnly ?? false;
    if (!readOnly && (o.createIfMissing ?? true)) mkdirSync(abs, { recursive: true });
    const opts = f.options_create() as Ptr;
    const cache = f.cache_create_lru(o.blockCacheBytes ?? HOST.storeBlockCacheBytes) as Ptr;
    const ro = f.readoptions_create() as Ptr;
    const wo = f.writeoptions_create() as Ptr;
    let ok = false;
    try {
      f.options_set_create_if_missing(opts, readOnly ? 0 : (o.createIfMissing ?? true) ? 1 : 0);
      if (o.disableAutoCompactions) f.options_set_disable_auto_compactions(opts, 1);
      const bbto = f.block_based_options_create() as Ptr;
      f.block_based_options_set_block_cache(bbto, cache);
      const bits = o.bloomBitsPerKey ?? SST.bloomBitsPerKey;
      // set_filter_policy takes ownership of the policy object
      if (bits > 0) f.block_based_options_set_filter_policy(bbto, f.filterpolicy_create_bloom_full(bits));
      f.options_set_block_based_table_factory(opts, bbto); // copies the table options
      f.block_based_options_destroy(bbto);
      const errBuf = Buffer.alloc(8);
      const db = readOnly
        ? ((await callAsync(f.open_for_read_only, opts, abs, 0, errBuf)) as Ptr)
        : ((await callAsync(f.open, opts, abs, errBuf)) as Ptr);
      takeError(lib, errBuf, `rocksdb open ${abs}`, { dir: abs });
      if (!db) throw new EnvironmentError(`rocksdb open ${abs}: returned no handle`, { dir: abs });
      const r = new RocksDb(lib, abs, readOnly, opts, cache, ro, wo);
      r.db = db;
      ok = true;
      return r;
    } finally {
      if (!ok) {
        f.readoptions_destroy(ro);
        f.writeoptions_destroy(wo);
        f.options_destroy(opts);
        f.cache_destroy(cache);
      }
    }
  }

  get isOpen(): boolean {
    return this.db !== undefined && !this.closing;
  }

  private handle(): Ptr {
    if (this.db === undefined || this.closing) {
      throw new EnvironmentError(`rocksdb ${this.dir}: used after close()`, { dir: this.dir });
    }
    return this.db;
  }

  private async bg<T>(fn: () => Promise<T>): Promise<T> {
    this.handle();
    this.inflight++;
    try {
      return await fn();
    } finally {
      this.inflight--;
      if (this.inflight === 0) for (const w of this.idleWaiters.splice(0)) w();
    }
  }

  getSync(key: Bytes): Bytes | undefined {
    const f = this.lib.fns;
    const p = f.get(this.handle(), this.ro, key, key.length, this.lenBuf, this.errBuf) as Ptr | null;
    takeError(this.lib, this.errBuf, `rocksdb get in ${this.dir}`, { dir: this.dir });
    if (!p) return undefined;
    const n = this.lenBuf.readUInt32LE(0) + this.lenBuf.readUInt32LE(4) * 2 ** 32;
    const out = Buffer.allocUnsafe(n);
    try {
      this.lib.copyOut(out, p, n);
    } finally {
      f.free(p);
    }
    return out;
  }

  /** rocksdb_multi_get: one call for many keys */
  multiGetSync(keys: Bytes[]): (Bytes | undefined)[] {
    if (keys.length === 0) return [];
    const db = this.handle();
    const n = keys.length;
    const native = new NativeBytesArray(keys);
    const vals = new BigUint64Array(n);
    const sizes = new BigUint64Array(n);
    const errs = new BigUint64Array(n);
    const out: (Bytes | undefined)[] = new Array(n);
    let firstErr: string | undefined;
    try {
      this.lib.fns.multi_get(db, this.ro, n, native.ptrs, native.lens, vals, sizes, errs);
    } finally {
      native.free();
    }
    for (let i = 0; i < n; i++) {
      if (errs[i]) {
        const eb = Buffer.alloc(8);
        eb.writeBigUInt64LE(errs[i]);
        try {
          takeError(this.lib, eb, `rocksdb multi_get in ${this.dir}`);
        } catch (e) {
          firstErr ??= (e as Error).message;
        }
      }
      const p = vals[i];
      if (!p) {
        out[i] = undefined;
        continue;
      }
      const len = Number(sizes[i]);
      const b = Buffer.allocUnsafe(len);
      try {
        this.lib.copyOut(b, p, len);
      } finally {
        this.lib.fns.free(p);
      }
      out[i] = b;
    }
    if (firstErr) throw rocksError(firstErr, firstErr, { dir: this.dir });
    return out;
  }

  /** single put (tests, small writes); WAL on unless told otherwise */
  put(key: Bytes, value: Bytes): void {
    this.lib.fns.put(this.handle(), this.wo, key, key.length, value, value.length, this.errBuf);
    takeError(this.lib, this.errBuf, `rocksdb put in ${this.dir}`, { dir: this.dir });
  }

  newBatch(): RocksWriteBatch {
    return new RocksWriteBatch(this.lib);
  }

  /** rocksdb_write of a WriteBatch on a worker thread. */
  async write(batch: RocksWriteBatch, o: WriteOptions = {}): Promise<void> {
    await this.bg(async () => {
      const f = this.lib.fns;
      let wo = this.wo;
      let own = false;
      if (o.disableWal || o.sync) {
        wo = f.writeoptions_create() as Ptr;
        own = true;
        if (o.disableWal) f.writeoptions_disable_WAL(wo, 1);
        if (o.sync) f.writeoptions_set_sync(wo, 1);
      }
      const errBuf = Buffer.alloc(8);
      try {
        await callAsync(f.write, this.handle(), wo, batch.handle, errBuf);
        takeError(this.lib, errBuf, `rocksdb write in ${this.dir}`, { dir: this.dir });
      } finally {
        if (own) f.writeoptions_destroy(wo);
      }
    });
  }

  /** Flush the memtable to an SST file (waits for the flush). */
  async flush(): Promise<void> {
    await this.bg(async () => {
      const f = this.lib.fns;
      const fo = f.flushoptions_create() as Ptr;
      f.flushoptions_set_wait(fo, 1);
      const errBuf = Buffer.alloc(8);
      try {
        await callAsync(f.flush, this.handle(), fo, errBuf);
        takeError(this.lib, errBuf, `rocksdb flush in ${this.dir}`, { dir: this.dir });
      } finally {
        f.flushoptions_destroy(fo);
      }
    });
  }

  /** Manual full-range compaction (blocking, on a worker thread). */
  async compactAll(): Promise<void> {
    await this.bg(async () => {
      await callAsync(this.lib.fns.compact_range, this.handle(), null, 0, null, 0);
    });
  }

  /** A DB property as a string (rocksdb_property_value), undefined if unknown. */
  property(name: string): string | undefined {
    const p = this.lib.fns.property_value(this.handle(), name) as Ptr | null;
    if (!p) return undefined;
    try {
      return koffi.decode(p, "char", -1) as string;
    } finally {
      this.lib.fns.free(p);
    }
  }

  /**
   * A numeric DB property: rocksdb_property_int for the integer ones, else the string form parsed
   * (e.g. "rocksdb.num-files-at-level0" exists only as a string). Undefined if unknown.
   */
  propertyInt(name: string): number | undefined {
    this.u64Buf.fill(0);
    const rc = this.lib.fns.property_int(this.handle(), name, this.u64Buf) as number;
    if (rc === 0) return Number(this.u64Buf.readBigUInt64LE(0));
    const s = this.property(name);
    if (s === undefined || !/^\s*\d+\s*$/.test(s)) return undefined;
    return Number(s);
  }

  /** true when no flush or compaction is pending or running */
  backgroundIdle(): boolean {
    return (
      (this.propertyInt("rocksdb.num-running-compactions") ?? 0) === 0 &&
      (this.propertyInt("rocksdb.compaction-pending") ?? 0) === 0 &&
      (this.propertyInt("rocksdb.num-running-flushes") ?? 0) === 0 &&
      (this.propertyInt("rocksdb.mem-table-flush-pending") ?? 0) === 0
    );
  }

  /**
   * Polls until backgroundIdle() holds `stableChecks` times in a row. Returns the wait in ms. With auto compactions
   * disabled (version stores) "compaction-pending" can stay set forever: pass a timeout.
   */
  async waitForCompactions(o: { pollMs?: number; timeoutMs?: number; stableChecks?: number } = {}): Promise<number> {
    const t0 = Date.now();
    const pollMs = o.pollMs ?? 50;
    const need = o.stableChecks ?? 3;
    let ok = 0;
    while (ok < need) {
      if (this.backgroundIdle()) ok++;
      else ok = 0;
      if (o.timeoutMs !== undefined && Date.now() - t0 > o.timeoutMs) {
        throw new EnvironmentError(`rocksdb ${this.dir}: compactions did not settle within ${o.timeoutMs} ms`);
      }
      if (ok < need) await new Promise((r) => setTimeout(r, pollMs));
    }
    return Date.now() - t0;
  }

  /**
   * IngestExternalFile. With moveFiles (default) the files are hard-linked into the DB and the source links
   * removed after success, so they must be on the same filesystem (RocksDB falls back to copying otherwise).
   */
  async ingest(files: string[], o: { moveFiles?: boolean } = {}): Promise<void> {
    if (files.length === 0) return;
    if (this.readOnly) throw new ConfigError(`rocksdb ${this.dir}: opened read-only, cannot ingest`);
    await this.bg(async () => {
      const f = this.lib.fns;
      const list = new NativeBytesArray(
        files.map((p) => Buffer.from(resolve(p), "utf8")),
        true,
      );
      const io = f.ingestexternalfileoptions_create() as Ptr;
      f.ingestexternalfileoptions_set_move_files(io, o.moveFiles === false ? 0 : 1);
      const errBuf = Buffer.alloc(8);
      try {
        await callAsync(f.ingest_external_file, this.handle(), list.ptrs, files.length, io, errBuf);
        takeError(this.lib, errBuf, `rocksdb ingest into ${this.dir} of ${files.join(", ")}`, {
          dir: this.dir,
          files,
        });
      } finally {
        f.ingestexternalfileoptions_destroy(io);
        list.free();
      }
    });
  }

  /** Waits for in-flight background calls, then closes and frees everything. Idempotent. */
  async close(): Promise<void> {
    if (this.db === undefined) return;
    this.closing = true;
    if (this.inflight > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
    const f = this.lib.fns;
    const db = this.db;
    this.db = undefined;
    if (db === undefined) return;
    await callAsync(f.close, db);
    f.readoptions_destroy(this.ro);
    f.writeoptions_destroy(this.wo);
    f.options_destroy(this.opts);
    f.cache_destroy(this.cache);
  }
}

/** A dataset version in its own RocksDB directory. */
export class RocksVersionStore implements VersionStore {
  readonly backend = "rocksdb" as const;
  private gets = 0;
  private misses = 0;
  private ingestedFiles = 0;
  private destroyed = false;
  constructor(
    readonly dataset: string,
    readonly version: string,
    readonly dir: string,
    private readonly db: RocksDb,
  ) {}

  /** the underlying database (benchmarks, diagnostics) */
  get rocks(): RocksDb {
    return this.db;
  }

  async ingest(files: string[]): Promise<void> {
    if (files.length === 0) return;
    // RocksDB checks little on ingest and the Debian build aborts on some bad input: check footer, properties,
    // index and key ranges first (cheap: no data blocks are read).
    await preflightSstFiles(files);
    await this.db.ingest(files, { moveFiles: true });
    this.ingestedFiles += files.length;
  }

  getSync(key: Bytes): Bytes | undefined {
    this.gets++;
    const v = this.db.getSync(key);
    if (v === undefined) this.misses++;
    return v;
  }

  async get(key: Bytes): Promise<Bytes | undefined> {
    return this.getSync(key);
  }

  async multiGet(keys: Bytes[]): Promise<(Bytes | undefined)[]> {
    return this.multiGetSync(keys);
  }

  multiGetSync(keys: Bytes[]): (Bytes | undefined)[] {
    const out = this.db.multiGetSync(keys);
    this.gets += keys.length;
    for (const v of out) if (v === undefined) this.misses++;
    return out;
  }

  stats(): StoreStats {
    const open = this.db.isOpen;
    let files = this.ingestedFiles;
    let entries = 0;
    let bytes = 0;
    if (open) {
      files = 0;
      for (let l = 0; l < 7; l++) files += this.db.propertyInt(`rocksdb.num-files-at-level${l}`) ?? 0;
      entries = this.db.propertyInt("rocksdb.estimate-num-keys") ?? 0;
      bytes = this.db.propertyInt("rocksdb.total-sst-files-size") ?? 0;
    }
    return {
      backend: "rocksdb",
      dataset: this.dataset,
      version: this.version,
      dir: this.dir,
      files,
      entries,
      bytes,
      gets: this.gets,
      misses: this.misses,
      closed: !open,
    };
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  async destroy(): Promise<void> {
    await this.db.close();
    if (!this.destroyed) {
      rmSync(this.dir, { recursive: true, force: true });
      this.destroyed = true;
    }
  }
}

export const rocksdbBackend: StoreBackend = {
  name: "rocksdb",
  available(): true | string {
    const lib = loadRocksLib();
    return typeof lib === "string" ? lib : true;
  },
  async open(dir: string, dataset: string, version: string, options: OpenOptions = {}): Promise<VersionStore> {
    const abs = resolve(dir);
    if (options.readOnly) {
      try {
        statSync(abs);
      } catch {
        throw new ValidationError(`store ${dataset}/${version}: ${abs} does not exist (read-only open)`);
      }
    }
    // A version store only ever receives ingests. Several ingest calls (one per shard: hash-sharded key ranges
    // overlap) stack up in levels L6, L5, … then L0; compacting them would only burn host CPU and disk writes for
    // data that is replaced by the next version, and bloom filters keep reads over a few overlapping files cheap.
    const db = await RocksDb.open(abs, { readOnly: options.readOnly ?? false, disableAutoCompactions: true });
    return new RocksVersionStore(dataset, version, abs, db);
  },
};
