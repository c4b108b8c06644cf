/**
 * Block sealing shared by the writer's own thread and the compression worker (core/sst/compress-pool.ts).
 *
 * Both functions are SELF-CONTAINED: the worker runs their source text (`fn.toString()`), so they may use only
 * their parameters and globals (Buffer, Math) — no imports, no module-level names, no nested named functions.
 * Running the very same code on both sides is what keeps the output byte-identical whichever thread seals a block.
 */

/** Raw codec call for a RocksDB compression type: (raw) => codec output (lz4-napi: 4-byte LE size + LZ4 block). */
export type RawCompressor = (raw: Uint8Array) => Uint8Array;

/**
 * Loads the codec for compression type `ctype` (1 snappy, 4 lz4, 7 zstd) through `req`; `paths` maps package names
 * to resolved paths. Same libraries and options on both threads (same bytes).
 */
export function makeCompressor(
  ctype: number,
  req: (id: string) => unknown,
  paths: Record<string, string>,
): RawCompressor {
  if (ctype === 1) {
    const s = req(paths.snappy ?? "snappy") as {
      compressSync(b: Uint8Array, o: { copyOutputData: boolean }): Uint8Array;
    };
    // copyOutputData: the result lives in V8's heap, so the GC sees it (external buffers let RSS balloon)
    const opts = { copyOutputData: true };
    return (b) => s.compressSync(b, opts);
  }
  if (ctype === 4) {
    const l = req(paths["lz4-napi"] ?? "lz4-napi") as { compressSync(b: Uint8Array): Uint8Array };
    return (b) => l.compressSync(b);
  }
  if (ctype === 7) {
    const z = req("node:zlib") as {
      zstdCompressSync?: (b: Uint8Array, o?: unknown) => Uint8Array;
      constants: Record<string, number>;
    };
    const zc = z.zstdCompressSync;
    if (typeof zc === "function") {
      const level = z.constants.ZSTD_c_compressionLevel;
      const o = level === undefined ? {} : { params: { [level]: 3 } };
      return (b) => zc(b, o);
    }
    const m = req(paths["zstd-napi"] ?? "zstd-napi") as {
      compress(b: Uint8Array, o: { compressionLevel: number }): Uint8Array;
    };
    const o = { compressionLevel: 3 };
    return (b) => m.compress(b, o);
  }
  throw new Error(`no compressor for compression type ${ctype}`);
}

/**
 * Seals the raw block buf[off, off+rawLen) in place: compresses it with RocksDB framing (snappy raw; lz4 and zstd
 * `varint32 size + body`, lz4-napi's 4-byte size prefix dropped) and keeps the compressed form only when it is
 * smaller than raw - raw/8 (RocksDB's GoodCompressionRatio); then appends the trailer (type byte + masked CRC32c).
 * `buf` needs rawLen + 5 bytes from `off`. Returns the stored size n: the block is buf[off, off+n+5).
 */
export function sealBlock(
  buf: Uint8Array,
  off: number,
  rawLen: number,
  ctype: number,
  compress: RawCompressor | undefined,
  crc: (b: Uint8Array, initial: number) => number,
): number {
  let n = rawLen;
  let type = 0;
  if (ctype !== 0 && compress !== undefined) {
    const c = compress(buf.subarray(off, off + rawLen));
    const body = ctype === 4 ? c.subarray(4) : c;
    const prefix =
      ctype === 1 ? 0 : rawLen < 0x80 ? 1 : rawLen < 0x4000 ? 2 : rawLen < 0x200000 ? 3 : rawLen < 0x10000000 ? 4 : 5;
    const total = prefix + body.length;
    if (total < rawLen - Math.floor(rawLen / 8)) {
      let p = off;
      let v = rawLen;
      if (prefix > 0) {
        while (v >= 128) {
          buf[p++] = (v & 127) | 128;
          v >>>= 7;
        }
        buf[p++] = v;
      }
      buf.set(body, p);
      n = total;
      type = ctype;
    }
  }
  const e = off + n;
  buf[e] = type;
  const m = crc(buf.subarray(off, e + 1), 0) >>> 0;
  // RocksDB crc32c::Mask
  const masked = (((m >>> 15) | (m << 17)) + 0xa282ead8) >>> 0;
  buf[e + 1] = masked & 0xff;
  buf[e + 2] = (masked >>> 8) & 0xff;
  buf[e + 3] = (masked >>> 16) & 0xff;
  buf[e + 4] = (masked >>> 24) & 0xff;
  return n;
}

/**
 * Bloom hashes of the user keys in a raw data block buf[off, off+len) (internal keys, prefix-compressed, restart
 * array at the end): XXPH3 [low32, high32] of each user key, in entry order, into out[outOff + 2i], out[outOff + 2i + 1].
 * `scratch` holds one internal key (>= the longest key + 8 bytes), `tmp` two words. Returns the number of keys.
 */
export function hashBlockKeys(
  buf: Uint8Array,
  off: number,
  len: number,
  out: Uint32Array,
  outOff: number,
  scratch: Uint8Array,
  parts: (b: Uint8Array, start: number, len: number, out: Uint32Array) => void,
  tmp: Uint32Array,
): number {
  const end0 = off + len;
  const nRestarts = (buf[end0 - 4] | (buf[end0 - 3] << 8) | (buf[end0 - 2] << 16) | (buf[end0 - 1] << 24)) >>> 0;
  const end = end0 - 4 - 4 * nRestarts;
  let p = off;
  let n = 0;
  let o = outOff;
  // a varint32 at p (nested: this function's source is also the worker's, so it must not call module helpers)
  const varint = (): number => {
    let c = buf[p++];
    if (c < 128) return c;
    let v = c & 127;
    let sh = 7;
    c = buf[p++];
    while (c >= 128) {
      v |= (c & 127) << sh;
      sh += 7;
      c = buf[p++];
    }
    return (v | (c << sh)) >>> 0;
  };
  while (p < end) {
    const shared = varint();
    const nonShared = varint();
    const vlen = varint();
    if (nonShared <= 32) for (let j = 0; j < nonShared; j++) scratch[shared + j] = buf[p + j];
    else scratch.set(buf.subarray(p, p + nonShared), shared);
    p += nonShared + vlen;
    parts(scratch, 0, shared + nonShared - 8, tmp);
    out[o] = tmp[0];
    out[o + 1] = tmp[1];
    o += 2;
    n++;
  }
  return n;
}
