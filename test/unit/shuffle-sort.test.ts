import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { keyPrefix, sortKeys } from "../../core/shuffle/sort.js";

/** keys that stress the sort: zero bytes, shared prefixes longer than 5 and 8 bytes, prefixes of each other, dups */
const keyArb = fc.oneof(
  fc.uint8Array({ maxLength: 12 }),
  fc.uint8Array({ minLength: 0, maxLength: 3 }).map((t) => Uint8Array.from([...Buffer.from("user-abc"), ...t])),
  fc
    .tuple(fc.nat(40), fc.uint8Array({ maxLength: 3 }))
    .map(([n, t]) => Uint8Array.from([...new Uint8Array(n).fill(7), ...t])),
  fc.constantFrom(
    new Uint8Array(0),
    Uint8Array.from([0]),
    Uint8Array.from([0, 0]),
    Uint8Array.from([97, 98]),
    Uint8Array.from([97, 98, 0]),
    Uint8Array.from([97, 98, 0, 0, 0, 0, 0, 0, 0]),
    Uint8Array.from([97, 98, 0, 0, 0, 0, 0, 0, 0, 1]),
  ),
);

function check(
  keys: Uint8Array[],
  buckets: number[],
  nb: number,
  withPrefix: boolean,
  maxNative?: number,
  minRadix?: number,
) {
  const n = keys.length;
  // keys spread over a few pages at odd offsets
  const pages: Uint8Array[] = [new Uint8Array(0), new Uint8Array(0), new Uint8Array(0)];
  const parts: number[][] = [[], [], []];
  const page = new Uint32Array(n);
  const keyStart = new Uint32Array(n);
  const keyLen = new Uint32Array(n);
  keys.forEach((k, i) => {
    const p = i % 3;
    page[i] = p;
    keyStart[i] = parts[p].length + 1;
    keyLen[i] = k.length;
    parts[p].push(0xee, ...k);
  });
  for (let p = 0; p < 3; p++) pages[p] = Uint8Array.from([...parts[p], 0xff, 0xff]);
  const hi = new Uint32Array(n);
  const lo = new Uint32Array(n);
  const lc = new Uint8Array(n);
  for (let i = 0; i < n; i++) keyPrefix(pages[page[i]], keyStart[i], keyStart[i] + keyLen[i], hi, lo, lc, i);
  const starts = new Uint32Array(nb + 1);
  const order = sortKeys(
    {
      n,
      pages,
      page,
      keyStart,
      keyLen,
      bucket: Uint32Array.from(buckets),
      bucketCount: nb,
      ...(withPrefix ? { prefixHi: hi, prefixLo: lo, prefixLen: lc } : {}),
    },
    starts,
    maxNative,
    minRadix,
  );
  const want = keys
    .map((_, i) => i)
    .sort((a, b) => buckets[a] - buckets[b] || Buffer.compare(keys[a], keys[b]) || a - b);
  expect([...order]).toEqual(want);
  for (let b = 0; b < nb; b++) expect(starts[b + 1] - starts[b]).toBe(buckets.filter((x) => x === b).length);
}

describe("sortKeys", () => {
  it("orders by (bucket, key bytes, input order) like a comparison sort (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(keyArb, fc.nat(3)), { maxLength: 300 }),
        fc.boolean(),
        fc.constantFrom(undefined, 30),
        // native levels' words sorted by radix from this many (undefined: the default, mostly the engine's sort here)
        fc.constantFrom(undefined, 0, 40),
        (recs, withPrefix, maxNative, minRadix) => {
          check(
            recs.map((r) => r[0]),
            recs.map((r) => r[1]),
            4,
            withPrefix,
            maxNative,
            minRadix,
          );
        },
      ),
      { numRuns: 400 },
    );
  });

  it("groups tied on 5 bytes, finished from the 8-byte prefixes (bytes 5..7, length class; longer ties go on) (property)", () => {
    const tail = fc.uint8Array({ maxLength: 6 }).map((a) => a.map((b) => [0, 1, 0x61, 0xff][b & 3]));
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(12), tail, fc.nat(1)), { minLength: 60, maxLength: 400, size: "max" }),
        fc.constantFrom(undefined, 0),
        (recs, minRadix) => {
          const keys = recs.map(([p, t]) => Uint8Array.from([0x70, 0x31, 0x61 + (p % 4), 0x62, p >> 2, ...t]));
          check(
            keys,
            recs.map((r) => r[2]),
            2,
            true,
            undefined,
            minRadix,
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it("native levels by radix: keys sharing bytes, differing in each digit's bits, every length class", () => {
    const keys: Uint8Array[] = [];
    for (let i = 0; i < 3000; i++) {
      const v = (i * 2654435761) >>> 0;
      const len = i % 9;
      const k = new Uint8Array(len + 1);
      k[0] = 0x70;
      for (let x = 1; x <= len; x++) k[x] = (v >>> (x * 5)) & (x % 2 ? 0xff : 0x03);
      keys.push(k);
    }
    // only the top bits of the first 4 bytes vary, or only the lowest, or none (then byte 4 and the length class)
    const top = keys.map((_, i) => Uint8Array.from([[0, 0x80, 0xff][i % 3], 9, 9, 9, (i * 37) & 0xff, 1, 2]));
    const bottom = keys.map((_, i) => Uint8Array.from([5, 5, 5, i & 1, (i * 37) & 0x0f, ...new Array(i % 4).fill(3)]));
    const none = keys.map((_, i) => Uint8Array.from([5, 5, 5, 5, i % 7, ...new Array(i % 3).fill(i % 2)]));
    for (const ks of [keys, top, bottom, none])
      for (const minRadix of [0, 100, undefined])
        check(
          ks,
          ks.map((_, i) => i % 3),
          3,
          true,
          undefined,
          minRadix,
        );
  });

  it("many equal long keys (one key throughout) and large groups", () => {
    const same = Array.from({ length: 3000 }, () => Uint8Array.from(Buffer.from("x".repeat(200))));
    check(same, new Array(3000).fill(0), 1, true);
    const many = Array.from({ length: 20000 }, (_, i) => Buffer.from(`user-${(i * 7919) % 5000}-${i % 7}`));
    check(
      many,
      many.map((_, i) => i % 5),
      5,
      true,
    );
    check(
      many,
      many.map((_, i) => i % 5),
      5,
      false,
      1000,
    );
  });
});
