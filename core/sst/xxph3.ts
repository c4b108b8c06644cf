/**
 * XXPH3_64bits (seed 0): RocksDB's fork of the xxHash 0.7.2 preview of XXH3 (util/xxph3.h), used by the
 * format_version 5 full bloom filter. It differs from released XXH3 for every input length.
 *
 * Written in 32-bit halves (no BigInt) so hashing millions of keys stays cheap: every helper leaves its 64-bit
 * result in the registers RH (high 32 bits) and RL (low 32 bits).
 *
 * The whole hash lives in one SELF-CONTAINED factory (no imports, no module-level names) because the block
 * compression worker (compress-pool.ts) runs its source text to hash bloom keys off the writer's thread.
 */

/** Allocation-free XXPH3: `parts(bytes, start, len, out)` writes [low32, high32] of the hash into out[0], out[1]. */
export interface Xxph3 {
  parts(bytes: Uint8Array, start: number, len: number, out: Uint32Array): void;
}

export function makeXxph3(): Xxph3 {
  const TWO32 = 4294967296;
  const INV32 = 1 / TWO32;

  let RH = 0;
  let RL = 0;

  // kSecret, 192 bytes (XXPH_SECRET_DEFAULT_SIZE)
  const SECRET = Uint8Array.from([
    0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c, 0xde, 0xd4, 0x6d,
    0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f, 0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0,
    0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21, 0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0,
    0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c, 0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b,
    0x1b, 0x53, 0x2e, 0xa3, 0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac,
    0xd8, 0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d, 0x8a, 0x51,
    0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64, 0xea, 0xc5, 0xac, 0x83, 0x34,
    0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb, 0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49,
    0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e, 0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8,
    0xd1, 0x7a, 0xd0, 0x31, 0xce, 0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b,
    0x40, 0x7e,
  ]);
  const SECRET_SIZE = 192;
  const SECRET_SIZE_MIN = 136;

  // primes as [hi, lo]
  const P32_1 = 0x9e3779b1;
  const P32_2 = 0x85ebca77;
  const P32_3 = 0xc2b2ae3d;
  const P64_1H = 0x9e3779b1;
  const P64_1L = 0x85ebca87;
  const P64_2H = 0xc2b2ae3d;
  const P64_2L = 0x27d4eb4f;
  const P64_3H = 0x165667b1;
  const P64_3L = 0x9e3779f9;
  const P64_4H = 0x85ebca77;
  const P64_4L = 0xc2b2ae63;
  const P64_5H = 0x27d4eb2f;
  const P64_5L = 0x165667c5;

  function rd32(b: Uint8Array, p: number): number {
    return (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
  }

  /**
   * 32x32 -> 64 exact product into RH:RL. The low half is Math.imul; the double product a*b is off by at most 2^12,
   * far less than 2^31, so rounding (a*b - low) / 2^32 gives the exact high half.
   */
  function mul32(a: number, b: number): void {
    const lo = Math.imul(a, b) >>> 0;
    RH = Math.round((a * b - lo) * INV32) >>> 0;
    RL = lo;
  }

  /** low 64 bits of a*b into RH:RL */
  function mul64(aH: number, aL: number, bH: number, bL: number): void {
    mul32(aL, bL);
    RH = (RH + Math.imul(aL, bH) + Math.imul(aH, bL)) >>> 0;
  }

  /** 64x64 -> 128, xor-fold high and low halves, into RH:RL */
  function mul128fold64(aH: number, aL: number, bH: number, bL: number): void {
    mul32(aL, bL);
    const w0 = RL;
    const llH = RH;
    mul32(aH, bL);
    const hlH = RH;
    const hlL = RL;
    mul32(aL, bH);
    const lhH = RH;
    const lhL = RL;
    mul32(aH, bH);
    const hhH = RH;
    const hhL = RL;
    const s1 = llH + hlL + lhL; // < 3*2^32
    const c1 = Math.floor(s1 / TWO32);
    const w1 = s1 >>> 0;
    const s2 = hlH + lhH + hhL + c1;
    const c2 = Math.floor(s2 / TWO32);
    const w2 = s2 >>> 0;
    const w3 = (hhH + c2) >>> 0;
    RH = (w1 ^ w3) >>> 0;
    RL = (w0 ^ w2) >>> 0;
  }

  /** h ^= h >> 37; h *= PRIME64_3; h ^= h >> 32 — on RH:RL */
  function avalanche(hH: number, hL: number): void {
    hL = (hL ^ (hH >>> 5)) >>> 0;
    mul64(hH, hL, P64_3H, P64_3L);
    RL = (RL ^ RH) >>> 0;
  }

  // accumulator for mix16B sums: AH:AL
  let AH = 0;
  let AL = 0;
  function accAdd(h: number, l: number): void {
    const lo = AL + l;
    AH = (AH + h + (lo >= TWO32 ? 1 : 0)) >>> 0;
    AL = lo >>> 0;
  }

  /** mix16B with seed 0: mul128_fold64(in_lo ^ sec_lo, in_hi ^ sec_hi), added into AH:AL */
  function mix16B(b: Uint8Array, p: number, s: number): void {
    const aL = (rd32(b, p) ^ rd32(SECRET, s)) >>> 0;
    const aH = (rd32(b, p + 4) ^ rd32(SECRET, s + 4)) >>> 0;
    const bL = (rd32(b, p + 8) ^ rd32(SECRET, s + 8)) >>> 0;
    const bH = (rd32(b, p + 12) ^ rd32(SECRET, s + 12)) >>> 0;
    mul128fold64(aH, aL, bH, bL);
    accAdd(RH, RL);
  }

  function lenTimesP64_1(len: number): void {
    mul64(0, len >>> 0, P64_1H, P64_1L);
    // len < 2^32 in practice; high bits of len (if any) contribute len_hi * P64_1L to the high word
    const lenHi = Math.floor(len / TWO32);
    if (lenHi) RH = (RH + Math.imul(lenHi, P64_1L)) >>> 0;
  }

  /** len9to16's output when called through hashInto */
  const OUT = new Uint32Array(2);

  // long-input accumulators (8 lanes, hi/lo)
  const ACC_H = new Uint32Array(8);
  const ACC_L = new Uint32Array(8);

  function accumulate512(b: Uint8Array, p: number, s: number): void {
    for (let i = 0; i < 8; i++) {
      const dL = rd32(b, p + 8 * i);
      const dH = rd32(b, p + 8 * i + 4);
      const kL = (dL ^ rd32(SECRET, s + 8 * i)) >>> 0;
      const kH = (dH ^ rd32(SECRET, s + 8 * i + 4)) >>> 0;
      // acc += data_val
      let lo = ACC_L[i] + dL;
      let hi = ACC_H[i] + dH + (lo >= TWO32 ? 1 : 0);
      lo >>>= 0;
      // acc += (u64)kL * kH
      mul32(kL, kH);
      const lo2 = lo + RL;
      hi = hi + RH + (lo2 >= TWO32 ? 1 : 0);
      ACC_L[i] = lo2 >>> 0;
      ACC_H[i] = hi >>> 0;
    }
  }

  function scrambleAcc(s: number): void {
    for (let i = 0; i < 8; i++) {
      let h = ACC_H[i];
      let l = ACC_L[i];
      // acc ^= acc >> 47
      l = (l ^ (h >>> 15)) >>> 0;
      // acc ^= key
      l = (l ^ rd32(SECRET, s + 8 * i)) >>> 0;
      h = (h ^ rd32(SECRET, s + 8 * i + 4)) >>> 0;
      // acc *= PRIME32_1
      mul64(h, l, 0, P32_1);
      ACC_H[i] = RH;
      ACC_L[i] = RL;
    }
  }

  function hashLong(b: Uint8Array, p: number, len: number): void {
    const init: Array<[number, number]> = [
      [0, P32_3],
      [P64_1H, P64_1L],
      [P64_2H, P64_2L],
      [P64_3H, P64_3L],
      [P64_4H, P64_4L],
      [0, P32_2],
      [P64_5H, P64_5L],
      [0, P32_1],
    ];
    for (let i = 0; i < 8; i++) {
      ACC_H[i] = init[i][0];
      ACC_L[i] = init[i][1];
    }
    const nbRounds = (SECRET_SIZE - 64) / 8; // 16
    const blockLen = 64 * nbRounds;
    const nbBlocks = Math.floor(len / blockLen);
    for (let n = 0; n < nbBlocks; n++) {
      for (let st = 0; st < nbRounds; st++) accumulate512(b, p + n * blockLen + st * 64, st * 8);
      scrambleAcc(SECRET_SIZE - 64);
    }
    const nbStripes = Math.floor((len - blockLen * nbBlocks) / 64);
    for (let st = 0; st < nbStripes; st++) accumulate512(b, p + nbBlocks * blockLen + st * 64, st * 8);
    if (len & 63) accumulate512(b, p + len - 64, SECRET_SIZE - 64 - 7);
    // merge
    lenTimesP64_1(len);
    AH = RH;
    AL = RL;
    const s = 11;
    for (let i = 0; i < 8; i += 2) {
      const aL = (ACC_L[i] ^ rd32(SECRET, s + 8 * i)) >>> 0;
      const aH = (ACC_H[i] ^ rd32(SECRET, s + 8 * i + 4)) >>> 0;
      const bL = (ACC_L[i + 1] ^ rd32(SECRET, s + 8 * i + 8)) >>> 0;
      const bH = (ACC_H[i + 1] ^ rd32(SECRET, s + 8 * i + 12)) >>> 0;
      mul128fold64(aH, aL, bH, bL);
      accAdd(RH, RL);
    }
    avalanche(AH, AL);
  }

  /**
   * 9..16 bytes, the common key size, with the 64x128 multiply inlined:
   * lo = in[0..8) ^ secret[0..8), hi = in[len-8..len) ^ secret[8..16), acc = len + lo + hi + fold(lo * hi).
   * Writes [low32, high32] straight into out[0], out[1] (no RH/RL: a closure variable holding a uint32 above 2^31 is
   * a heap number, allocated on every store), and scales by 2^-32 with multiplications (exact, like the divisions
   * they replace): measured ~120 -> ~70 ns per 15-byte key.
   */
  function len9to16(b: Uint8Array, p: number, len: number, out: Uint32Array): void {
    const e = p + len - 8;
    const loL = ((b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) ^ 0x396cfeb8) >>> 0;
    const loH = ((b[p + 4] | (b[p + 5] << 8) | (b[p + 6] << 16) | (b[p + 7] << 24)) ^ 0xbe4ba423) >>> 0;
    const hiL = ((b[e] | (b[e + 1] << 8) | (b[e + 2] << 16) | (b[e + 3] << 24)) ^ 0x2c81017c) >>> 0;
    const hiH = ((b[e + 4] | (b[e + 5] << 8) | (b[e + 6] << 16) | (b[e + 7] << 24)) ^ 0x1cad21f7) >>> 0;
    // four 32x32 products (low via imul, high via the rounded double product)
    let t = Math.imul(loL, hiL) >>> 0;
    const llL = t;
    const llH = Math.round((loL * hiL - t) * INV32);
    t = Math.imul(loH, hiL) >>> 0;
    const hlL = t;
    const hlH = Math.round((loH * hiL - t) * INV32);
    t = Math.imul(loL, hiH) >>> 0;
    const lhL = t;
    const lhH = Math.round((loL * hiH - t) * INV32);
    t = Math.imul(loH, hiH) >>> 0;
    const hhL = t;
    const hhH = Math.round((loH * hiH - t) * INV32);
    const s1 = llH + hlL + lhL;
    const c1 = s1 >= 2 * TWO32 ? 2 : s1 >= TWO32 ? 1 : 0;
    const w1 = s1 >>> 0;
    const s2 = hlH + lhH + hhL + c1;
    const c2 = s2 >= 2 * TWO32 ? 2 : s2 >= TWO32 ? 1 : 0;
    const w2 = s2 >>> 0;
    const w3 = (hhH + c2) >>> 0;
    const fH = (w1 ^ w3) >>> 0;
    const fL = (llL ^ w2) >>> 0;
    // acc = len + lo + hi + fold
    let aL = len + loL + hiL + fL; // < 2^35
    const carry = Math.floor(aL * INV32);
    aL >>>= 0;
    const aH = (loH + hiH + fH + carry) >>> 0;
    // avalanche: h ^= h >> 37; h *= PRIME64_3; h ^= h >> 32
    const xL = (aL ^ (aH >>> 5)) >>> 0;
    const mL = Math.imul(xL, P64_3L) >>> 0;
    const mHi = Math.round((xL * P64_3L - mL) * INV32);
    const rH = (mHi + Math.imul(xL, P64_3H) + Math.imul(aH, P64_3L)) >>> 0;
    out[1] = rH;
    out[0] = (mL ^ rH) >>> 0;
  }

  /** Hash bytes[p, p+len) into RH:RL. */
  function hashInto(b: Uint8Array, p: number, len: number): void {
    if (len <= 16) {
      if (len > 8) {
        len9to16(b, p, len, OUT);
        RL = OUT[0];
        RH = OUT[1];
        return;
      }
      if (len >= 4) {
        const inLo = rd32(b, p);
        const inHi = rd32(b, p + len - 4);
        // keyed = (inHi:inLo) ^ secret64
        const kL = (inLo ^ rd32(SECRET, 0)) >>> 0;
        const kH = (inHi ^ rd32(SECRET, 4)) >>> 0;
        // mix64 = len + ((keyed ^ (keyed >> 51)) * PRIME32_1)
        const xL = (kL ^ (kH >>> 19)) >>> 0;
        mul64(kH, xL, 0, P32_1);
        AH = RH;
        AL = RL;
        accAdd(0, len);
        // (mix64 ^ (mix64 >> 47)) * PRIME64_2
        const mL = (AL ^ (AH >>> 15)) >>> 0;
        mul64(AH, mL, P64_2H, P64_2L);
        avalanche(RH, RL);
        return;
      }
      if (len > 0) {
        const c1 = b[p];
        const c2 = b[p + (len >> 1)];
        const c3 = b[p + len - 1];
        const combined = (c1 | (c2 << 8) | (c3 << 16) | (len << 24)) >>> 0;
        const keyedL = (combined ^ rd32(SECRET, 0)) >>> 0;
        mul64(0, keyedL, P64_1H, P64_1L);
        avalanche(RH, RL);
        return;
      }
      // RocksDB modification: empty input hashes the seed: fold(secret64 * PRIME64_2)
      mul128fold64(rd32(SECRET, 4), rd32(SECRET, 0), P64_2H, P64_2L);
      return;
    }
    if (len <= 128) {
      lenTimesP64_1(len);
      AH = RH;
      AL = RL;
      if (len > 32) {
        if (len > 64) {
          if (len > 96) {
            mix16B(b, p + 48, 96);
            mix16B(b, p + len - 64, 112);
          }
          mix16B(b, p + 32, 64);
          mix16B(b, p + len - 48, 80);
        }
        mix16B(b, p + 16, 32);
        mix16B(b, p + len - 32, 48);
      }
      mix16B(b, p, 0);
      mix16B(b, p + len - 16, 16);
      avalanche(AH, AL);
      return;
    }
    if (len <= 240) {
      lenTimesP64_1(len);
      AH = RH;
      AL = RL;
      const nbRounds = len >> 4;
      for (let i = 0; i < 8; i++) mix16B(b, p + 16 * i, 16 * i);
      avalanche(AH, AL);
      AH = RH;
      AL = RL;
      for (let i = 8; i < nbRounds; i++) mix16B(b, p + 16 * i, 16 * (i - 8) + 3);
      mix16B(b, p + len - 16, SECRET_SIZE_MIN - 17);
      avalanche(AH, AL);
      return;
    }
    hashLong(b, p, len);
  }

  return {
    parts(bytes: Uint8Array, start: number, len: number, out: Uint32Array): void {
      if (len > 8 && len <= 16) {
        len9to16(bytes, start, len, out);
        return;
      }
      hashInto(bytes, start, len);
      out[0] = RL;
      out[1] = RH;
    },
  };
}

const xx = makeXxph3();
const tmp = new Uint32Array(2);

/** XXPH3_64bits(bytes) as a bigint. */
export function xxph3_64(bytes: Uint8Array): bigint {
  xx.parts(bytes, 0, bytes.length, tmp);
  return (BigInt(tmp[1]) << 32n) | BigInt(tmp[0]);
}

/**
 * Allocation-free form: hashes bytes[start, start+len) and writes [low32, high32] into out[0], out[1]
 * (the bloom filter's h1 and h2).
 */
export const xxph3_64Parts: (bytes: Uint8Array, start: number, len: number, out: Uint32Array) => void = xx.parts;
