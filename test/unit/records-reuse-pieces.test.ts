import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { forEachJsonlLine, planChunks } from "../../core/records/readers.js";
import type { ObjectReader, StreamOptions } from "../../core/records/source.js";

/**
 * An object whose stream() lends every piece from one buffer when asked to (`reuse`), and scribbles over the
 * previous piece before it hands out the next: a consumer that keeps a piece past the next pull reads garbage.
 */
function lendingObject(bytes: Uint8Array, pieceBytes: number, lent: { count: number }): ObjectReader {
  return {
    url: "s3://in/a.jsonl",
    size: bytes.length,
    async *stream(start: number, end: number, opts?: StreamOptions) {
      const e = Math.min(end, bytes.length);
      const scratch = new Uint8Array(pieceBytes);
      for (let o = start; o < e; o += pieceBytes) {
        const n = Math.min(pieceBytes, e - o);
        if (opts?.reuse) {
          scratch.fill(0x7b); // '{': garbage that still parses badly
          scratch.set(bytes.subarray(o, o + n));
          lent.count++;
          yield scratch.subarray(0, n);
        } else yield bytes.slice(o, o + n);
      }
    },
    async read(start: number, end: number) {
      return bytes.slice(start, Math.min(end, bytes.length));
    },
  };
}

async function lines(bytes: Uint8Array, chunkBytes: number, pieceBytes: number, staged: boolean) {
  const lent = { count: 0 };
  const obj = lendingObject(bytes, pieceBytes, lent);
  const open = async () => obj;
  const chunks = await planChunks([{ bucket: "in", key: "a.jsonl", size: bytes.length }], "jsonl", chunkBytes, {
    open,
  });
  const out: string[] = [];
  for (const chunk of chunks) {
    const stageBuf = new Uint8Array((2 << 20) + 4096);
    await forEachJsonlLine(
      chunk,
      {
        open,
        maxRecordBytes: 4096,
        ...(staged ? { stage: () => ({ buf: stageBuf, start: 100, size: stageBuf.length - 100 }) } : {}),
      },
      () => {},
      (buf, s, e, line) => {
        out.push(`${chunk.index}:${line}:${Buffer.from(buf.subarray(s, e)).toString("latin1")}`);
      },
    );
  }
  return { out, lent: lent.count };
}

describe("staged JSONL lines over lent pieces", () => {
  it("are the lines of fresh pieces; ranged chunks lend, the rest do not (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.string({ maxLength: 40 }), { minLength: 1, maxLength: 80 }),
        fc.integer({ min: 64, max: 600 }),
        fc.integer({ min: 1, max: 97 }),
        async (rows, chunkBytes, pieceBytes) => {
          const text = rows.map((r) => JSON.stringify({ id: r })).join("\n");
          const bytes = new TextEncoder().encode(text);
          const fresh = await lines(bytes, chunkBytes, pieceBytes, false);
          const staged = await lines(bytes, chunkBytes, pieceBytes, true);
          expect(fresh.lent).toBe(0);
          expect(staged.out).toEqual(fresh.out);
          // a multi-chunk object is read by byte ranges, and those pieces are lent
          if (bytes.length > chunkBytes) expect(staged.lent).toBeGreaterThan(0);
        },
      ),
      { numRuns: 200 },
    );
  });
});
