import { gzipSync } from "node:zlib";
import fc from "fast-check";
import { parquetWriteBuffer } from "hyparquet-writer";
import { describe, expect, it } from "vitest";
import { InputError } from "../../core/errors.js";
import { chunkIndex, memoryStore, planChunks, readChunk, type SourceRecord } from "../../core/records/index.js";
import type { Chunk, InputFormat } from "../../core/pipeline/types.js";
import { createRequire } from "node:module";

const enc = new TextEncoder();
const zstdNapi = createRequire(import.meta.url)("zstd-napi") as { compress(b: Uint8Array): Buffer };
const zstdCompress = (b: Uint8Array | string) =>
  new Uint8Array(zstdNapi.compress(typeof b === "string" ? enc.encode(b) : b));

async function collect(it: AsyncIterable<SourceRecord>): Promise<SourceRecord[]> {
  const out: SourceRecord[] = [];
  for await (const r of it) out.push(r);
  return out;
}

function store(objs: Record<string, Uint8Array | string>, piece?: number) {
  const m = new Map<string, Uint8Array>();
  for (const [k, v] of Object.entries(objs)) m.set(`in/${k}`, typeof v === "string" ? enc.encode(v) : v);
  return {
    open: memoryStore(m, piece),
    list: [...m].map(([k, v]) => ({ bucket: "in", key: k.slice(3), size: v.length })),
  };
}

async function readAll(
  objs: Record<string, Uint8Array | string>,
  format: InputFormat,
  chunkBytes: number,
  piece?: number,
) {
  const { open, list } = store(objs, piece);
  const chunks = await planChunks(list, format, chunkBytes, { open });
  const recs: SourceRecord[] = [];
  for (const c of chunks) recs.push(...(await collect(readChunk(c, format, { open }))));
  return { chunks, recs };
}

describe("JSONL reader", () => {
  it("reads records with source and 1-based line, skips blank lines, marks bad JSON", async () => {
    const { recs } = await readAll({ "a.jsonl": '{"id":1}\n\n{"id":2}\r\nnot json\n[1]\n{"id":3}' }, "jsonl", 1 << 20);
    expect(recs.map((r) => [r.line, r.record.id ?? null, r.problem ? "bad" : "ok"])).toEqual([
      [1, 1, "ok"],
      [3, 2, "ok"],
      [4, null, "bad"],
      [5, null, "bad"],
      [6, 3, "ok"],
    ]);
    expect(recs[0].source).toBe("s3://in/a.jsonl");
    expect(recs[2].problem).toMatch(/not valid JSON/);
    expect(recs[3].problem).toMatch(/not a JSON object/);
  });

  it("byte-range chunks: every record exactly once for random chunk sizes (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ id: fc.integer(), s: fc.string({ maxLength: 30 }) }), { maxLength: 40 }),
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 1, max: 17 }),
        fc.boolean(),
        async (rows, chunkBytes, piece, trailingNewline) => {
          const text = rows.map((r, i) => JSON.stringify({ n: i, ...r })).join("\n") + (trailingNewline ? "\n" : "");
          const { chunks, recs } = await readAll({ "x.jsonl": text }, "jsonl", chunkBytes, piece);
          expect(recs.map((r) => r.record.n)).toEqual(rows.map((_, i) => i));
          // ranged chunks tile the object
          if (chunks.length > 1) expect(chunks.every((c) => c.start !== undefined)).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("lines in mid-object chunks count from the chunk start and say so", async () => {
    const text = Array.from({ length: 20 }, (_, i) => JSON.stringify({ n: i })).join("\n");
    const { recs } = await readAll({ "x.jsonl": text }, "jsonl", 40);
    const first = recs[0];
    expect(first.chunkStart).toBeUndefined();
    const later = recs.find((r) => r.chunkStart !== undefined) as SourceRecord;
    expect(later.line).toBeGreaterThanOrEqual(1);
  });

  it("gzip and zstd objects (by name and by magic bytes) are one chunk each", async () => {
    const text = Array.from({ length: 500 }, (_, i) => JSON.stringify({ n: i, pad: "x".repeat(i % 50) })).join("\n");
    const zst = zstdCompress(text);
    const { chunks, recs } = await readAll(
      { "a.jsonl.gz": gzipSync(text), "b.jsonl.zst": new Uint8Array(zst), "c.jsonl": gzipSync(text) },
      "jsonl",
      100,
      1000,
    );
    expect(chunks.map((c) => [c.key, c.start, c.compression])).toEqual([
      ["a.jsonl.gz", undefined, "gzip"],
      ["b.jsonl.zst", undefined, "zstd"],
      // named without .gz but larger than a chunk: the magic bytes decide
      ["c.jsonl", undefined, "gzip"],
    ]);
    expect(recs.length).toBe(1500);
    expect(recs.filter((r) => r.source === "s3://in/b.jsonl.zst").map((r) => r.record.n)).toEqual(
      Array.from({ length: 500 }, (_, i) => i),
    );
  });

  it("multi-member gzip is read to the end", async () => {
    const a = gzipSync('{"n":1}\n');
    const b = gzipSync('{"n":2}\n');
    const { recs } = await readAll({ "m.jsonl.gz": Buffer.concat([a, b]) }, "jsonl", 1 << 20);
    expect(recs.map((r) => r.record.n)).toEqual([1, 2]);
  });

  it("chunk ids are deterministic and ordered by (bucket, key), indexes follow", async () => {
    const { open } = store({ b: "x\n", a: "y\n" });
    const list = [
      { bucket: "in", key: "b", size: 2 },
      { bucket: "in", key: "a", size: 2 },
      { bucket: "in", key: "empty", size: 0 },
    ];
    const c1 = await planChunks(list, "jsonl", 10, { open });
    const c2 = await planChunks([...list].reverse(), "jsonl", 10, { open });
    expect(c1).toEqual(c2);
    expect(c1.map((c) => [c.id, c.key, chunkIndex(c)])).toEqual([
      ["c0000000", "a", 0],
      ["c0000001", "b", 1],
    ]);
  });
});

describe("CSV reader", () => {
  const csv = 'id,name,note\n1,ann,"said ""hi"""\n2,bob,"two\nlines"\n\n3,cy,plain\n4,dee\n';
  it("header row, quoted fields with quotes and newlines, file line of each row, wrong field counts", async () => {
    const { recs } = await readAll({ "a.csv": csv }, "csv", 1 << 20);
    expect(recs.map((r) => [r.line, r.record.id, r.record.note, r.problem ?? ""])).toEqual([
      [2, "1", 'said "hi"', ""],
      [3, "2", "two\nlines", ""],
      [6, "3", "plain", ""],
      [7, undefined, undefined, "has 2 fields, the header has 3"],
    ]);
  });

  it("byte-range chunks read every row once (header from the object start)", async () => {
    const rows = Array.from({ length: 60 }, (_, i) => `${i},name${i},"q""${i}"`);
    const text = `id,name,note\n${rows.join("\n")}\n`;
    for (const cb of [9, 33, 5000]) {
      const { recs } = await readAll({ "a.csv": text }, "csv", cb, 13);
      expect(recs.map((r) => r.record.id)).toEqual(rows.map((_, i) => String(i)));
      expect(recs.every((r) => r.record.note === `q"${r.record.id}`)).toBe(true);
    }
  });

  it("byte-range chunks: every row once with random quoted fields (property)", async () => {
    const field = fc.string({ maxLength: 12 }).map((s) => s.replace(/[\r\n]/g, " "));
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(field, field), { minLength: 1, maxLength: 25 }),
        fc.integer({ min: 5, max: 80 }),
        async (rows, cb) => {
          const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
          const text = `n,a,b\n${rows.map(([a, b], i) => `${i},${q(a)},${q(b)}`).join("\n")}\n`;
          const { recs } = await readAll({ "p.csv": text }, "csv", cb, 7);
          expect(recs.map((r) => [r.record.n, r.record.a, r.record.b])).toEqual(
            rows.map(([a, b], i) => [String(i), a, b]),
          );
        },
      ),
      { numRuns: 60 },
    );
  });

  it("byte-range chunks of a CSV with quoted newlines fail clearly", async () => {
    const rows = Array.from({ length: 30 }, (_, i) => `${i},"multi\nline ${i}"`);
    const text = `id,note\n${rows.join("\n")}\n`;
    await expect(readAll({ "a.csv": text }, "csv", 50)).rejects.toThrow(/csvSplit=false/);
    // whole-object chunks read it fine
    const { open, list } = store({ "a.csv": text });
    const chunks = await planChunks(list, "csv", 50, { open, csvSplit: false });
    expect(chunks.length).toBe(1);
    const recs = await collect(readChunk(chunks[0], "csv", { open }));
    expect(recs.length).toBe(30);
    expect(recs[1].line).toBe(4);
  });

  it("BOM, CRLF (embedded CRLF kept), trailing empty field, unclosed quote", async () => {
    const text = '\ufeffid,a,b\r\n1,"x\r\ny",\r\n2,,"q"\r\n';
    const { recs } = await readAll({ "w.csv": text }, "csv", 1 << 20);
    expect(recs.map((r) => [r.line, r.record])).toEqual([
      [2, { id: "1", a: "x\r\ny", b: "" }],
      [4, { id: "2", a: "", b: "q" }],
    ]);
    await expect(readAll({ "u.csv": 'id,a\n1,"open\n2,b\n' }, "csv", 1 << 20)).rejects.toThrow(
      /s3:\/\/in\/u\.csv line 2: CSV is malformed: a quoted field is not closed/,
    );
  });

  it("malformed CSV names the file and line", async () => {
    const { open, list } = store({ "bad.csv": 'a,b\n1,"x"y\n' });
    const [c] = await planChunks(list, "csv", 1 << 20, { open });
    const err = await collect(readChunk(c, "csv", { open })).catch((e) => e);
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toMatch(/s3:\/\/in\/bad\.csv line 2/);
  });

  it("gzip CSV", async () => {
    const { recs } = await readAll({ "a.csv.gz": gzipSync(csv) }, "csv", 10);
    expect(recs.filter((r) => !r.problem).map((r) => r.record.name)).toEqual(["ann", "bob", "cy"]);
  });
});

describe("Parquet reader", () => {
  function parquet(n: number, rowGroupSize: number, codec?: string): Uint8Array {
    const buf = parquetWriteBuffer({
      columnData: [
        { name: "id", data: Array.from({ length: n }, (_, i) => `k${i}`), type: "STRING" },
        { name: "n", data: Array.from({ length: n }, (_, i) => BigInt(i)), type: "INT64" },
        { name: "score", data: Array.from({ length: n }, (_, i) => i / 4), type: "DOUBLE" },
      ],
      rowGroupSize,
      ...(codec ? { codec } : {}),
      compressors: {
        GZIP: (b: Uint8Array) => new Uint8Array(gzipSync(b)),
        ZSTD: (b: Uint8Array) => zstdCompress(b),
      },
    } as Parameters<typeof parquetWriteBuffer>[0]);
    return new Uint8Array(buf);
  }

  it("chunks are row-group ranges; rows carry their 1-based row number", async () => {
    const data = parquet(1000, 100);
    const { chunks, recs } = await readAll({ "t.parquet": data }, "parquet", 1);
    expect(chunks.length).toBe(10);
    expect(chunks[3].rowGroups).toEqual([3, 3]);
    expect(recs.length).toBe(1000);
    expect(recs.map((r) => r.line)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(recs[999].record).toEqual({ id: "k999", n: 999n, score: 999 / 4 });
  });

  it("big chunkBytes groups row groups; compressed pages (gzip, zstd) decode", async () => {
    for (const codec of ["SNAPPY", "GZIP", "ZSTD", "UNCOMPRESSED"]) {
      const data = parquet(300, 50, codec);
      const { chunks, recs } = await readAll({ "t.parquet": data }, "parquet", 1 << 20);
      expect(chunks.length).toBe(1);
      expect(chunks[0].rowGroups).toEqual([0, 5]);
      expect(recs.map((r) => r.record.id)).toEqual(Array.from({ length: 300 }, (_, i) => `k${i}`));
    }
  });

  it("a non-Parquet object fails with the object named", async () => {
    await expect(readAll({ "t.parquet": "hello, this is not parquet at all" }, "parquet", 1)).rejects.toThrow(
      /s3:\/\/in\/t\.parquet: not a readable Parquet file/,
    );
  });
});

describe("memory does not grow with the object size", () => {
  it("streams a large JSONL object through (heap bounded)", async () => {
    // 40 MB of input read in 64 KiB pieces from a generator-backed reader: no whole-object buffer
    const line = enc.encode(`${JSON.stringify({ id: "x".repeat(80), v: 1 })}\n`);
    const lines = 400_000;
    const reader = {
      url: "s3://in/big.jsonl",
      size: line.length * lines,
      async *stream(start: number, end: number) {
        const piece = Buffer.alloc(line.length * 512);
        for (let i = 0; i < 512; i++) piece.set(line, i * line.length);
        for (let o = start; o < end; o += piece.length) yield piece.subarray(0, Math.min(piece.length, end - o));
      },
      async read(start: number, end: number) {
        return new Uint8Array(end - start);
      },
    };
    const chunk: Chunk = { id: "c0000000", index: 0, bucket: "in", key: "big.jsonl", size: reader.size };
    const before = process.memoryUsage().heapUsed;
    let n = 0;
    let peak = 0;
    for await (const _ of readChunk(chunk, "jsonl", { open: async () => reader })) {
      if (++n % 50_000 === 0) peak = Math.max(peak, process.memoryUsage().heapUsed - before);
    }
    expect(n).toBe(lines);
    expect(peak).toBeLessThan(30 * 1024 * 1024);
  });
});
