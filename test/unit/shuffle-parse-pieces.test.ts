import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CorruptionError } from "../../core/errors.js";
import { parseSegmentColumns, type SegmentBatch } from "../../core/shuffle/run.js";
import { varintLength, writeVarint } from "../../core/shuffle/varint.js";

type Rec = [Uint8Array, Uint8Array, number, number];

function encode(recs: Rec[], withRun: boolean): Uint8Array {
  let n = 0;
  for (const [k, v, l, r] of recs)
    n +=
      varintLength(k.length) +
      k.length +
      varintLength(v.length) +
      v.length +
      varintLength(l) +
      (withRun ? varintLength(r) : 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const [k, v, l, r] of recs) {
    o = writeVarint(out, o, k.length);
    out.set(k, o);
    o += k.length;
    o = writeVarint(out, o, v.length);
    out.set(v, o);
    o += v.length;
    o = writeVarint(out, o, l);
    if (withRun) o = writeVarint(out, o, r);
  }
  return out;
}

/** cut into pieces at the given points; each piece its own buffer, as a network or a window would hand them over */
function cut(bytes: Uint8Array, points: number[]): Uint8Array[] {
  const at = [...new Set(points.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const pieces: Uint8Array[] = [];
  let prev = 0;
  for (const c of [...at, bytes.length]) {
    pieces.push(bytes.slice(prev, c));
    prev = c;
  }
  return pieces;
}

describe("parseSegmentColumns over pieces that split records anywhere", () => {
  it("yields every record once, in order; batches stay valid after later pieces (property)", async () => {
    const rec = fc.tuple(
      fc.uint8Array({ maxLength: 300 }),
      fc.uint8Array({ maxLength: 3000 }),
      fc.nat({ max: 2 ** 40 }),
      fc.nat({ max: 100_000 }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(rec, { maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 60 }),
        fc.boolean(),
        async (recs, points, withRun) => {
          const batches: SegmentBatch[] = [];
          for await (const b of parseSegmentColumns(cut(encode(recs, withRun), points), "t", 7, withRun))
            batches.push(b);
          // read every batch only after the whole segment was parsed
          const got: unknown[] = [];
          for (const b of batches)
            for (let i = 0; i < b.n; i++)
              got.push([
                [...b.buf.subarray(b.keyStart[i], b.keyEnd[i])],
                [...b.buf.subarray(b.valStart[i], b.valEnd[i])],
                b.line[i],
                b.run[i],
              ]);
          expect(got).toEqual(recs.map(([k, v, l, r]) => [[...k], [...v], l, withRun ? r : 7]));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("a segment that ends inside a record is a CorruptionError naming it, however it is cut", async () => {
    const bytes = encode([[new Uint8Array(200).fill(1), new Uint8Array(5000).fill(2), 9, 0]], false);
    for (const points of [[], [1], [100, 4000], [1, 2, 3, 5000]]) {
      const err = await (async () => {
        for await (const _ of parseSegmentColumns(cut(bytes.subarray(0, bytes.length - 1), points), "seg-x", 0));
      })().catch((e) => e);
      expect(err).toBeInstanceOf(CorruptionError);
      expect(err.message).toContain("seg-x: segment ends inside a record");
    }
  });
});
