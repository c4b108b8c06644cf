/**
 * The allocation-free decoders and the key-prefix merge against the straightforward forms they replace:
 * decodeVarint vs readVarint, parseRecordBatches vs a reference parser, kWayMergeKeyed vs kWayMergeBatches, and the
 * column form (parseSegmentColumns, mergeSegmentColumns, compareColumns) vs the record-object form.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CorruptionError } from "../../core/errors.js";
import {
  compareColumns,
  compareRunRecords,
  decodeVarint,
  kWayMergeBatches,
  kWayMergeKeyed,
  mergeSegmentColumns,
  parseRecordBatches,
  parseSegmentColumns,
  readVarint,
  varintEnd,
  writeVarint,
} from "../../core/shuffle/index.js";

function cmpKey(a: { key: Uint8Array }, b: { key: Uint8Array }): number {
  return Buffer.compare(a.key, b.key);
}

describe("decodeVarint", () => {
  it("decodes what writeVarint wrote, like readVarint, and -1 where readVarint says undefined (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: Number.MAX_SAFE_INTEGER }), { maxLength: 20 }), fc.nat(), (nums, cut) => {
        const buf = new Uint8Array(nums.length * 8 + 1);
        let p = 0;
        for (const n of nums) p = writeVarint(buf, p, n);
        const end = nums.length === 0 ? 0 : cut % (p + 1);
        let a = 0;
        for (;;) {
          const want = readVarint(buf, a, end);
          const got = decodeVarint(buf, a, end);
          if (want === undefined) {
            expect(got).toBe(-1);
            break;
          }
          expect([got, varintEnd.pos]).toEqual(want);
          a = want[1];
        }
      }),
    );
  });
});

/** segment record bytes: varint keyLen | key | varint valueLen | value | varint line (| varint run when withRun) */
function encodeRecords(recs: Array<[Uint8Array, Uint8Array, number, number?]>, withRun = false): Uint8Array {
  const buf = new Uint8Array(recs.reduce((s, [k, v]) => s + k.length + v.length + 40, 0));
  let p = 0;
  for (const [k, v, line, run] of recs) {
    p = writeVarint(buf, p, k.length);
    buf.set(k, p);
    p += k.length;
    p = writeVarint(buf, p, v.length);
    buf.set(v, p);
    p += v.length;
    p = writeVarint(buf, p, line);
    if (withRun) p = writeVarint(buf, p, run ?? 0);
  }
  return buf.subarray(0, p);
}

describe("parseRecordBatches", () => {
  it("yields every record with raw bytes, whatever the piece boundaries (property)", async () => {
    const rec = fc.tuple(
      fc.uint8Array({ maxLength: 200 }),
      fc.uint8Array({ maxLength: 300 }),
      fc.nat({ max: 5_000_000 }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(rec, { maxLength: 30 }), fc.array(fc.nat(), { maxLength: 6 }), async (recs, cuts) => {
        const bytes = encodeRecords(recs);
        const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const pieces: Uint8Array[] = [];
        let prev = 0;
        for (const c of [...at, bytes.length]) {
          pieces.push(Buffer.from(bytes.subarray(prev, c)));
          prev = c;
        }
        for (const withRaw of [false, true]) {
          const got: Array<[number[], number[], number, number]> = [];
          const raws: number[] = [];
          for await (const b of parseRecordBatches(pieces, "t", 7, withRaw))
            for (const r of b) {
              got.push([[...r.key], [...r.value], r.line, r.run]);
              if (withRaw) raws.push(...(r.raw as Uint8Array));
            }
          expect(got).toEqual(recs.map(([k, v, l]) => [[...k], [...v], l, 7]));
          if (withRaw) expect(raws).toEqual([...bytes]);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("a segment cut inside a record is a CorruptionError", async () => {
    const bytes = encodeRecords([[Buffer.from("key"), Buffer.from("value"), 3]]);
    const run = async () => {
      for await (const _ of parseRecordBatches([bytes.subarray(0, bytes.length - 2)], "seg", 0));
    };
    await expect(run()).rejects.toBeInstanceOf(CorruptionError);
  });
});

describe("kWayMergeKeyed", () => {
  it("equals kWayMergeBatches for key-first orders, short keys, shared prefixes and ties (property)", async () => {
    // small alphabets and lengths around 8 so prefixes tie, keys are prefixes of others, and zero bytes meet padding
    const key = fc.uint8Array({ maxLength: 12 }).map((k) => k.map((b) => [0, 1, 97, 255][b % 4]));
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(key, { maxLength: 30 }), { maxLength: 9 }),
        fc.integer({ min: 1, max: 7 }),
        fc.integer({ min: 1, max: 9 }),
        async (lists, inBatch, outBatch) => {
          const tagged = lists.map((l, s) =>
            l.map((k, i) => ({ key: k, s, i })).sort((a, b) => cmpKey(a, b) || a.i - b.i),
          );
          const compare = (
            a: { key: Uint8Array; s: number; i: number },
            b: { key: Uint8Array; s: number; i: number },
          ) => cmpKey(a, b) || a.s - b.s || a.i - b.i;
          const sources = () =>
            tagged.map((l) =>
              (async function* () {
                for (let i = 0; i < l.length; i += inBatch) {
                  yield [];
                  yield l.slice(i, i + inBatch);
                }
              })(),
            );
          const got: unknown[] = [];
          for await (const b of kWayMergeKeyed(sources(), compare, outBatch)) {
            expect(b.length).toBeLessThanOrEqual(outBatch);
            got.push(...b);
          }
          const want: unknown[] = [];
          for await (const b of kWayMergeBatches(sources(), compare, outBatch)) want.push(...b);
          expect(got).toEqual(want);
          expect(got).toEqual(tagged.flat().sort(compare));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("ties on the whole order go to the lower source index", async () => {
    const k = Buffer.from("same-key-longer-than-8");
    const src = (s: number) =>
      (async function* () {
        yield [{ key: k, s }];
      })();
    const got: number[] = [];
    for await (const b of kWayMergeKeyed([src(0), src(1), src(2)], () => 0)) got.push(...b.map((x) => x.s));
    expect(got).toEqual([0, 1, 2]);
  });
});

describe("column form", () => {
  const rec = fc.tuple(
    fc.uint8Array({ maxLength: 12 }).map((k) => k.map((b) => [0, 1, 97, 255][b % 4])),
    fc.uint8Array({ maxLength: 40 }),
    fc.nat({ max: 5_000_000 }),
    fc.nat({ max: 300 }),
  );

  function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
    const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
    const pieces: Uint8Array[] = [];
    let prev = 0;
    for (const c of [...at, bytes.length]) {
      pieces.push(Buffer.from(bytes.subarray(prev, c)));
      prev = c;
    }
    return pieces;
  }

  const prefix = (k: Uint8Array) => {
    const p = new Uint8Array(8);
    p.set(k.subarray(0, 8));
    return [
      p[0] * 2 ** 24 + p[1] * 2 ** 16 + p[2] * 2 ** 8 + p[3],
      p[4] * 2 ** 24 + p[5] * 2 ** 16 + p[6] * 256 + p[7],
    ];
  };

  it("parseSegmentColumns yields the records of parseRecordBatches, with key prefixes (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(rec, { maxLength: 30 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.boolean(),
        async (recs, cuts, withRun) => {
          const pieces = split(encodeRecords(recs, withRun), cuts);
          const got: unknown[] = [];
          for await (const b of parseSegmentColumns(pieces, "t", 5, withRun))
            for (let i = 0; i < b.n; i++) {
              const key = b.buf.subarray(b.keyStart[i], b.keyEnd[i]);
              expect([b.hi[i], b.lo[i]]).toEqual(prefix(key));
              got.push([[...key], [...b.buf.subarray(b.valStart[i], b.valEnd[i])], b.line[i], b.run[i]]);
            }
          expect(got).toEqual(recs.map(([k, v, l, r]) => [[...k], [...v], l, withRun ? r : 5]));
          if (!withRun) {
            const old: unknown[] = [];
            for await (const b of parseRecordBatches(pieces, "t", 5))
              for (const r of b) old.push([[...r.key], [...r.value], r.line, r.run]);
            expect(got).toEqual(old);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it("a cut record is a CorruptionError", async () => {
    const bytes = encodeRecords([[Buffer.from("k"), Buffer.from("v"), 1, 2]], true);
    const run = async () => {
      for await (const _ of parseSegmentColumns([bytes.subarray(0, bytes.length - 1)], "seg", 0, true));
    };
    await expect(run()).rejects.toBeInstanceOf(CorruptionError);
  });

  it("mergeSegmentColumns equals kWayMergeBatches with compareRunRecords (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(rec, { maxLength: 25 }), { maxLength: 9 }),
        fc.array(fc.nat(), { maxLength: 4 }),
        fc.integer({ min: 1, max: 9 }),
        async (lists, cuts, outBatch) => {
          // each source sorted in run order; runs overlap between sources so ties on key and run fall to line
          const sorted = lists.map((l) =>
            l.map(([k, v, line, run]) => ({ key: k, value: v, line, run: run % 3 })).sort(compareRunRecords),
          );
          const got: unknown[] = [];
          const srcs = sorted.map((l) =>
            parseSegmentColumns(
              split(
                encodeRecords(
                  l.map((r) => [r.key, r.value, r.line, r.run]),
                  true,
                ),
                cuts,
              ),
              "s",
              0,
              true,
            ),
          );
          for await (const out of mergeSegmentColumns(srcs, outBatch)) {
            expect(out.n).toBeLessThanOrEqual(outBatch);
            for (let x = 0; x < out.n; x++) {
              const b = out.batch[x];
              const i = out.idx[x];
              got.push([
                [...b.buf.subarray(b.keyStart[i], b.keyEnd[i])],
                [...b.buf.subarray(b.valStart[i], b.valEnd[i])],
                b.line[i],
                b.run[i],
              ]);
            }
          }
          const want: unknown[] = [];
          const objs = sorted.map((l) =>
            (async function* () {
              yield l;
            })(),
          );
          for await (const b of kWayMergeBatches(objs, compareRunRecords))
            for (const r of b) want.push([[...r.key], [...r.value], r.line, r.run]);
          expect(got).toEqual(want);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("compareColumns orders like compareRunRecords (property)", async () => {
    await fc.assert(
      fc.asyncProperty(rec, rec, async (a, b) => {
        const batch = async (r: typeof a) => {
          for await (const x of parseSegmentColumns([encodeRecords([r], true)], "t", 0, true)) return x;
          throw new Error("no batch");
        };
        const [x, y] = [await batch(a), await batch(b)];
        const ra = { key: a[0], value: a[1], line: a[2], run: a[3] };
        const rb = { key: b[0], value: b[1], line: b[2], run: b[3] };
        expect(Math.sign(compareColumns(x, 0, y, 0))).toBe(Math.sign(compareRunRecords(ra, rb)));
      }),
    );
  });
});
