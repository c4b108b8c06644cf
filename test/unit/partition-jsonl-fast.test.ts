import { gzipSync } from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { partitionChunk } from "../../core/pipeline/partition.js";
import { chooseBuckets, sampleChunk } from "../../core/pipeline/sample.js";
import type { LoadRequest, Plan } from "../../core/pipeline/types.js";
import { memoryStore, planChunks } from "../../core/records/index.js";
import { memorySinks } from "../../core/shuffle/index.js";

/**
 * Partition with the JSONL fast path gives the same run objects (byte for byte), the same skipped counts and
 * examples, and the same bad-record errors as with the fast path off (JSON.parse for every line), in WebAssembly
 * (core/records/jsonl-wasm.ts, the default) and in JS (FERRY_JSONL_WASM=0).
 */

const line = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(fc.string({ minLength: 1, maxLength: 6 }), fc.integer(), fc.string({ maxLength: 5 }))
      .map(([id, n, s]) => JSON.stringify({ id, n, s })),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.string({ minLength: 1, maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }))
      .map(([id, v]) => JSON.stringify({ v, id }, null, 1).replace(/\n/g, " ")),
  },
  { weight: 1, arbitrary: fc.integer().map((i) => `{"id":"k${i % 50}","x":1.0,"y":"\\u0041"}`) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '{"id":"a","id":"b"}',
      '{"id":""}',
      '{"x":1}',
      "not json",
      "[1]",
      '{"id":"é😀","z":-0}',
      "",
      "  ",
      '{"id":"u"}\r',
      '{"id":12,"1":2}',
    ),
  },
);

function request(over: Partial<LoadRequest>): LoadRequest {
  return {
    dataset: "ds",
    version: "v1",
    input: "s3://in/",
    format: "jsonl",
    key: ["id"],
    shards: 3,
    duplicates: "last",
    badRecords: "skip",
    maxBadRecords: 1_000_000,
    sstCompression: "none",
    bloomBitsPerKey: 10,
    targetFileSize: 64 << 20,
    minReplicas: 1,
    keepVersions: 2,
    ...over,
  };
}

async function runBoth(
  text: string,
  req: LoadRequest,
  chunkBytes: number,
  piece: number,
  gzip = false,
  /** split points (sampled keys: chooseBuckets cuts every 2 of them) and the writer's memory budget (spills) */
  more: { splitKeys?: Uint8Array[]; memoryBytes?: number } = {},
) {
  const data = new Map<string, Uint8Array>([
    [gzip ? "in/a.jsonl.gz" : "in/a.jsonl", gzip ? gzipSync(text) : Buffer.from(text)],
  ]);
  const open = memoryStore(data, piece);
  const chunks = await planChunks(
    [...data].map(([k, v]) => ({ bucket: "in", key: k.slice(3), size: v.length })),
    "jsonl",
    chunkBytes,
    { open },
  );
  const plan: Plan = {
    request: req,
    dataBucket: "d",
    createdAt: "t",
    chunks: chunks.length,
    buckets: more.splitKeys
      ? chooseBuckets(
          more.splitKeys.map((key) => ({ key, bytes: 1 })),
          more.splitKeys.length,
          req.shards,
          2,
        )
      : chooseBuckets([], 0, req.shards, 1),
    inputBytes: 0,
  };
  const results = [];
  // the fast path in WebAssembly, the fast path in JS (FERRY_JSONL_WASM=0), no fast path
  for (const [fastPath, wasm] of [
    [true, true],
    [true, false],
    [false, false],
  ]) {
    const out = new Map<string, Uint8Array>();
    const res: unknown[] = [];
    const saved = process.env.FERRY_JSONL_WASM;
    if (!wasm) process.env.FERRY_JSONL_WASM = "0";
    try {
      for (const chunk of chunks) {
        try {
          const r = await partitionChunk({
            plan,
            chunk,
            dataBucket: "d",
            open,
            openSink: memorySinks(out),
            fastPath,
            memoryBytes: more.memoryBytes,
          });
          res.push({ ...r, run: Buffer.from(out.get(`d/${r.runKey}`) as Uint8Array).toString("base64") });
        } catch (e) {
          res.push({ error: (e as Error).message, name: (e as Error).name });
        }
      }
    } finally {
      if (saved === undefined) delete process.env.FERRY_JSONL_WASM;
      else process.env.FERRY_JSONL_WASM = saved;
    }
    results.push(res);
  }
  return results;
}

describe("partition: JSONL fast path = JSON.parse path", () => {
  for (const req of [
    request({}),
    request({ key: ["id", "n"], value: ["s", "v", "n"] }),
    request({ valueRaw: "s" }),
    request({ badRecords: "fail", maxBadRecords: 0 }),
    request({ badRecords: "skip", maxBadRecords: 2 }),
  ]) {
    it(`same runs, skips and errors (${JSON.stringify({ key: req.key, value: req.value, valueRaw: req.valueRaw, badRecords: req.badRecords, maxBadRecords: req.maxBadRecords })}) (property)`, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(line, { maxLength: 60 }),
          fc.constantFrom("\n", "\r\n"),
          fc.integer({ min: 40, max: 2000 }),
          fc.integer({ min: 7, max: 300 }),
          fc.boolean(),
          async (lines, nl, chunkBytes, piece, finalNewline) => {
            const text = lines.join(nl) + (finalNewline ? nl : "");
            if (text.length === 0) return;
            const [wasm, fast, slow] = await runBoth(text, req, chunkBytes, piece);
            expect(wasm).toEqual(slow);
            expect(fast).toEqual(slow);
          },
        ),
        { numRuns: 40 },
      );
    });
  }

  // WebAssembly maps, routes and appends in one call (mapAppend): bucket ranges within shards, spills, records that
  // do not fit in the arena's rest (a page of their own), lines that decline in between
  const big = fc
    .tuple(fc.string({ minLength: 1, maxLength: 4 }), fc.integer({ min: 100, max: 3000 }), fc.boolean())
    .map(([id, n, esc]) => JSON.stringify({ id, big: (esc ? "\n" : "y").repeat(n) }));
  for (const req of [request({}), request({ key: ["id", "n"], value: ["s", "n"] }), request({ valueRaw: "s" })]) {
    it(`same runs with bucket ranges, spills and big records (${JSON.stringify({ key: req.key, value: req.value, valueRaw: req.valueRaw })}) (property)`, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.oneof({ weight: 5, arbitrary: line }, { weight: 1, arbitrary: big }), { maxLength: 60 }),
          fc.constantFrom("\n", "\r\n"),
          fc.array(
            fc.oneof(
              fc.string({ minLength: 1, maxLength: 4 }).map((k) => Buffer.from(k)),
              fc.uint8Array({ minLength: 1, maxLength: 4 }),
            ),
            { maxLength: 30 },
          ),
          fc.constantFrom(undefined, 1, 300, 5000),
          fc.integer({ min: 7, max: 300 }),
          async (lines, nl, splitKeys, memoryBytes, piece) => {
            const text = lines.join(nl) + nl;
            const [wasm, fast, slow] = await runBoth(text, req, 1 << 20, piece, false, { splitKeys, memoryBytes });
            expect(wasm).toEqual(slow);
            expect(fast).toEqual(slow);
          },
        ),
        { numRuns: 40 },
      );
    });
  }

  it("spills larger than the 1 MiB staging area (the gatherer stops for room): same runs every way", async () => {
    const lines = Array.from(
      { length: 80000 },
      (_, i) => `{"id":"k${((i * 7919) % 30011).toString(36)}","n":${i},"s":"${"abcdefgh".repeat(1 + (i % 9))}"}`,
    );
    const [wasm, fast, slow] = await runBoth(`${lines.join("\n")}\n`, request({}), 8 << 20, 65536, false, {
      memoryBytes: 3 * 1024 * 1024,
    });
    const r = slow[0] as { spills: number; records: number };
    expect(r.records).toBe(80000);
    // each spill holds more than 1 MiB of records
    expect(r.spills).toBeGreaterThanOrEqual(2);
    expect(r.spills).toBeLessThan((80000 * 50) / (1 << 20));
    expect(wasm).toEqual(slow);
    expect(fast).toEqual(slow);
  });

  it("gzip input and a line longer than a piece", async () => {
    const text = [`{"id":"a","big":"${"x".repeat(5000)}"}`, '{"id":"b","n":1}', "bad", '{"id":"c","n":1.0}'].join("\n");
    const [wasm, fast, slow] = await runBoth(text, request({}), 1 << 20, 64, true);
    expect(wasm).toEqual(slow);
    expect(fast).toEqual(slow);
    expect((fast[0] as { records: number; skipped: number }).records).toBe(3);
    expect((fast[0] as { records: number; skipped: number }).skipped).toBe(1);
  });

  it("Plan's key samples are the same with the fast path (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(line, { maxLength: 80 }),
        fc.integer({ min: 50, max: 3000 }),
        async (lines, maxBytes) => {
          const text = `${lines.join("\n")}\n`;
          const data = new Map<string, Uint8Array>([["in/a.jsonl", Buffer.from(text)]]);
          const open = memoryStore(data, 97);
          const [chunk] = await planChunks([{ bucket: "in", key: "a.jsonl", size: text.length }], "jsonl", 1 << 20, {
            open,
          });
          if (!chunk) return;
          const req = request({});
          const opts = { open, maxKeys: 20, maxBytes, windows: 3 };
          const a = await sampleChunk({ ...chunk, start: 0, end: chunk.size }, req, { ...opts, fastPath: true });
          const b = await sampleChunk({ ...chunk, start: 0, end: chunk.size }, req, { ...opts, fastPath: false });
          expect(a).toEqual(b);
        },
      ),
      { numRuns: 60 },
    );
  });
});
