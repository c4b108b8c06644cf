/**
 * Parallel block sealing for SstWriter: a ring of block slots in shared memory whose blocks are sealed (bloom key
 * hashes, compression, trailer with CRC) either by a worker thread (the second core) or, when no worker is attached,
 * by the writer's own thread at the moment it needs the slot back. Same code (seal.ts, xxph3.ts), same order, same
 * bytes either way.
 *
 * Protocol (Int32 control words in a SharedArrayBuffer, no event-loop turns, so add() stays synchronous):
 *   main  : copies block #s into slot s % K, publishes it (PROD = s + 1) and, K blocks later, collects it (waits
 *           until DONE > s, or seals it itself when detached) and copies it into the output chunk.
 *   worker: seals blocks DONE, DONE+1, … < PROD in order, then sleeps on SIG until main signals more.
 * Collection points depend only on the block sequence, never on timing, so everything the writer derives from
 * them (file offsets, the file-size estimate that drives SstFileSetWriter's rollover) is deterministic.
 *
 * Workers are pooled per process (at most availableParallelism() - 1), unref'd (never keep the process alive), and
 * attached to a writer only once its ring is full (small files never wait for a worker to boot).
 */
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { crc32c as nativeCrc32c } from "@node-rs/crc32";
import { EnvironmentError } from "../errors.js";
import { SST } from "../limits.js";
import { hashBlockKeys, makeCompressor, type RawCompressor, sealBlock } from "./seal.js";
import { makeXxph3, xxph3_64Parts } from "./xxph3.js";

const require = createRequire(import.meta.url);

// control words
const PROD = 0; // blocks published by main
const DONE = 1; // blocks sealed by the worker (counted from the attach point)
const SIG = 2; // bumped by main to wake the worker
const WSLEEP = 3; // 1 while the worker sleeps (or is about to)
const MSLEEP = 4; // 1 while main waits for DONE
const CLOSE = 5; // main detaches: the worker leaves the ring once it has sealed everything published
const ERR = 6; // worker failed: collect() throws an EnvironmentError with its message
const CTRL_WORDS = 8;
const ERR_BYTES = 1024;

/**
 * wake a sleeping worker only once this share of the ring waits: a futex wake-up costs main tens of microseconds on
 * a busy machine, and the woken worker seals until it catches up (~100 blocks per wake-up with 128 slots)
 */
const WAKE_SHARE = 0.4;
/** event-loop turn every this many blocks sealed (lets native codecs' external buffers be freed) */
export const YIELD_EVERY = SST.nativeCodecTurnEvery;
/** main gives up waiting for a live-looking worker after this long without progress */
const STALL_MS = SST.sealWorkerStallMs;

// ---------------------------------------------------------------------------------------------------------------
// worker pool

interface PooledWorker {
  worker: Worker;
  /** [0]: 0 booting, 1 idle, 2 owned by a ring */
  state: Int32Array;
}

const pool: PooledWorker[] = [];
/** no more workers: one could not be created, or two died before they were ready (e.g. a module missing) */
let disabled = false;
let bootFailures = 0;
const stats = { workerBlocks: 0, inlineBlocks: 0, wakes: 0, waits: 0 };

/** Process-wide counts of data blocks sealed by a worker and on the writer's thread (tests, benchmarks). */
export function compressionStats(): {
  workerBlocks: number;
  inlineBlocks: number;
  wakes: number;
  waits: number;
  workers: number;
} {
  return { ...stats, workers: pool.length };
}

/**
 * Starts a compression worker if the pool has room and resolves once one is idle and ready (false: none will be:
 * one core, FERRY_SST_COMPRESSION_THREADS=0, or workers unavailable). Optional: writers attach one when ready.
 */
export async function warmCompressionWorker(timeoutMs = 10_000): Promise<boolean> {
  if (maxWorkers() === 0) return false;
  prewarm();
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (pool.some((w) => Atomics.load(w.state, 0) === 1)) return true;
    if (disabled || pool.length === 0) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return false;
}

function resolvePaths(): Record<string, string> {
  const paths: Record<string, string> = {};
  for (const name of ["snappy", "lz4-napi", "zstd-napi", "@node-rs/crc32"]) {
    try {
      paths[name] = require.resolve(name);
    } catch {
      // not installed: the worker fails to load it and main seals inline (same error there)
    }
  }
  return paths;
}

/**
 * Bundlers that keep function names (esbuild keepNames: tsx, NodejsFunction bundles) insert calls to a helper,
 * `__name(fn, "fn")` — minified to any short name — inside the functions' source text. The worker defines each such
 * helper as the identity. (Anything else missing makes the worker fail at boot: writers then seal on their own
 * thread, same bytes.)
 */
function nameHelperShims(sources: string[]): string {
  const names = new Set<string>(["__name"]);
  for (const src of sources) {
    for (const m of src.matchAll(/(?<![\w$.])([A-Za-z_$][\w$]*)\(\s*[A-Za-z_$][\w$]*\s*,\s*"[\w$]*"\s*\)/g)) {
      names.add(m[1]);
    }
  }
  return [...names].map((n) => `var ${n} = function (f) { return f; };`).join("\n");
}

function workerSource(): string {
  const fns = [sealBlock.toString(), makeCompressor.toString(), hashBlockKeys.toString(), makeXxph3.toString()];
  return `${nameHelperShims(fns)}
const { parentPort, workerData } = require("node:worker_threads");
const sealBlock = (${fns[0]});
const makeCompressor = (${fns[1]});
const hashBlockKeys = (${fns[2]});
const xxph3 = (${fns[3]})();
const paths = workerData.paths;
const crc = require(paths["@node-rs/crc32"] || "@node-rs/crc32").crc32c;
const state = new Int32Array(workerData.state);
const compressors = new Map();
Atomics.store(state, 0, 1);
// Native codecs (lz4-napi, zstd-napi) hand back external buffers whose finalizers run only on an event-loop turn:
// the loop therefore yields to the event loop every YIELD_EVERY blocks, so memory stays flat. (It sleeps with a
// synchronous Atomics.wait: waitAsync wake-ups go through the event loop and cost main ~10 us each.)
const YIELD_EVERY = ${YIELD_EVERY};
const turn = () => new Promise((r) => setImmediate(r));
async function serve(m) {
  const ctrl = new Int32Array(m.ctrl);
  const lens = new Int32Array(m.lens);
  const K = m.k;
  const cap = m.cap;
  const buf = new Uint8Array(m.slots);
  const base = m.start;
  const hashes = m.hashes ? new Uint32Array(m.hashes) : undefined;
  const hashStride = 2 * m.maxKeys;
  const scratch = new Uint8Array(cap);
  // blocks are sealed in private memory: V8 copies into shared memory at unaligned offsets byte by byte
  const work = new Uint8Array(cap);
  const tmp = new Uint32Array(2);
  let next = m.start;
  let sinceTurn = 0;
  try {
    let comp = compressors.get(m.ctype);
    if (comp === undefined && m.ctype !== 0) {
      comp = makeCompressor(m.ctype, require, paths);
      compressors.set(m.ctype, comp);
    }
    for (;;) {
      if (Atomics.load(ctrl, ${PROD}) > next) {
        const i = next % K;
        const rawLen = lens[i];
        work.set(buf.subarray(i * cap, i * cap + rawLen));
        if (hashes !== undefined) {
          lens[2 * K + i] = hashBlockKeys(work, 0, rawLen, hashes, i * hashStride, scratch, xxph3.parts, tmp);
        }
        const n = sealBlock(work, 0, rawLen, m.ctype, comp, crc);
        buf.set(work.subarray(0, n + 5), i * cap);
        lens[K + i] = n;
        next++;
        Atomics.store(ctrl, ${DONE}, next - base);
        if (Atomics.load(ctrl, ${MSLEEP}) !== 0) Atomics.notify(ctrl, ${DONE});
        if (++sinceTurn >= YIELD_EVERY) {
          sinceTurn = 0;
          await turn();
        }
        continue;
      }
      if (Atomics.load(ctrl, ${CLOSE}) !== 0) break;
      const sig = Atomics.load(ctrl, ${SIG});
      Atomics.store(ctrl, ${WSLEEP}, 1);
      if (Atomics.load(ctrl, ${PROD}) <= next && Atomics.load(ctrl, ${CLOSE}) === 0) {
        Atomics.wait(ctrl, ${SIG}, sig, 1000);
      }
      Atomics.store(ctrl, ${WSLEEP}, 0);
    }
  } catch (e) {
    const msg = Buffer.from(String((e && e.stack) || e)).subarray(0, ${ERR_BYTES - 4});
    new Uint8Array(m.err).set(msg, 4);
    new DataView(m.err).setInt32(0, msg.length, true);
    Atomics.store(ctrl, ${ERR}, 1);
    Atomics.notify(ctrl, ${DONE});
  }
  Atomics.store(state, 0, 1);
}
// one ring at a time: rings handed over while one is served wait their turn
let chain = Promise.resolve();
parentPort.on("message", (m) => {
  chain = chain.then(() => serve(m));
});
`;
}

let maxWorkersCache: number | undefined;
function maxWorkers(): number {
  if (maxWorkersCache === undefined) maxWorkersCache = computeMaxWorkers();
  return maxWorkersCache;
}
function computeMaxWorkers(): number {
  const env = process.env.FERRY_SST_COMPRESSION_THREADS;
  if (env !== undefined && env !== "") {
    const n = Number(env);
    return Number.isInteger(n) && n >= 0 ? n : 0;
  }
  return Math.max(0, availableParallelism() - 1);
}

/** true when writers may get a worker (more than one core, not disabled by FERRY_SST_COMPRESSION_THREADS=0) */
export function parallelSealingAvailable(): boolean {
  return maxWorkers() > 0 && !disabled;
}

/** Start a worker in the background (if the pool has room and none is idle or booting). */
function prewarm(): void {
  if (disabled) return;
  for (const w of pool) {
    const st = Atomics.load(w.state, 0);
    if (st === 0 || st === 1) return;
  }
  if (pool.length >= maxWorkers()) return;
  try {
    const state = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(workerSource(), {
      eval: true,
      // plain JS: no loader hooks (tsx) inherited from the parent
      execArgv: [],
      workerData: { state: state.buffer, paths: resolvePaths() },
    });
    worker.unref();
    const pw: PooledWorker = { worker, state };
    // a worker that died is never handed out again (its ring, if any, stalls: STALL_MS)
    const dead = () => {
      if (Atomics.exchange(state, 0, 3) === 0 && ++bootFailures >= 2) disabled = true;
    };
    worker.on("error", dead);
    worker.on("exit", () => {
      dead();
      const i = pool.indexOf(pw);
      if (i >= 0) pool.splice(i, 1);
    });
    pool.push(pw);
  } catch {
    disabled = true;
  }
}

/** An idle, booted worker, now owned by the caller; undefined when none is ready. */
function tryAcquire(): PooledWorker | undefined {
  for (const w of pool) if (Atomics.compareExchange(w.state, 0, 1, 2) === 1) return w;
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// ring

/** a ring dropped without close() (a writer abandoned after an error) still releases its worker */
const closer = new FinalizationRegistry<Int32Array>((ctrl) => {
  Atomics.store(ctrl, CLOSE, 1);
  Atomics.add(ctrl, SIG, 1);
  Atomics.notify(ctrl, SIG);
});

export interface SealedBlock {
  /** slot bytes: the stored block is bytes[off, off + size + 5) (data + trailer) */
  bytes: Uint8Array;
  off: number;
  size: number;
  rawSize: number;
  /** sealed on the calling thread (not by the worker) */
  inline: boolean;
  /** bloom hashes of the block's keys ([low32, high32] pairs at hashes[hashOff]; hashCount keys), when hashing */
  hashes: Uint32Array | undefined;
  hashOff: number;
  hashCount: number;
}

/**
 * K block slots of `cap` bytes each. The writer builds block #s directly in `slotView(s)`, calls `publish(len)`,
 * and later `collect()` returns the blocks in order.
 */
export class BlockRing {
  readonly k: number;
  readonly cap: number;
  private readonly ctype: number;
  private readonly compress: RawCompressor | undefined;
  private readonly slots: SharedArrayBuffer;
  private readonly buf: Uint8Array;
  private readonly views: Uint8Array[] = [];
  private readonly ctrl: Int32Array;
  private readonly lens: Int32Array;
  private readonly err = new SharedArrayBuffer(ERR_BYTES);
  private produced = 0;
  private collected = 0;
  private worker: PooledWorker | undefined;
  /** sequence number of the first block the attached worker seals (its DONE counts from here) */
  private base = 0;
  private readonly parallel: boolean;
  private readonly wakeBatch: number;
  // bloom hashing of each block's keys (off the writer's thread when a worker is attached)
  private readonly hashes: Uint32Array | undefined;
  private readonly maxKeys: number;
  private scratch: Uint8Array | undefined;
  /** private copy of the block being collected */
  private readonly work: Uint8Array;
  private readonly tmp = new Uint32Array(2);
  private closed = false;

  /**
   * `ctype` 0 (none) seals with the trailer only. `hashKeys`: also compute the bloom hashes of every block's keys
   * (the writer then does not hash in add()).
   */
  constructor(
    ctype: number,
    compress: RawCompressor | undefined,
    cap: number,
    k: number,
    parallel: boolean,
    hashKeys: boolean,
  ) {
    this.ctype = ctype;
    this.compress = compress;
    this.cap = cap;
    this.k = k;
    this.slots = new SharedArrayBuffer(cap * k);
    this.buf = new Uint8Array(this.slots);
    this.work = new Uint8Array(cap);
    for (let i = 0; i < k; i++) this.views.push(new Uint8Array(this.slots, i * cap, cap));
    this.ctrl = new Int32Array(new SharedArrayBuffer(CTRL_WORDS * 4));
    this.lens = new Int32Array(new SharedArrayBuffer(12 * k));
    // smallest entry: 3 varint bytes + the 8-byte internal-key suffix
    this.maxKeys = Math.floor(cap / 11) + 1;
    this.hashes = hashKeys ? new Uint32Array(new SharedArrayBuffer(8 * this.maxKeys * k)) : undefined;
    this.parallel = parallel && maxWorkers() > 0;
    this.wakeBatch = Math.max(1, Math.floor(k * WAKE_SHARE));
    if (this.parallel) prewarm();
  }

  get producedCount(): number {
    return this.produced;
  }
  get collectedCount(): number {
    return this.collected;
  }
  /** blocks published and not yet collected */
  get inFlight(): number {
    return this.produced - this.collected;
  }
  /** every slot is taken: collect() before the next publish() */
  get full(): boolean {
    return this.produced - this.collected >= this.k;
  }

  /** Hands over the next block: block[0, len) is copied into its slot (cap >= len + 5; not `full`). */
  publish(block: Uint8Array, len: number): void {
    const i = this.produced % this.k;
    // whole-slot views at 8-byte aligned offsets: V8 copies into shared memory fast only when aligned
    this.views[i].set(len === block.length ? block : block.subarray(0, len));
    this.lens[i] = len;
    this.produced++;
    const w = this.worker;
    if (w !== undefined) {
      const ctrl = this.ctrl;
      Atomics.store(ctrl, PROD, this.produced);
      if (Atomics.load(ctrl, WSLEEP) !== 0 && this.produced - this.base - Atomics.load(ctrl, DONE) >= this.wakeBatch) {
        this.wake();
      }
    }
  }

  private wake(): void {
    // one notify per sleep: the worker sets WSLEEP again before its next wait
    Atomics.store(this.ctrl, WSLEEP, 0);
    stats.wakes++;
    Atomics.add(this.ctrl, SIG, 1);
    Atomics.notify(this.ctrl, SIG);
  }

  /** The oldest published block, sealed (in private memory, valid until the next collect()). */
  collect(): SealedBlock {
    const s = this.collected;
    if (s >= this.produced) throw new Error("BlockRing.collect: nothing published");
    const i = s % this.k;
    if (this.worker === undefined && this.parallel && !this.closed) this.attach();
    let size: number;
    const inline = this.worker === undefined;
    const hashOff = i * 2 * this.maxKeys;
    const work = this.work;
    const at = i * this.cap;
    if (!inline) {
      this.waitSealed(s);
      size = this.lens[this.k + i];
      work.set(this.buf.subarray(at, at + size + 5));
      stats.workerBlocks++;
    } else {
      const rawLen = this.lens[i];
      work.set(this.buf.subarray(at, at + rawLen));
      if (this.hashes !== undefined) {
        this.scratch ??= new Uint8Array(this.cap);
        this.lens[2 * this.k + i] = hashBlockKeys(
          work,
          0,
          rawLen,
          this.hashes,
          hashOff,
          this.scratch,
          xxph3_64Parts,
          this.tmp,
        );
      }
      size = sealBlock(work, 0, rawLen, this.ctype, this.compress, nativeCrc32c);
      stats.inlineBlocks++;
    }
    this.collected++;
    return {
      bytes: work,
      off: 0,
      size,
      rawSize: this.lens[i],
      inline,
      hashes: this.hashes,
      hashOff,
      hashCount: this.hashes !== undefined ? this.lens[2 * this.k + i] : 0,
    };
  }

  /** Hands the ring to an idle worker from the current collection point on. */
  private attach(): void {
    const w = tryAcquire();
    if (w === undefined) {
      prewarm();
      return;
    }
    const ctrl = this.ctrl;
    for (let j = 0; j < CTRL_WORDS; j++) Atomics.store(ctrl, j, 0);
    this.base = this.collected;
    Atomics.store(ctrl, PROD, this.produced);
    this.worker = w;
    w.worker.postMessage({
      ctrl: ctrl.buffer,
      lens: this.lens.buffer,
      slots: this.slots,
      k: this.k,
      cap: this.cap,
      ctype: this.ctype,
      start: this.collected,
      err: this.err,
      hashes: this.hashes?.buffer,
      maxKeys: this.maxKeys,
    });
    closer.register(this, this.ctrl, this);
  }

  /** Returns once block s is sealed by the worker; throws when the worker failed or stalled. */
  private waitSealed(s: number): true {
    const ctrl = this.ctrl;
    const target = s - this.base;
    if (Atomics.load(ctrl, DONE) > target) return true;
    if (Atomics.load(ctrl, WSLEEP) !== 0) this.wake();
    let last = Atomics.load(ctrl, DONE);
    let since = Date.now();
    for (;;) {
      if (Atomics.load(ctrl, ERR) !== 0) this.failed();
      Atomics.store(ctrl, MSLEEP, 1);
      const d = Atomics.load(ctrl, DONE);
      if (d > target) {
        Atomics.store(ctrl, MSLEEP, 0);
        return true;
      }
      if (Atomics.load(ctrl, WSLEEP) !== 0) this.wake();
      stats.waits++;
      Atomics.wait(ctrl, DONE, d, 1000);
      Atomics.store(ctrl, MSLEEP, 0);
      const now = Atomics.load(ctrl, DONE);
      if (now > target) return true;
      if (now !== last) {
        last = now;
        since = Date.now();
      } else if (Date.now() - since > STALL_MS) {
        throw new EnvironmentError(
          `sst compression worker made no progress for ${Math.round((Date.now() - since) / 1000)} s (block ${s})`,
        );
      }
    }
  }

  private failed(): never {
    const n = new DataView(this.err).getInt32(0, true);
    const msg = Buffer.from(this.err, 4, n).toString();
    this.worker = undefined;
    this.closed = true;
    throw new EnvironmentError(`sst compression worker failed: ${msg}`);
  }

  /** Releases the worker (all blocks must be collected, or the writer is being abandoned). */
  close(): void {
    this.closed = true;
    if (this.worker !== undefined) {
      Atomics.store(this.ctrl, CLOSE, 1);
      this.wake();
      this.worker = undefined;
      closer.unregister(this);
    }
  }
}
