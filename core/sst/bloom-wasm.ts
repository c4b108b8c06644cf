/**
 * The bloom filter builder in WebAssembly (wasm/sst-bloom, AssemblyScript): the same filter bytes as BloomBuilder
 * (core/sst/bloom.ts), with XXPH3 in native 64-bit arithmetic and the key hashes and filter bits in the module's
 * memory. The writer hands it whole data blocks (addBlock: one copy of the block, then every key is decoded and
 * hashed in the module) instead of hashing each key in add().
 *
 * Off when FERRY_SST_WASM=0 or WebAssembly is unavailable: makeBloomBuilder then gives the JS BloomBuilder.
 */
import { BLOOM_METADATA_LEN, BloomBuilder, filterShape, writeFilterMetadata } from "./bloom.js";
import { SST_BLOOM_WASM_BASE64 } from "./wasm/sst-bloom.gen.js";

const PAGE = 65536;

/** the part of the WebAssembly JS API used here (the project's TypeScript libs do not declare it) */
interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => { exports: object };
  Memory: new (desc: { initial: number }) => WasmMemory;
}
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
type WasmModule = { readonly __wasmModule: unique symbol };
const wasmApi = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

interface BloomExports {
  heapBase(): number;
  xxph3(p: number, len: number): bigint;
  reset(at: number): void;
  entries(): number;
  addKey(p: number, len: number): number;
  addHashes(p: number, n: number): number;
  addBlock(p: number, end: number, scratch: number): number;
  buildFilter(out: number, lines: number, probes: number): void;
}

let compiled: WasmModule | null | undefined;

/** the compiled module (once per process), or undefined when WebAssembly is unavailable */
function bloomModule(): WasmModule | undefined {
  if (compiled === undefined) {
    try {
      if (!wasmApi) throw new Error("no WebAssembly");
      compiled = new wasmApi.Module(Buffer.from(SST_BLOOM_WASM_BASE64, "base64"));
    } catch {
      compiled = null;
    }
  }
  return compiled ?? undefined;
}

/** whether makeBloomBuilder gives the WebAssembly builder (FERRY_SST_WASM=0 turns it off) */
export function sstWasmEnabled(): boolean {
  return process.env.FERRY_SST_WASM !== "0" && bloomModule() !== undefined;
}

/**
 * One filter's key hashes (8 bytes each from `base` on) in its own module instance and memory; a block and a key
 * scratch are laid out above the hashes for each addBlock, the filter there at finish.
 */
export class WasmBloomBuilder {
  readonly millibitsPerKey: number;
  private readonly x: BloomExports;
  private readonly mem: WasmMemory;
  private u8: Uint8Array;
  private readonly base: number;
  private n = 0;

  /** throws when WebAssembly is unavailable (makeBloomBuilder falls back to BloomBuilder) */
  constructor(bitsPerKey: number, mod: WasmModule | undefined = bloomModule()) {
    if (!mod) throw new Error("WebAssembly is unavailable");
    // RocksDB: millibits_per_key_ = round(bits_per_key * 1000)
    this.millibitsPerKey = Math.round(bitsPerKey * 1000);
    const api = wasmApi as WasmApi;
    this.mem = new api.Memory({ initial: 16 });
    this.x = new api.Instance(mod, { env: { memory: this.mem } }).exports as BloomExports;
    this.u8 = new Uint8Array(this.mem.buffer);
    this.base = this.x.heapBase();
    this.x.reset(this.base);
  }

  get entries(): number {
    return this.n;
  }

  /** the first free byte above the hashes, with room for `more` hashes */
  private free(more: number): number {
    return this.base + 8 * (this.n + more);
  }

  /** memory up to `end`; returns the byte view (new after a grow) */
  private ensure(end: number): Uint8Array {
    const have = this.mem.buffer.byteLength;
    // by at least a quarter: a few dozen grows for a file of millions of keys (each detaches the view)
    if (end > have) this.mem.grow(Math.max(Math.ceil((end - have) / PAGE), Math.ceil(have / PAGE / 4)));
    if (this.u8.buffer !== this.mem.buffer) this.u8 = new Uint8Array(this.mem.buffer);
    return this.u8;
  }

  /** Adds bytes[start, start+len) (a user key). Adjacent duplicate hashes collapse, as in RocksDB. */
  add(bytes: Uint8Array, start: number, len: number): void {
    const at = this.free(1);
    const m = this.ensure(at + len);
    if (len <= 32) for (let i = 0; i < len; i++) m[at + i] = bytes[start + i];
    else m.set(bytes.subarray(start, start + len), at);
    this.n = this.x.addKey(at, len);
  }

  /** Adds `count` precomputed hashes ([low32, high32] pairs from hashes[off]), in key order. */
  addHashes(hashes: Uint32Array, off: number, count: number): void {
    const at = this.free(count);
    const m = this.ensure(at + 8 * count);
    m.set(new Uint8Array(hashes.buffer, hashes.byteOffset + 4 * off, 8 * count), at);
    this.n = this.x.addHashes(at, count);
  }

  /**
   * Adds the user keys of a raw data block's entries, block[0, entriesEnd) (prefix-compressed internal keys, before
   * the restart array), in entry order: the same hashes as add() of each key.
   */
  addBlock(block: Uint8Array, entriesEnd: number): void {
    // an entry takes >= 11 bytes (3 varints + the 8-byte internal key suffix)
    const at = this.free(Math.floor(entriesEnd / 11) + 1);
    const m = this.ensure(at + 2 * entriesEnd + 16);
    m.set(entriesEnd === block.length ? block : new Uint8Array(block.buffer, block.byteOffset, entriesEnd), at);
    this.n = this.x.addBlock(at, at + entriesEnd, at + entriesEnd);
  }

  /** The filter block contents: bit array + 5 metadata bytes (BloomBuilder.finish). */
  finish(): Uint8Array {
    const { len, numProbes } = filterShape(this.n, this.millibitsPerKey);
    const at = (this.free(0) + 63) & ~63;
    const m = this.ensure(at + len);
    this.x.buildFilter(at, len >>> 6, numProbes);
    const out = new Uint8Array(len + BLOOM_METADATA_LEN);
    out.set(m.subarray(at, at + len));
    writeFilterMetadata(out, len, numProbes);
    this.n = 0;
    this.x.reset(this.base);
    return out;
  }
}

/** XXPH3_64 of bytes (the module's; tests compare it with core/sst/xxph3.ts), or undefined without WebAssembly */
export function wasmXxph3(bytes: Uint8Array): bigint | undefined {
  const mod = bloomModule();
  if (!mod) return undefined;
  const b = new WasmBloomBuilder(10, mod);
  const at = (b as unknown as { free(n: number): number }).free(0);
  const m = (b as unknown as { ensure(e: number): Uint8Array }).ensure(at + bytes.length);
  m.set(bytes, at);
  return BigInt.asUintN(64, (b as unknown as { x: BloomExports }).x.xxph3(at, bytes.length));
}

/**
 * The writer's bloom filter builder: WebAssembly unless FERRY_SST_WASM=0 or it is unavailable (or fails to
 * instantiate), else the JS BloomBuilder. Both give the same filter bytes.
 */
export function makeBloomBuilder(bitsPerKey: number): BloomBuilder | WasmBloomBuilder {
  if (process.env.FERRY_SST_WASM !== "0") {
    const mod = bloomModule();
    if (mod) {
      try {
        return new WasmBloomBuilder(bitsPerKey, mod);
      } catch {}
    }
  }
  return new BloomBuilder(bitsPerKey);
}
