/**
 * Block codecs with RocksDB's framing: snappy = raw snappy block; lz4 = varint32 uncompressed length + LZ4 block;
 * zstd = varint32 uncompressed length + zstd frame; zlib (read only) = varint32 length + raw deflate.
 * Native packages are loaded lazily so a reader/writer that never meets a codec does not need its package.
 */
import { createRequire } from "node:module";
import * as zlib from "node:zlib";
import { ConfigError, CorruptionError, EnvironmentError } from "../errors.js";
import { makeCompressor, type RawCompressor } from "./seal.js";
import type { SstCompression } from "./types.js";

const require = createRequire(import.meta.url);

interface Snappy {
  compressSync(b: Uint8Array, opts?: { copyOutputData?: boolean }): Buffer;
  uncompressSync(b: Uint8Array, opts?: { asBuffer: boolean }): Buffer;
}
interface Lz4 {
  compressSync(b: Buffer): Buffer;
  uncompressSync(b: Uint8Array): Buffer;
}
interface Zstd {
  compress(b: Uint8Array): Uint8Array;
  decompress(b: Uint8Array): Uint8Array;
}

let snappyMod: Snappy | undefined;
let lz4Mod: Lz4 | undefined;
let zstdMod: Zstd | undefined;

function load<T>(name: string): T {
  try {
    return require(name) as T;
  } catch (e) {
    throw new EnvironmentError(
      `codec package '${name}' is not installed or has no build for this platform: ${String(e)}`,
    );
  }
}

function snappy(): Snappy {
  if (!snappyMod) snappyMod = load<Snappy>("snappy");
  return snappyMod;
}
function lz4(): Lz4 {
  if (!lz4Mod) lz4Mod = load<Lz4>("lz4-napi");
  return lz4Mod;
}

/** zstd: node:zlib's built-in zstd when present (Node >= 22.15, Lambda nodejs22.x), else the zstd-napi package. */
function zstd(): Zstd {
  if (zstdMod) return zstdMod;
  const z = zlib as unknown as {
    zstdCompressSync?: (b: Uint8Array, o?: unknown) => Buffer;
    zstdDecompressSync?: (b: Uint8Array) => Buffer;
    constants: Record<string, number>;
  };
  if (typeof z.zstdCompressSync === "function" && typeof z.zstdDecompressSync === "function") {
    const c = z.zstdCompressSync;
    const d = z.zstdDecompressSync;
    const level = z.constants.ZSTD_c_compressionLevel;
    zstdMod = {
      compress: (b) => c(b, level === undefined ? {} : { params: { [level]: 3 } }),
      decompress: (b) => d(b),
    };
    return zstdMod;
  }
  const m = load<{ compress(b: Uint8Array, o?: unknown): Buffer; decompress(b: Uint8Array): Buffer }>("zstd-napi");
  zstdMod = { compress: (b) => m.compress(b, { compressionLevel: 3 }), decompress: (b) => m.decompress(b) };
  return zstdMod;
}

export function checkCompression(c: string | undefined): SstCompression {
  const v = c ?? "none";
  if (v !== "none" && v !== "snappy" && v !== "lz4" && v !== "zstd") {
    throw new ConfigError(`unknown compression '${v}' (expected none, snappy, lz4 or zstd)`, { field: "compression" });
  }
  return v;
}

/** Make sure the codec loads now (fail at open, not at the first block). */
export function preloadCodec(c: SstCompression): void {
  if (c === "snappy") snappy();
  else if (c === "lz4") lz4();
  else if (c === "zstd") zstd();
}

/** The raw codec call the writer seals blocks with (seal.ts), on this thread. */
export function rawCompressor(c: SstCompression): RawCompressor | undefined {
  if (c === "none") return undefined;
  preloadCodec(c);
  const ctype = c === "snappy" ? 1 : c === "lz4" ? 4 : 7;
  return makeCompressor(ctype, (id) => load(id), {});
}

function putVarint32(out: Uint8Array, p: number, v: number): number {
  while (v >= 128) {
    out[p++] = (v & 127) | 128;
    v >>>= 7;
  }
  out[p++] = v;
  return p;
}

/** Compress one raw block with RocksDB framing. */
export function compressBlock(c: SstCompression, raw: Uint8Array): Uint8Array {
  switch (c) {
    case "snappy":
      // copyOutputData: the result lives in V8's heap, so GC sees it (external buffers let RSS balloon)
      return snappy().compressSync(raw, { copyOutputData: true });
    case "lz4": {
      // lz4-napi prepends a 4-byte LE size to a raw LZ4 block; RocksDB wants a varint32 size instead
      const buf = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.length);
      const out = lz4().compressSync(buf);
      const body = out.subarray(4);
      const res = Buffer.allocUnsafe(5 + body.length);
      const p = putVarint32(res, 0, raw.length);
      res.set(body, p);
      return res.subarray(0, p + body.length);
    }
    case "zstd": {
      const body = zstd().compress(raw);
      const res = Buffer.allocUnsafe(5 + body.length);
      const p = putVarint32(res, 0, raw.length);
      res.set(body, p);
      return res.subarray(0, p + body.length);
    }
    default:
      return raw;
  }
}

function readVarint32(b: Uint8Array, what: string): [number, number] {
  let v = 0;
  let shift = 0;
  for (let p = 0; p < 5 && p < b.length; p++) {
    v |= (b[p] & 127) << shift;
    if (b[p] < 128) return [v >>> 0, p + 1];
    shift += 7;
  }
  throw new CorruptionError(`${what}: bad uncompressed-length prefix`);
}

/** Decompress a block given its trailer compression type. `what` names the block in errors. */
export function decompressBlock(type: number, data: Uint8Array, what: string): Uint8Array {
  try {
    switch (type) {
      case 0:
        return data;
      case 1:
        return snappy().uncompressSync(data, { asBuffer: true });
      case 4:
      case 5: {
        const [n, p] = readVarint32(data, what);
        const tmp = Buffer.allocUnsafe(4 + data.length - p);
        tmp.writeUInt32LE(n, 0);
        tmp.set(data.subarray(p), 4);
        const out = lz4().uncompressSync(tmp);
        if (out.length !== n) throw new CorruptionError(`${what}: lz4 gave ${out.length} bytes, expected ${n}`);
        return out;
      }
      case 7: {
        const [n, p] = readVarint32(data, what);
        const out = zstd().decompress(data.subarray(p));
        if (out.length !== n) throw new CorruptionError(`${what}: zstd gave ${out.length} bytes, expected ${n}`);
        return out;
      }
      case 2: {
        const [n, p] = readVarint32(data, what);
        const out = zlib.inflateRawSync(data.subarray(p));
        if (out.length !== n) throw new CorruptionError(`${what}: zlib gave ${out.length} bytes, expected ${n}`);
        return out;
      }
      default:
        throw new CorruptionError(`${what}: unsupported compression type ${type}`);
    }
  } catch (e) {
    if (e instanceof CorruptionError || e instanceof EnvironmentError) throw e;
    throw new CorruptionError(
      `${what}: cannot decompress (type ${type}): ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}
