// AssemblyScript source of the SST writer's bloom filter builder (core/sst/bloom-wasm.ts loads it): XXPH3_64 of each
// user key (RocksDB's util/xxph3.h, the same function as core/sst/xxph3.ts, here with native 64-bit multiplies) and the
// FastLocalBloom filter bits (core/sst/bloom.ts BloomBuilder.finish). Built by `npm run build:wasm`
// (wasm/sst-bloom/build.mjs) into core/sst/wasm/sst-bloom.gen.ts; a unit test rebuilds it and checks the committed
// artifact is byte-identical.
//
// No runtime, no allocation: the (imported) memory holds the 192-byte secret (static data below heapBase()), then
// the key hashes from `hashes` on (8 bytes each, little-endian u64: low 32 bits pick the cache line, high 32 probe
// it); the JS side lays out the rest (a block copy and a key scratch above the hashes, the filter at finish).
//
// Loops are `while (true)` or counted, never `for (;;)` (see wasm/jsonl-scan/assembly/index.ts).

const SECRET: usize = memory.data<u8>([
  0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c, 0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f, 0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21, 0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c, 0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3, 0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8, 0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d, 0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64, 0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb, 0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e, 0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce, 0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e
]);

const P32_1: u64 = 0x9e3779b1;
const P32_2: u64 = 0x85ebca77;
const P32_3: u64 = 0xc2b2ae3d;
const P64_1: u64 = 0x9e3779b185ebca87;
const P64_2: u64 = 0xc2b2ae3d27d4eb4f;
const P64_3: u64 = 0x165667b19e3779f9;
const P64_4: u64 = 0x85ebca77c2b2ae63;
const P64_5: u64 = 0x27d4eb2f165667c5;

/** first byte free for the JS side (after the static data), 8-aligned */
export function heapBase(): i32 {
  return ((<i32>__heap_base) + 7) & ~7;
}

// ---- XXPH3_64bits, seed 0 ----

@inline
function rd64(p: usize): u64 {
  return load<u64>(p);
}

@inline
function rd32(p: usize): u64 {
  return <u64>load<u32>(p);
}

/** 64x64 -> 128 product, high and low halves xored */
@inline
function mul128fold64(a: u64, b: u64): u64 {
  const aL = a & 0xffffffff;
  const aH = a >> 32;
  const bL = b & 0xffffffff;
  const bH = b >> 32;
  const ll = aL * bL;
  const hl = aH * bL;
  const lh = aL * bH;
  const hh = aH * bH;
  const cross = (ll >> 32) + (hl & 0xffffffff) + lh;
  const upper = (hl >> 32) + (cross >> 32) + hh;
  const lower = (cross << 32) | (ll & 0xffffffff);
  return lower ^ upper;
}

@inline
function avalanche(h: u64): u64 {
  h ^= h >> 37;
  h *= P64_3;
  return h ^ (h >> 32);
}

@inline
function mix16B(p: usize, s: usize): u64 {
  return mul128fold64(rd64(p) ^ rd64(SECRET + s), rd64(p + 8) ^ rd64(SECRET + s + 8));
}

// long inputs: 8 accumulators
let a0: u64 = 0;
let a1: u64 = 0;
let a2: u64 = 0;
let a3: u64 = 0;
let a4: u64 = 0;
let a5: u64 = 0;
let a6: u64 = 0;
let a7: u64 = 0;

@inline
function acc1(acc: u64, p: usize, s: usize): u64 {
  const d = rd64(p);
  const k = d ^ rd64(SECRET + s);
  return acc + d + (k & 0xffffffff) * (k >> 32);
}

function accumulate512(p: usize, s: usize): void {
  a0 = acc1(a0, p, s);
  a1 = acc1(a1, p + 8, s + 8);
  a2 = acc1(a2, p + 16, s + 16);
  a3 = acc1(a3, p + 24, s + 24);
  a4 = acc1(a4, p + 32, s + 32);
  a5 = acc1(a5, p + 40, s + 40);
  a6 = acc1(a6, p + 48, s + 48);
  a7 = acc1(a7, p + 56, s + 56);
}

@inline
function scramble1(acc: u64, s: usize): u64 {
  acc ^= acc >> 47;
  acc ^= rd64(SECRET + s);
  return acc * P32_1;
}

function scrambleAcc(s: usize): void {
  a0 = scramble1(a0, s);
  a1 = scramble1(a1, s + 8);
  a2 = scramble1(a2, s + 16);
  a3 = scramble1(a3, s + 24);
  a4 = scramble1(a4, s + 32);
  a5 = scramble1(a5, s + 40);
  a6 = scramble1(a6, s + 48);
  a7 = scramble1(a7, s + 56);
}

function hashLong(p: usize, len: usize): u64 {
  a0 = P32_3;
  a1 = P64_1;
  a2 = P64_2;
  a3 = P64_3;
  a4 = P64_4;
  a5 = P32_2;
  a6 = P64_5;
  a7 = P32_1;
  const nbRounds: usize = (192 - 64) / 8; // 16
  const blockLen: usize = 64 * nbRounds;
  const nbBlocks = len / blockLen;
  for (let n: usize = 0; n < nbBlocks; n++) {
    for (let st: usize = 0; st < nbRounds; st++) accumulate512(p + n * blockLen + st * 64, st * 8);
    scrambleAcc(192 - 64);
  }
  const nbStripes = (len - blockLen * nbBlocks) / 64;
  for (let st: usize = 0; st < nbStripes; st++) accumulate512(p + nbBlocks * blockLen + st * 64, st * 8);
  if ((len & 63) != 0) accumulate512(p + len - 64, 192 - 64 - 7);
  let acc = <u64>len * P64_1;
  acc += mul128fold64(a0 ^ rd64(SECRET + 11), a1 ^ rd64(SECRET + 19));
  acc += mul128fold64(a2 ^ rd64(SECRET + 27), a3 ^ rd64(SECRET + 35));
  acc += mul128fold64(a4 ^ rd64(SECRET + 43), a5 ^ rd64(SECRET + 51));
  acc += mul128fold64(a6 ^ rd64(SECRET + 59), a7 ^ rd64(SECRET + 67));
  return avalanche(acc);
}

/** XXPH3_64bits(memory[p, p + len)) */
export function xxph3(p: usize, len: usize): u64 {
  if (len <= 16) {
    if (len > 8) {
      const lo = rd64(p) ^ rd64(SECRET);
      const hi = rd64(p + len - 8) ^ rd64(SECRET + 8);
      return avalanche(<u64>len + lo + hi + mul128fold64(lo, hi));
    }
    if (len >= 4) {
      const keyed = ((rd32(p + len - 4) << 32) | rd32(p)) ^ rd64(SECRET);
      const mix = <u64>len + (keyed ^ (keyed >> 51)) * P32_1;
      return avalanche((mix ^ (mix >> 47)) * P64_2);
    }
    if (len > 0) {
      const c1 = <u64>load<u8>(p);
      const c2 = <u64>load<u8>(p + (len >> 1));
      const c3 = <u64>load<u8>(p + len - 1);
      const combined = c1 | (c2 << 8) | (c3 << 16) | (<u64>len << 24);
      return avalanche((combined ^ rd32(SECRET)) * P64_1);
    }
    // RocksDB modification: empty input hashes the seed
    return mul128fold64(rd64(SECRET), P64_2);
  }
  if (len <= 128) {
    let acc = <u64>len * P64_1;
    if (len > 32) {
      if (len > 64) {
        if (len > 96) {
          acc += mix16B(p + 48, 96);
          acc += mix16B(p + len - 64, 112);
        }
        acc += mix16B(p + 32, 64);
        acc += mix16B(p + len - 48, 80);
      }
      acc += mix16B(p + 16, 32);
      acc += mix16B(p + len - 32, 48);
    }
    acc += mix16B(p, 0);
    acc += mix16B(p + len - 16, 16);
    return avalanche(acc);
  }
  if (len <= 240) {
    let acc = <u64>len * P64_1;
    const nbRounds = len >> 4;
    for (let i: usize = 0; i < 8; i++) acc += mix16B(p + 16 * i, 16 * i);
    acc = avalanche(acc);
    for (let i: usize = 8; i < nbRounds; i++) acc += mix16B(p + 16 * i, 16 * (i - 8) + 3);
    acc += mix16B(p + len - 16, 136 - 17);
    return avalanche(acc);
  }
  return hashLong(p, len);
}

// ---- key hashes (adjacent duplicates collapse, as in RocksDB) ----

let hashes: usize = 0;
let count: i32 = 0;
let last: u64 = 0;

/** starts an empty filter whose hashes live at memory[at, ...) */
export function reset(at: i32): void {
  hashes = <usize>at;
  count = 0;
  last = 0;
}

export function entries(): i32 {
  return count;
}

@inline
function addHash(h: u64): void {
  if (count > 0 && h == last) return;
  store<u64>(hashes + (<usize>count << 3), h);
  count++;
  last = h;
}

/** adds the hash of memory[p, p + len) (a user key); returns the number of hashes */
export function addKey(p: i32, len: i32): i32 {
  addHash(xxph3(<usize>p, <usize>len));
  return count;
}

/** adds `n` precomputed hashes ([low32, high32] u32 pairs at memory[p, ...)); returns the number of hashes */
export function addHashes(p: i32, n: i32): i32 {
  for (let i = 0; i < n; i++) addHash(load<u64>(<usize>p + (<usize>i << 3)));
  return count;
}

/**
 * Adds the user keys of the data block entries at memory[p, end) (internal keys, prefix-compressed: varint shared,
 * varint non-shared, varint value length, key delta, value; no restart array), in entry order. `scratch` holds one
 * internal key (>= end - p bytes). Returns the number of hashes.
 */
export function addBlock(p: i32, end: i32, scratch: i32): i32 {
  let q = <usize>p;
  const e = <usize>end;
  const k = <usize>scratch;
  while (q < e) {
    let shared: u32 = load<u8>(q++);
    if (shared >= 128) {
      shared &= 127;
      let sh: u32 = 7;
      while (true) {
        const c: u32 = load<u8>(q++);
        shared |= (c & 127) << sh;
        if (c < 128) break;
        sh += 7;
      }
    }
    let nonShared: u32 = load<u8>(q++);
    if (nonShared >= 128) {
      nonShared &= 127;
      let sh: u32 = 7;
      while (true) {
        const c: u32 = load<u8>(q++);
        nonShared |= (c & 127) << sh;
        if (c < 128) break;
        sh += 7;
      }
    }
    let vlen: u32 = load<u8>(q++);
    if (vlen >= 128) {
      vlen &= 127;
      let sh: u32 = 7;
      while (true) {
        const c: u32 = load<u8>(q++);
        vlen |= (c & 127) << sh;
        if (c < 128) break;
        sh += 7;
      }
    }
    memory.copy(k + <usize>shared, q, <usize>nonShared);
    q += <usize>nonShared + <usize>vlen;
    addHash(xxph3(k, <usize>(shared + nonShared - 8)));
  }
  return count;
}

/**
 * FastLocalBloom filter bits of the hashes into memory[out, out + lines * 64) (zeroed here): per hash, cache line
 * fastRange32(lines, low32), then `probes` bits from the high 32 bits (bit = h >> 23, h *= 0x9e3779b9).
 */
export function buildFilter(out: i32, lines: u32, probes: i32): void {
  const o = <usize>out;
  memory.fill(o, 0, <usize>lines << 6);
  const n = count;
  for (let i = 0; i < n; i++) {
    const h = load<u64>(hashes + (<usize>i << 3));
    const base = o + (<usize>(((h & 0xffffffff) * <u64>lines) >> 32) << 6);
    let h2 = <u32>(h >> 32);
    for (let j = 0; j < probes; j++) {
      const bit = h2 >> 23;
      const a = base + <usize>(bit >> 3);
      store<u8>(a, load<u8>(a) | (<u8>1 << <u8>(bit & 7)));
      h2 *= 0x9e3779b9;
    }
  }
}
