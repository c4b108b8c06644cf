import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InputError } from "../../core/errors.js";
import { scanLines, scanLinesStaged } from "../../core/records/lines.js";

async function* piecesOf(bytes: Uint8Array, cuts: number[]): AsyncIterable<Uint8Array> {
  let o = 0;
  for (const c of cuts) {
    const e = Math.min(bytes.length, o + c);
    yield bytes.subarray(o, e);
    o = e;
  }
  if (o < bytes.length) yield bytes.subarray(o);
}

async function lines(
  staged: boolean,
  bytes: Uint8Array,
  cuts: number[],
  stopAt: number,
  maxLine: number,
  /** staged: a TakeLines consumer that takes at most takes[call] lines per call (cycling) */
  takes?: number[],
) {
  const out: string[] = [];
  const onLine = (b: Uint8Array, s: number, e: number) => {
    out.push(Buffer.from(b.subarray(s, e)).toString("latin1"));
  };
  let call = 0;
  const take =
    takes &&
    ((b: Uint8Array, from: number, end: number, stop: number) => {
      let max = takes[call++ % takes.length];
      let i = from;
      while (max-- > 0 && i < stop) {
        const nl = b.indexOf(10, i);
        if (nl < 0 || nl >= end) break;
        out.push(Buffer.from(b.subarray(i, nl)).toString("latin1"));
        i = nl + 1;
      }
      return i;
    });
  if (staged) {
    // a stage barely larger than allowed: lines move to its start often
    const size = maxLine + (1 << 20) + 1;
    const buf = new Uint8Array(size + 100);
    await scanLinesStaged(
      piecesOf(bytes, cuts),
      1000,
      stopAt,
      maxLine,
      "s3://b/k",
      { buf, start: 50, size },
      onLine,
      take,
    );
  } else await scanLines(piecesOf(bytes, cuts), 1000, stopAt, maxLine, "s3://b/k", onLine);
  return out;
}

describe("scanLinesStaged = scanLines", () => {
  it("same lines for random text, piece sizes and stop offsets (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom("a", "bc", "\n", "\r\n", "xyz\n", "\n\n", "é"), { maxLength: 60 }),
        fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 20 }),
        fc.integer({ min: 1000, max: 1200 }),
        async (parts, cuts, stopAt) => {
          const bytes = Buffer.from(parts.join(""));
          expect(await lines(true, bytes, cuts, stopAt, 1 << 20)).toEqual(
            await lines(false, bytes, cuts, stopAt, 1 << 20),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it("with a consumer of runs of lines (take): the same lines in the same order (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom("a", "bc", "\n", "\r\n", "xyz\n", "\n\n", "é"), { maxLength: 60 }),
        fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 20 }),
        fc.integer({ min: 1000, max: 1200 }),
        fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 5 }),
        async (parts, cuts, stopAt, takes) => {
          const bytes = Buffer.from(parts.join(""));
          expect(await lines(true, bytes, cuts, stopAt, 1 << 20, takes)).toEqual(
            await lines(false, bytes, cuts, stopAt, 1 << 20),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it("pieces larger than the stage and a line longer than allowed", async () => {
    const maxLine = 1000;
    const ok = Buffer.from(`${"x".repeat(900)}\n`.repeat(3000)); // 2.7 MB, more than the ~1 MiB stage
    expect(await lines(true, ok, [ok.length], Number.POSITIVE_INFINITY, maxLine)).toEqual(
      await lines(false, ok, [ok.length], Number.POSITIVE_INFINITY, maxLine),
    );
    const long = Buffer.from(`ab\n${"y".repeat(1500)}\ncd\n`);
    await expect(lines(true, long, [700, 700], Number.POSITIVE_INFINITY, maxLine)).rejects.toBeInstanceOf(InputError);
    await expect(lines(true, long, [700, 700], Number.POSITIVE_INFINITY, maxLine)).rejects.toThrow(
      /byte 1003: a line is longer/,
    );
  });
});
