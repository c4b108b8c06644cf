/**
 * Block-based table format constants and small encoders/decoders (format_version 5). See docs/sst.md.
 */
import { CorruptionError } from "../errors.js";
import type { BlockHandle } from "./types.js";

export const MAGIC_LO = 0x85f4cff7 >>> 0; // kBlockBasedTableMagicNumber 0x88e241b785f4cff7
export const MAGIC_HI = 0x88e241b7 >>> 0;
export const FOOTER_SIZE = 53;
export const FORMAT_VERSION = 5;
export const TRAILER_SIZE = 5;

export const CHECKSUM_NONE = 0;
export const CHECKSUM_CRC32C = 1;
export const CHECKSUM_XXHASH = 2;
export const CHECKSUM_XXHASH64 = 3;
export const CHECKSUM_XXH3 = 4;

export const COMPRESSION_TYPE = { none: 0, snappy: 1, zlib: 2, lz4: 4, zstd: 7 } as const;
export const COMPRESSION_NAME: Record<number, string> = {
  0: "NoCompression",
  1: "Snappy",
  2: "Zlib",
  3: "BZip2",
  4: "LZ4",
  5: "LZ4HC",
  6: "Xpress",
  7: "ZSTD",
};

/** seqno 0, type Put (1), packed little-endian: the 8 bytes after every user key in a data block */
export const INTERNAL_SUFFIX = Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 0);

export const PROPERTIES_BLOCK = "rocksdb.properties";
export const FULL_FILTER_BLOCK = "fullfilter.rocksdb.BuiltinBloomFilter";

export function maskCrc(c: number): number {
  return (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;
}
export function unmaskCrc(m: number): number {
  const rot = (m - 0xa282ead8) >>> 0;
  return ((rot >>> 17) | (rot << 15)) >>> 0;
}

export function varintLength(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Growable byte buffer for metadata blocks (index, properties, metaindex); not the hot data path. */
export class ByteBuf {
  buf: Uint8Array;
  len = 0;
  constructor(cap = 256) {
    this.buf = new Uint8Array(cap);
  }
  ensure(n: number): void {
    if (this.len + n > this.buf.length) {
      let cap = this.buf.length * 2;
      while (cap < this.len + n) cap *= 2;
      const nb = new Uint8Array(cap);
      nb.set(this.buf.subarray(0, this.len));
      this.buf = nb;
    }
  }
  byte(b: number): void {
    this.ensure(1);
    this.buf[this.len++] = b;
  }
  varint(v: number): void {
    this.ensure(10);
    while (v >= 128) {
      this.buf[this.len++] = (v % 128) | 128;
      v = Math.floor(v / 128);
    }
    this.buf[this.len++] = v;
  }
  varintBig(v: bigint): void {
    this.ensure(10);
    while (v >= 128n) {
      this.buf[this.len++] = Number(v & 127n) | 128;
      v >>= 7n;
    }
    this.buf[this.len++] = Number(v);
  }
  fixed32(v: number): void {
    this.ensure(4);
    const b = this.buf;
    const p = this.len;
    b[p] = v & 0xff;
    b[p + 1] = (v >>> 8) & 0xff;
    b[p + 2] = (v >>> 16) & 0xff;
    b[p + 3] = (v >>> 24) & 0xff;
    this.len += 4;
  }
  fixed64(v: number): void {
    this.fixed32(v >>> 0);
    this.fixed32(Math.floor(v / 4294967296) >>> 0);
  }
  bytes(src: Uint8Array): void {
    this.ensure(src.length);
    this.buf.set(src, this.len);
    this.len += src.length;
  }
  view(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
  reset(): void {
    this.len = 0;
  }
}

/** A cursor for decoding; errors are CorruptionErrors naming what was being read. */
export class Cursor {
  constructor(
    readonly buf: Uint8Array,
    public pos: number,
    readonly end: number,
    readonly what: string,
  ) {}
  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new CorruptionError(`${this.what}: truncated varint`);
      const b = this.buf[this.pos++];
      result += (b & 127) * mul;
      if (b < 128) return result;
      mul *= 128;
    }
    throw new CorruptionError(`${this.what}: bad varint`);
  }
  fixed32(): number {
    if (this.pos + 4 > this.end) throw new CorruptionError(`${this.what}: truncated fixed32`);
    const b = this.buf;
    const p = this.pos;
    this.pos += 4;
    return (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
  }
  fixed64(): number {
    const lo = this.fixed32();
    const hi = this.fixed32();
    return hi * 4294967296 + lo;
  }
  handle(): BlockHandle {
    const offset = this.varint();
    const size = this.varint();
    return { offset, size };
  }
}

export function readFixed32(b: Uint8Array, p: number): number {
  return (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
}

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i] - b[i];
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** A short printable preview of a key: utf8 when it is printable, else hex. */
export function previewKey(k: Uint8Array, max = 48): string {
  const s = k.subarray(0, max);
  let printable = true;
  for (let i = 0; i < s.length; i++) {
    if (s[i] < 0x20 || s[i] > 0x7e) {
      printable = false;
      break;
    }
  }
  const more = k.length > max ? `…(${k.length} bytes)` : "";
  return printable ? `"${Buffer.from(s).toString("latin1")}"${more}` : `0x${Buffer.from(s).toString("hex")}${more}`;
}
