/**
 * Real RocksDB through its C API (rocksdb/c.h), loaded with koffi. Tested against Debian's librocksdb 7.8.3.
 *
 * Memory rules (koffi 3 returns pointers as bigint):
 * - every `char** errptr` is an 8-byte Buffer zeroed before the call; a non-null result is a malloc'ed C string
 *   that we copy and release with rocksdb_free;
 * - values returned by rocksdb_get / rocksdb_multi_get are malloc'ed: copied into a JS Buffer with memcpy, then
 *   rocksdb_free'd (koffi.view would work too but costs ~3 µs per call; memcpy ~0.2 µs);
 * - options/cache/batch handles are destroyed exactly once by their owner.
 * The Debian build has assert() compiled in: callers keep inputs valid (no use after close, no zero-key multi_get).
 */
import { existsSync } from "node:fs";
import koffi from "koffi";
import {
  ConflictError,
  CorruptionError,
  EnvironmentError,
  type FerryError,
  NotFoundError,
  ValidationError,
} from "../../core/errors.js";

type Ptr = bigint;
// biome-ignore lint/suspicious/noExplicitAny: koffi functions are untyped
type Fn = ((...args: any[]) => any) & { async: (...args: any[]) => void };

/** the C functions ferry uses */
export interface RocksFns {
  options_create: Fn;
  options_destroy: Fn;
  options_set_create_if_missing: Fn;
  options_set_block_based_table_factory: Fn;
  options_increase_parallelism: Fn;
  options_set_compression: Fn;
  options_set_info_log_level: Fn;
  options_set_keep_log_file_num: Fn;
  options_set_disable_auto_compactions: Fn;
  block_based_options_create: Fn;
  block_based_options_destroy: Fn;
  block_based_options_set_block_cache: Fn;
  block_based_options_set_filter_policy: Fn;
  filterpolicy_create_bloom_full: Fn;
  cache_create_lru: Fn;
  cache_destroy: Fn;
  open: Fn;
  open_for_read_only: Fn;
  close: Fn;
  destroy_db: Fn;
  get: Fn;
  multi_get: Fn;
  put: Fn;
  write: Fn;
  free: Fn;
  readoptions_create: Fn;
  readoptions_destroy: Fn;
  writeoptions_create: Fn;
  writeoptions_destroy: Fn;
  writeoptions_disable_WAL: Fn;
  writeoptions_set_sync: Fn;
  writebatch_create: Fn;
  writebatch_destroy: Fn;
  writebatch_clear: Fn;
  writebatch_count: Fn;
  writebatch_put: Fn;
  flushoptions_create: Fn;
  flushoptions_destroy: Fn;
  flushoptions_set_wait: Fn;
  flush: Fn;
  compact_range: Fn;
  property_value: Fn;
  property_int: Fn;
  ingestexternalfileoptions_create: Fn;
  ingestexternalfileoptions_destroy: Fn;
  ingestexternalfileoptions_set_move_files: Fn;
  ingest_external_file: Fn;
}

const PROTOTYPES: Record<keyof RocksFns, string> = {
  options_create: "void* rocksdb_options_create()",
  options_destroy: "void rocksdb_options_destroy(void*)",
  options_set_create_if_missing: "void rocksdb_options_set_create_if_missing(void*, uint8_t)",
  options_set_block_based_table_factory: "void rocksdb_options_set_block_based_table_factory(void*, void*)",
  options_increase_parallelism: "void rocksdb_options_increase_parallelism(void*, int)",
  options_set_compression: "void rocksdb_options_set_compression(void*, int)",
  options_set_info_log_level: "void rocksdb_options_set_info_log_level(void*, int)",
  options_set_keep_log_file_num: "void rocksdb_options_set_keep_log_file_num(void*, size_t)",
  options_set_disable_auto_compactions: "void rocksdb_options_set_disable_auto_compactions(void*, int)",
  block_based_options_create: "void* rocksdb_block_based_options_create()",
  block_based_options_destroy: "void rocksdb_block_based_options_destroy(void*)",
  block_based_options_set_block_cache: "void rocksdb_block_based_options_set_block_cache(void*, void*)",
  block_based_options_set_filter_policy: "void rocksdb_block_based_options_set_filter_policy(void*, void*)",
  filterpolicy_create_bloom_full: "void* rocksdb_filterpolicy_create_bloom_full(double)",
  cache_create_lru: "void* rocksdb_cache_create_lru(size_t)",
  cache_destroy: "void rocksdb_cache_destroy(void*)",
  open: "void* rocksdb_open(void*, const char*, void*)",
  open_for_read_only: "void* rocksdb_open_for_read_only(void*, const char*, uint8_t, void*)",
  close: "void rocksdb_close(void*)",
  destroy_db: "void rocksdb_destroy_db(void*, const char*, void*)",
  get: "void* rocksdb_get(void*, void*, const void*, size_t, void*, void*)",
  multi_get: "void rocksdb_multi_get(void*, void*, size_t, void*, void*, void*, void*, void*)",
  put: "void rocksdb_put(void*, void*, const void*, size_t, const void*, size_t, void*)",
  write: "void rocksdb_write(void*, void*, void*, void*)",
  free: "void rocksdb_free(void*)",
  readoptions_create: "void* rocksdb_readoptions_create()",
  readoptions_destroy: "void rocksdb_readoptions_destroy(void*)",
  writeoptions_create: "void* rocksdb_writeoptions_create()",
  writeoptions_destroy: "void rocksdb_writeoptions_destroy(void*)",
  writeoptions_disable_WAL: "void rocksdb_writeoptions_disable_WAL(void*, int)",
  writeoptions_set_sync: "void rocksdb_writeoptions_set_sync(void*, uint8_t)",
  writebatch_create: "void* rocksdb_writebatch_create()",
  writebatch_destroy: "void rocksdb_writebatch_destroy(void*)",
  writebatch_clear: "void rocksdb_writebatch_clear(void*)",
  writebatch_count: "int rocksdb_writebatch_count(void*)",
  writebatch_put: "void rocksdb_writebatch_put(void*, const void*, size_t, const void*, size_t)",
  flushoptions_create: "void* rocksdb_flushoptions_create()",
  flushoptions_destroy: "void rocksdb_flushoptions_destroy(void*)",
  flushoptions_set_wait: "void rocksdb_flushoptions_set_wait(void*, uint8_t)",
  flush: "void rocksdb_flush(void*, void*, void*)",
  compact_range: "void rocksdb_compact_range(void*, const void*, size_t, const void*, size_t)",
  property_value: "void* rocksdb_property_value(void*, const char*)",
  property_int: "int rocksdb_property_int(void*, const char*, void*)",
  ingestexternalfileoptions_create: "void* rocksdb_ingestexternalfileoptions_create()",
  ingestexternalfileoptions_destroy: "void rocksdb_ingestexternalfileoptions_destroy(void*)",
  ingestexternalfileoptions_set_move_files: "void rocksdb_ingestexternalfileoptions_set_move_files(void*, uint8_t)",
  ingest_external_file: "void rocksdb_ingest_external_file(void*, void*, size_t, void*, void*)",
};

/** env var that points at a specific librocksdb (file path) */
export const ROCKSDB_LIB_ENV = "FERRY_ROCKSDB_LIB";

/** where librocksdb is looked for, in order (names go through the dynamic loader's own search path) */
export function librocksdbCandidates(): string[] {
  const names = ["librocksdb.so.7.8", "librocksdb.so.7", "librocksdb.so", "librocksdb.dylib"];
  const dirs = [
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/usr/local/lib",
    "/opt/homebrew/lib",
  ];
  const out: string[] = [];
  const env = process.env[ROCKSDB_LIB_ENV];
  if (env) out.push(env);
  for (const d of dirs) for (const n of names) out.push(`${d}/${n}`);
  out.push(...names);
  return out;
}

export interface RocksLib {
  path: string;
  fns: RocksFns;
  /** copy n bytes from native memory at p into dst */
  copyOut(dst: Uint8Array, p: Ptr, n: number): void;
}

let cached: RocksLib | string | undefined;

/** Loads librocksdb once. Returns the library, or a sentence saying why it is not usable here. */
export function loadRocksLib(): RocksLib | string {
  if (cached !== undefined) return cached;
  const tried: string[] = [];
  for (const cand of librocksdbCandidates()) {
    if (cand.includes("/") && !existsSync(cand)) continue;
    let lib: ReturnType<typeof koffi.load>;
    try {
      lib = koffi.load(cand);
    } catch (e) {
      tried.push(`${cand}: ${(e as Error).message.split("\n")[0]}`);
      continue;
    }
    try {
      const fns = {} as Record<string, Fn>;
      for (const [k, proto] of Object.entries(PROTOTYPES)) fns[k] = lib.func(proto) as Fn;
      cached = { path: cand, fns: fns as unknown as RocksFns, copyOut: makeCopyOut() };
      return cached;
    } catch (e) {
      tried.push(`${cand}: missing symbol (${(e as Error).message.split("\n")[0]})`);
    }
  }
  cached =
    "librocksdb not found: install it (Debian/Ubuntu: apt-get install librocksdb-dev; macOS: brew install rocksdb) " +
    `or point ${ROCKSDB_LIB_ENV} at librocksdb.so` +
    (tried.length ? ` (tried: ${tried.join("; ")})` : "");
  return cached;
}

function makeCopyOut(): (dst: Uint8Array, p: Ptr, n: number) => void {
  for (const libc of ["libc.so.6", "libc.dylib", "libSystem.B.dylib"]) {
    try {
      const memcpy = koffi.load(libc).func("void* memcpy(void*, uintptr_t, size_t)") as Fn;
      return (dst, p, n) => {
        if (n > 0) memcpy(dst, p, n);
      };
    } catch {}
  }
  return (dst, p, n) => {
    if (n > 0) dst.set(new Uint8Array(koffi.view(p, n)));
  };
}

/** Reads and frees the error string left in an errptr buffer; turns it into a typed error. Resets the buffer. */
export function takeError(lib: RocksLib, errBuf: Buffer, context: string, details: Record<string, unknown> = {}): void {
  const lo = errBuf.readUInt32LE(0);
  const hi = errBuf.readUInt32LE(4);
  if (lo === 0 && hi === 0) return;
  const p = errBuf.readBigUInt64LE(0);
  errBuf.fill(0);
  let msg: string;
  try {
    msg = koffi.decode(p, "char", -1) as string;
  } finally {
    lib.fns.free(p);
  }
  throw rocksError(`${context}: ${msg}`, msg, details);
}

/** Maps a RocksDB Status string ("Corruption: …", "IO error: …") to a ferry error class. */
export function rocksError(message: string, status: string, details: Record<string, unknown>): FerryError {
  const d = { ...details, rocksdbStatus: status };
  if (/^Corruption/.test(status)) return new CorruptionError(message, d);
  if (/^Invalid argument|^Not implemented|^Not supported/.test(status)) return new ValidationError(message, d);
  if (/lock|Resource busy|LOCK/.test(status)) {
    return new ConflictError(`${message} (another process or store instance has this directory open)`, d);
  }
  if (/No such file or directory|NotFound|does not exist/.test(status)) return new NotFoundError(message, d);
  return new EnvironmentError(message, d);
}

/** Native memory holding several byte strings back to back, with a pointer and a length array for C calls. */
export class NativeBytesArray {
  readonly ptrs: BigUint64Array;
  readonly lens: BigUint64Array;
  private mem: Ptr | undefined;
  constructor(items: Uint8Array[], nulTerminate = false) {
    const extra = nulTerminate ? 1 : 0;
    let total = 0;
    for (const it of items) total += it.length + extra;
    this.ptrs = new BigUint64Array(items.length);
    this.lens = new BigUint64Array(items.length);
    const mem = koffi.alloc("uint8_t", Math.max(1, total)) as Ptr;
    this.mem = mem;
    const view = new Uint8Array(koffi.view(mem, Math.max(1, total)));
    let off = 0;
    for (let i = 0; i < items.length; i++) {
      const it = items[i];
      view.set(it, off);
      if (nulTerminate) view[off + it.length] = 0;
      this.ptrs[i] = mem + BigInt(off);
      this.lens[i] = BigInt(it.length);
      off += it.length + extra;
    }
  }
  free(): void {
    if (this.mem !== undefined) {
      koffi.free(this.mem);
      this.mem = undefined;
    }
  }
}

export type { Ptr };
