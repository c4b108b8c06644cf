/**
 * The JSONL fast path in WebAssembly: the same map() as core/records/jsonl-fast.ts (same accepted lines, same key
 * and value bytes; property-tested against it and against the straightforward path), ported to AssemblyScript
 * (wasm/jsonl-scan/assembly/index.ts, SIMD for string bodies) and committed compiled as
 * core/records/wasm/jsonl-scan.gen.ts (`npm run build:wasm`).
 *
 * The lines must sit in the module's memory to be scanned without a copy: the mapper exposes `arena`, a Uint8Array
 * over its memory that Partition hands to the RunWriter as its page 0 (records + output staging + input stage), so
 * lines arrive in the arena and keySrc/valSrc are that same array (RunWriter.addRanges moves the bytes with
 * copyWithin). Composite keys and `value`-column objects are assembled in a scratch region at the end of the arena
 * array. A line passed in another array is copied into a region of the memory first (tests, other callers).
 *
 * Memory (per mapper, one module instance each; the compiled module is shared per process): arenaBytes +
 * JSONL_WASM.lineCopyBytes + JSONL_WASM.scratchBytes + 16 × JSONL_WASM.maxGaps bytes of tables (~3 MiB over the
 * arena with the defaults), committed by the OS as it is touched. A Partition task's arena is 256 MiB of records +
 * 1 MiB output staging + 84 MiB input stage, as before in a plain Uint8Array.
 * Nothing is global: dropping the mapper (and the RunWriter holding its arena) frees it. The memory never grows (a
 * grow would detach the views the RunWriter holds).
 *
 * Off when FERRY_JSONL_WASM=0 or WebAssembly is unavailable: makeJsonlMapper then gives the JS mapper.
 */
import { JSONL_WASM, SST } from "../limits.js";
import type { RecordGather } from "../shuffle/run.js";
import { type FastJsonlMapper, type FastJsonlOptions, makeFastJsonlMapper } from "./jsonl-fast.js";
import { JSONL_SCAN_WASM_BASE64 } from "./wasm/jsonl-scan.gen.js";

const PAGE = 65536;
/** deeper nesting declines (as in jsonl-fast.ts): name slots per line = MAX_DEPTH * 8 + MAX_MEMBERS */
const NAME_SLOTS = 64 * 8 + 512;
/** readable bytes kept after any line (the scanner reads 16 bytes at a time) */
const PAD = 64;

/** the part of the WebAssembly JS API used here (the project's TypeScript libs do not declare it) */
interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { exports: object };
  Memory: new (desc: { initial: number }) => { buffer: ArrayBuffer };
}
type WasmModule = { readonly __wasmModule: unique symbol };
const wasmApi = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

interface ScanExports {
  setup(cfg: number): void;
  map(start: number, end: number): number;
  route(start: number, end: number): number;
  mapAppend(start: number, end: number, line: number, pos: number, limit: number): number;
  mapAppendLines(
    from: number,
    end: number,
    stop: number,
    line: number,
    pos: number,
    limit: number,
    room: number,
    overhead: number,
    out: number,
    cap: number,
  ): number;
  gather(order: number, starts: number, lens: number, k: number, end: number, dst: number, room: number): number;
}

/** the plan's buckets as routing needs them (core/pipeline/sample.ts makeRangeRouter) */
export interface WasmRoutes {
  buckets: ReadonlyArray<{ shard: number; index: number; lowerKey: string }>;
  shards: number;
}

/** mapAppend's codes besides a bucket: the line declines (JSON.parse path), the record does not fit (addRanges) */
export const APPEND_DECLINED = -1;
export const APPEND_NO_FIT = -2;
/** why appendLines stopped: rows full, no complete line left, `stop` reached, the line declines, no room */
export const APPEND_STOP_ROWS = 0;
export const APPEND_STOP_PARTIAL = 1;
export const APPEND_STOP_STOP = 2;
export const APPEND_STOP_DECLINED = 3;
export const APPEND_STOP_ROOM = 4;

let compiled: WasmModule | null | undefined;

/** the compiled module (once per process), or undefined when WebAssembly is unavailable */
function scanModule(): WasmModule | undefined {
  if (compiled === undefined) {
    try {
      if (!wasmApi) throw new Error("no WebAssembly");
      compiled = new wasmApi.Module(Buffer.from(JSONL_SCAN_WASM_BASE64, "base64"));
    } catch {
      compiled = null;
    }
  }
  return compiled ?? undefined;
}

/** whether makeJsonlMapper gives the WebAssembly mapper (FERRY_JSONL_WASM=0 turns it off) */
export function jsonlWasmEnabled(): boolean {
  return process.env.FERRY_JSONL_WASM !== "0" && scanModule() !== undefined;
}

export interface WasmJsonlMapper extends FastJsonlMapper {
  /** the array over the module's memory whose first `arenaBytes` bytes are the caller's (the RunWriter's page 0) */
  readonly arena: Uint8Array;
  /**
   * With routes only. Maps arena[start, end) and, when accepted, routes the key and writes the record as RunWriter
   * encodes it (varint keyLen | key | varint valueLen | value | varint line) at arena[pos, limit); returns the
   * bucket, with `appended` = [record length, key start, key length, sort prefix hi, lo, length class]. Returns
   * APPEND_DECLINED when the line declines (nothing written), APPEND_NO_FIT when the record does not fit (nothing
   * written; the mapper's key/value ranges are set as after map()). `line` must be < 2^31.
   */
  mapAppend?: (start: number, end: number, line: number, pos: number, limit: number) => number;
  appended?: Uint32Array;
  /**
   * With routes only. mapAppend over the lines of arena[from, end) one after another (line numbers `line`,
   * `line` + 1, ...; a line ends before its '\n' and a '\r' before that), records at arena[pos, limit) back to
   * back, while each is accepted and fits: stops before a line that starts at or after `stop`, one without its '\n'
   * before `end`, one that declines or does not fit, or a record whose length + `overhead` exceeds what is left of
   * `room` (its bytes may then lie at its position, unaccounted), or after JSONL_WASM.appendRows records. Returns
   * the records appended, each a row of 7 in `rows`: bucket, then `appended`'s 6 values. appendStop[0] = the arena
   * index of the first line not taken, appendStop[1] = why (APPEND_STOP_*).
   */
  appendLines?: (
    from: number,
    end: number,
    stop: number,
    line: number,
    pos: number,
    limit: number,
    room: number,
    overhead: number,
  ) => number;
  rows?: Uint32Array;
  appendStop?: Uint32Array;
  /** RunWriter's copy-out of sorted records within the arena (RunWriterOptions.gather), in WebAssembly */
  readonly gather: RecordGather;
  /** With routes only: the bucket of key[start, end), as makeRangeRouter (tests). */
  route?: (key: Uint8Array, start: number, end: number) => number;
}

/**
 * The WebAssembly mapper for these options with an arena of `arenaBytes` for the caller, or undefined when the
 * options rule the fast path out (as makeFastJsonlMapper) or WebAssembly is unavailable or fails to instantiate.
 */
export function makeWasmJsonlMapper(
  opts: FastJsonlOptions,
  arenaBytes = 0,
  /** another build of the module (A/B benchmarks); default the committed one */
  wasmBytes?: Uint8Array,
  /** the plan's buckets: gives mapAppend and route */
  routes?: WasmRoutes,
): WasmJsonlMapper | undefined {
  const js = makeFastJsonlMapper(opts);
  const mod = scanModule();
  if (!js || !mod) return undefined;
  try {
    return instantiate(wasmBytes ? new (wasmApi as WasmApi).Module(wasmBytes) : mod, js, opts, arenaBytes, routes);
  } catch {
    return undefined;
  }
}

/**
 * The mapper Partition uses: WebAssembly (with an arena of `arenaBytes`) unless FERRY_JSONL_WASM=0 or it is
 * unavailable, else the JS one; undefined when the options rule the fast path out.
 */
export function makeJsonlMapper(
  opts: FastJsonlOptions,
  arenaBytes = 0,
  routes?: WasmRoutes,
): FastJsonlMapper | WasmJsonlMapper | undefined {
  return (
    (jsonlWasmEnabled() ? makeWasmJsonlMapper(opts, arenaBytes, undefined, routes) : undefined) ??
    makeFastJsonlMapper(opts)
  );
}

function instantiate(
  mod: WasmModule,
  js: FastJsonlMapper,
  opts: FastJsonlOptions,
  arenaBytes: number,
  routes?: WasmRoutes,
): WasmJsonlMapper {
  const utf8 = (s: string) => Buffer.from(s, "utf8");
  const mode = opts.valueRaw !== undefined ? 2 : opts.value ? 1 : 0;
  const keyNames = opts.key.map(utf8);
  const valCols = mode === 1 ? [...new Set(opts.value)] : mode === 2 ? [opts.valueRaw as string] : [];
  const valNames = valCols.map(utf8);
  const valJson = valCols.map((c) => utf8(`${JSON.stringify(c)}:`));
  const names = [...opts.key, ...valCols];
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are the point
  const escapedNamesOk = !names.some((n) => /["\\\u0000-\u001f]/.test(n));
  const nk = keyNames.length;
  const nv = valNames.length;
  const gapsCap = JSONL_WASM.maxGaps;

  // layout (absolute addresses): tables from 1024, then the arena array [base, end of memory)
  let at = 1024;
  const take = (bytes: number) => {
    const a = at;
    at = (at + bytes + 7) & ~7;
    return a;
  };
  const cfg = take(32 * 4);
  const res = take(4 * 4);
  const cols = take((nk + nv) * 20);
  const nameBytes = take([...keyNames, ...valNames, ...valJson].reduce((n, b) => n + b.length, 0));
  const gaps = take(gapsCap * 8);
  const segs = take((gapsCap + 1) * 8);
  const nameSig = take(NAME_SLOTS * 4);
  const nameStart = take(NAME_SLOTS * 4);
  const keyS = take(nk * 4);
  const keyE = take(nk * 4);
  const valS = take(Math.max(nv, 1) * 4);
  const valE = take(Math.max(nv, 1) * 4);
  // routing table: per shard [first entry, count], per bucket [lower key address, length, index], the lower keys;
  // buckets in makeRangeRouter's order (shard, then lowerKey)
  const shards = routes?.shards ?? 0;
  const sorted = [...(routes?.buckets ?? [])].sort(
    (a, b) => a.shard - b.shard || (a.lowerKey < b.lowerKey ? -1 : a.lowerKey > b.lowerKey ? 1 : 0),
  );
  const lowers = sorted.map((b) => Buffer.from(b.lowerKey, "hex"));
  const rtShard = take(Math.max(shards, 1) * 8);
  const rtEnt = take(Math.max(sorted.length, 1) * 12);
  const rtKeys = take(lowers.reduce((n, b) => n + b.length, 0) + 8);
  const app = take(8 * 4);
  const rowCap = JSONL_WASM.appendRows;
  const rowsAt = take(rowCap * 7 * 4);
  const base = (at + 63) & ~63;
  const lineCopy = arenaBytes + PAD;
  const scratch = lineCopy + JSONL_WASM.lineCopyBytes + PAD;
  const total = base + scratch + JSONL_WASM.scratchBytes + PAD;
  const memory = new (wasmApi as WasmApi).Memory({ initial: Math.ceil(total / PAGE) });
  const mem = Buffer.from(memory.buffer);
  const numOk = (p: number, n: number) => {
    const tok = mem.toString("latin1", p, p + n);
    return String(Number(tok)) === tok ? 1 : 0;
  };
  const ex = new (wasmApi as WasmApi).Instance(mod, { env: { memory, numOk } }).exports as unknown as ScanExports;

  const words = new Int32Array(memory.buffer);
  let nb = nameBytes;
  const put = (b: Buffer) => {
    mem.set(b, nb);
    nb += b.length;
    return nb - b.length;
  };
  const col = (k: number, name: Buffer, json?: Buffer) => {
    const w = (cols >> 2) + k * 5;
    words[w] = put(name);
    words[w + 1] = name.length;
    words[w + 3] = json ? put(json) : 0;
    words[w + 4] = json ? json.length : 0;
  };
  for (let k = 0; k < nk; k++) col(k, keyNames[k]);
  for (let k = 0; k < nv; k++) col(nk + k, valNames[k], valJson[k]);
  const c = cfg >> 2;
  words.set(
    [
      base,
      mode,
      nk,
      nv,
      opts.maxKeyBytes ?? SST.maxKeyBytes,
      opts.maxValueBytes ?? SST.maxValueBytes,
      escapedNamesOk ? 1 : 0,
      cols,
      res,
      segs,
      gaps,
      gapsCap,
      nameSig,
      nameStart,
      NAME_SLOTS,
      keyS,
      keyE,
      valS,
      valE,
      base + scratch,
      JSONL_WASM.scratchBytes,
      shards,
      rtShard,
      rtEnt,
      app,
    ],
    c,
  );
  if (routes) {
    const firsts = new Int32Array(2 * shards);
    let kb = rtKeys;
    sorted.forEach((b, i) => {
      if (!(b.shard >= 0 && b.shard < shards)) throw new RangeError(`bucket shard ${b.shard} of ${shards} shards`);
      if (firsts[2 * b.shard + 1]++ === 0) firsts[2 * b.shard] = i;
      const w = (rtEnt >> 2) + 3 * i;
      mem.set(lowers[i], kb);
      words[w] = kb;
      words[w + 1] = lowers[i].length;
      words[w + 2] = b.index;
      kb += lowers[i].length;
    });
    for (let s = 0; s < shards; s++) if (firsts[2 * s + 1] === 0) throw new RangeError(`no bucket for shard ${s}`);
    words.set(firsts, rtShard >> 2);
  }
  ex.setup(cfg);

  const arena = new Uint8Array(memory.buffer, base, total - base);
  const out = new Int32Array(memory.buffer, res, 4);
  const segView = new Int32Array(memory.buffer, segs, 2 * (gapsCap + 1));
  const scan = ex.map;
  const maxCopy = JSONL_WASM.lineCopyBytes;
  const appended = new Uint32Array(memory.buffer, app, 6);
  const mapAppend = ex.mapAppend;
  /** the module's result (key range, value segments) as the mapper's ranges, in the arena */
  const takeResult = () => {
    if (m.keySrc !== arena) {
      m.keySrc = m.valSrc = arena;
      m.segs = segView;
    }
    m.keyStart = out[0];
    m.keyEnd = out[1];
    m.nsegs = out[2];
    m.valueLen = out[3];
  };
  const gatherEx = ex.gather;
  const gather: RecordGather = {
    copy: (order, starts, lens, k, end, dst, room) =>
      gatherEx(base + order, base + starts, base + lens, k, end, base + dst, room),
    get bytes() {
      return out[0];
    },
  };
  const m: WasmJsonlMapper = {
    arena,
    gather,
    keySrc: arena,
    keyStart: 0,
    keyEnd: 0,
    valSrc: arena,
    segs: segView,
    nsegs: 0,
    valueLen: 0,
    map(buf: Uint8Array, start: number, end: number): boolean {
      let ok: number;
      if (buf === arena) ok = scan(base + start, base + end);
      else if (end - start <= maxCopy) {
        arena.set(buf.subarray(start, end), lineCopy);
        ok = scan(base + lineCopy, base + lineCopy + end - start);
      } else {
        // too long to copy in: the JS scanner, its results as they are
        if (!js.map(buf, start, end)) return false;
        m.keySrc = js.keySrc;
        m.keyStart = js.keyStart;
        m.keyEnd = js.keyEnd;
        m.valSrc = js.valSrc;
        m.segs = js.segs;
        m.nsegs = js.nsegs;
        m.valueLen = js.valueLen;
        return true;
      }
      if (ok === 0) return false;
      takeResult();
      return true;
    },
  };
  if (routes) {
    m.mapAppend = (start: number, end: number, line: number, pos: number, limit: number): number => {
      const r = mapAppend(base + start, base + end, line, pos, limit);
      if (r === APPEND_NO_FIT) takeResult();
      return r;
    };
    m.appended = appended;
    const lines = ex.mapAppendLines;
    m.appendLines = (from, end, stop, line, pos, limit, room, overhead) =>
      lines(from, end, stop, line, pos, limit, room, overhead, rowsAt, rowCap);
    m.rows = new Uint32Array(memory.buffer, rowsAt, rowCap * 7);
    m.appendStop = new Uint32Array(memory.buffer, app + 24, 2);
    m.route = (key: Uint8Array, start: number, end: number): number => {
      const n = end - start;
      if (n > maxCopy) throw new RangeError("route: key longer than the line copy region");
      arena.set(key.subarray(start, end), lineCopy);
      return ex.route(base + lineCopy, base + lineCopy + n);
    };
  }
  return m;
}
