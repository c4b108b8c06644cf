/**
 * The shard function, recorded in every manifest as `{"shardHash": "murmur3_32", "seed": 0}` so clients, hosts and
 * the pipeline route a key the same way: shard = murmur3_x86_32(keyBytes, seed 0) mod shards (unsigned).
 * MurmurHash3 x86_32 is the public-domain hash with implementations in every language (Guava, mmh3, …).
 */
export const SHARD_HASH = "murmur3_32" as const;

export function murmur3_32(key: Uint8Array, seed = 0): number {
  return murmur3_32Range(key, 0, key.length, seed);
}

/** murmur3_32 of buf[start, end) (no view needed). */
export function murmur3_32Range(buf: Uint8Array, start: number, end: number, seed = 0): number {
  let h = seed >>> 0;
  const len = end - start;
  const nblocks = len >>> 2;
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  for (let i = 0; i < nblocks; i++) {
    const o = start + (i << 2);
    let k = buf[o] | (buf[o + 1] << 8) | (buf[o + 2] << 16) | (buf[o + 3] << 24);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, c2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = start + (nblocks << 2);
  let k1 = 0;
  const rem = len & 3;
  if (rem > 0) {
    if (rem === 3) k1 ^= buf[tail + 2] << 16;
    if (rem >= 2) k1 ^= buf[tail + 1] << 8;
    k1 ^= buf[tail];
    k1 = Math.imul(k1, c1);
    k1 = (k1 << 15) | (k1 >>> 17);
    k1 = Math.imul(k1, c2);
    h ^= k1;
  }
  h ^= len;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function shardOf(key: Uint8Array, shards: number): number {
  return murmur3_32(key, 0) % shards;
}
