/**
 * Full bloom filter, format_version 5 "FastLocalBloom" (RocksDB util/bloom_impl.h + table/block_based/filter_policy.cc):
 * 64-byte cache lines, hash = XXPH3_64(user key), h1 = low 32 (picks the line), h2 = high 32 (probes inside it).
 */
import { xxph3_64Parts } from "./xxph3.js";

export const BLOOM_METADATA_LEN = 5;

/** numProbes for a millibits-per-key setting (FastLocalBloomImpl::ChooseNumProbes). */
export function chooseNumProbes(millibitsPerKey: number): number {
  if (millibitsPerKey <= 2080) return 1;
  if (millibitsPerKey <= 3580) return 2;
  if (millibitsPerKey <= 5100) return 3;
  if (millibitsPerKey <= 6640) return 4;
  if (millibitsPerKey <= 8300) return 5;
  if (millibitsPerKey <= 10070) return 6;
  if (millibitsPerKey <= 11720) return 7;
  if (millibitsPerKey <= 14001) return 8;
  if (millibitsPerKey <= 16050) return 9;
  if (millibitsPerKey <= 18300) return 10;
  if (millibitsPerKey <= 22001) return 11;
  if (millibitsPerKey <= 25501) return 12;
  if (millibitsPerKey > 50000) return 24;
  return Math.floor((millibitsPerKey - 1) / 2000) - 1;
}

const INV16 = 1 / 65536;

/** (u32 a * u32 b) >> 32, exact (the 2^-16 scalings are multiplications: exact, like the divisions they replace) */
function fastRange32(range: number, h: number): number {
  const hLo = h & 0xffff;
  const hHi = h >>> 16;
  return Math.floor((hHi * range + Math.floor(hLo * range * INV16)) * INV16);
}

const HASH_CHUNK = 1 << 16;

/**
 * Collects key hashes while a file is written; builds the filter block at the end. Hashes live in fixed 64 Ki-entry
 * chunks (8 bytes per key, as RocksDB keeps them): no doubling, no copies.
 */
export class BloomBuilder {
  private readonly chunks1: Uint32Array[] = [];
  private readonly chunks2: Uint32Array[] = [];
  private cur1 = new Uint32Array(0);
  private cur2 = new Uint32Array(0);
  private pos = HASH_CHUNK;
  private n = 0;
  private last1 = 0;
  private last2 = 0;
  private readonly tmp = new Uint32Array(2);
  readonly millibitsPerKey: number;

  constructor(bitsPerKey: number) {
    // RocksDB: millibits_per_key_ = round(bits_per_key * 1000)
    this.millibitsPerKey = Math.round(bitsPerKey * 1000);
  }

  get entries(): number {
    return this.n;
  }

  /** Adds bytes[start, start+len) (a user key). Adjacent duplicate hashes collapse, as in RocksDB. */
  add(bytes: Uint8Array, start: number, len: number): void {
    const t = this.tmp;
    xxph3_64Parts(bytes, start, len, t);
    this.addHash(t[0], t[1]);
  }

  /** Adds `count` precomputed hashes ([low32, high32] pairs from hashes[off]), in key order. */
  addHashes(hashes: Uint32Array, off: number, count: number): void {
    const end = off + 2 * count;
    for (let i = off; i < end; i += 2) this.addHash(hashes[i], hashes[i + 1]);
  }

  /** Adds one key's hash (a = low 32 bits, b = high 32 bits of XXPH3). */
  addHash(a: number, b: number): void {
    if (this.n > 0 && this.last1 === a && this.last2 === b) return;
    if (this.pos === HASH_CHUNK) {
      this.cur1 = new Uint32Array(HASH_CHUNK);
      this.cur2 = new Uint32Array(HASH_CHUNK);
      this.chunks1.push(this.cur1);
      this.chunks2.push(this.cur2);
      this.pos = 0;
    }
    this.cur1[this.pos] = a;
    this.cur2[this.pos] = b;
    this.pos++;
    this.last1 = a;
    this.last2 = b;
    this.n++;
  }

  /** The filter block contents: bit array + 5 metadata bytes. */
  finish(): Uint8Array {
    const { len, numProbes } = filterShape(this.n, this.millibitsPerKey);
    const out = new Uint8Array(len + BLOOM_METADATA_LEN);
    const lines = len >>> 6;
    for (let c = 0; c < this.chunks1.length; c++) {
      const c1 = this.chunks1[c];
      const c2 = this.chunks2[c];
      const m = c === this.chunks1.length - 1 ? this.pos : HASH_CHUNK;
      for (let i = 0; i < m; i++) {
        const base = fastRange32(lines, c1[i]) << 6;
        let h = c2[i];
        for (let p = 0; p < numProbes; p++) {
          const bit = h >>> 23;
          out[base + (bit >>> 3)] |= 1 << (bit & 7);
          h = Math.imul(h, 0x9e3779b9) >>> 0;
        }
      }
    }
    writeFilterMetadata(out, len, numProbes);
    // free the hashes
    this.chunks1.length = 0;
    this.chunks2.length = 0;
    this.cur1 = new Uint32Array(0);
    this.cur2 = new Uint32Array(0);
    return out;
  }
}

/** Reader side: may `key` be in the filter? (false = certainly absent) */
export class BloomReader {
  private readonly lines: number;
  private readonly numProbes: number;
  private readonly tmp = new Uint32Array(2);
  /** undefined = filter format not understood: always answer "may match" */
  readonly usable: boolean;
  constructor(private readonly data: Uint8Array) {
    const len = data.length - BLOOM_METADATA_LEN;
    this.usable = len > 0 && len % 64 === 0 && data[len] === 0xff && data[len + 1] === 0 && data[len + 3] === 0;
    this.lines = len >>> 6;
    this.numProbes = data[len + 2];
  }
  mayContain(key: Uint8Array): boolean {
    if (!this.usable) return true;
    const t = this.tmp;
    xxph3_64Parts(key, 0, key.length, t);
    const base = fastRange32(this.lines, t[0]) << 6;
    let h = t[1];
    const d = this.data;
    for (let p = 0; p < this.numProbes; p++) {
      const bit = h >>> 23;
      if ((d[base + (bit >>> 3)] & (1 << (bit & 7))) === 0) return false;
      h = Math.imul(h, 0x9e3779b9) >>> 0;
    }
    return true;
  }
}

/** FastLocalBloom's bit-array length (whole 64-byte cache lines) and probe count for n keys (RocksDB's sizing). */
export function filterShape(n: number, millibitsPerKey: number): { len: number; numProbes: number } {
  let rawLen = Math.floor((n * millibitsPerKey + 7999) / 8000);
  if (rawLen >= 0xffffffc0) rawLen = 0xffffffc0;
  return { len: Math.ceil(rawLen / 64) * 64, numProbes: chooseNumProbes(millibitsPerKey) };
}

/** The 5 metadata bytes after a FastLocalBloom bit array of `len` bytes, at out[len, len + 5). */
export function writeFilterMetadata(out: Uint8Array, len: number, numProbes: number): void {
  out[len] = 0xff; // new-implementation marker (-1)
  out[len + 1] = 0; // sub-implementation: FastLocalBloom
  out[len + 2] = numProbes;
  out[len + 3] = 0; // log2(block bytes) - 6 = 0: 64-byte lines
  out[len + 4] = 0;
}
