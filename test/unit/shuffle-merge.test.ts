import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { partitionChunk } from "../../core/pipeline/partition.js";
import { chooseBuckets, sampleChunk } from "../../core/pipeline/sample.js";
import type { LoadRequest, Plan } from "../../core/pipeline/types.js";
import { memoryStore, planChunks } from "../../core/records/index.js";
import { kWayMergeBatches, memorySinks } from "../../core/shuffle/index.js";

const enc = new TextEncoder();

describe("batched k-way merge", () => {
  it("equals a stable sort of all items, whatever the batching (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(fc.integer({ min: 0, max: 30 }), { maxLength: 40 }), { maxLength: 8 }),
        fc.integer({ min: 1, max: 7 }),
        fc.integer({ min: 1, max: 9 }),
        async (lists, inBatch, outBatch) => {
          const tagged = lists.map((l, s) => [...l].sort((a, b) => a - b).map((v, i) => ({ v, s, i })));
          const sources = tagged.map((l) =>
            (async function* () {
              for (let i = 0; i < l.length; i += inBatch) {
                yield [];
                yield l.slice(i, i + inBatch);
              }
            })(),
          );
          const out: Array<{ v: number; s: number; i: number }> = [];
          for await (const b of kWayMergeBatches(sources, (a, b) => a.v - b.v, outBatch)) {
            expect(b.length).toBeLessThanOrEqual(outBatch);
            out.push(...b);
          }
          const want = tagged.flat().sort((a, b) => a.v - b.v || a.s - b.s || a.i - b.i);
          expect(out).toEqual(want);
        },
      ),
      { numRuns: 200 },
    );
  });
});

function req(over: Partial<LoadRequest> = {}): LoadRequest {
  return {
    dataset: "d",
    version: "v",
    input: "s3://in/",
    format: "jsonl",
    key: ["id"],
    shards: 3,
    duplicates: "last",
    badRecords: "fail",
    maxBadRecords: 0,
    sstCompression: "none",
    bloomBitsPerKey: 10,
    targetFileSize: 1 << 20,
    minReplicas: 1,
    keepVersions: 1,
    ...over,
  };
}

describe("partition determinism", () => {
  it("a run object is byte-identical with and without spilling to disk (and across retries)", async () => {
    const text = Array.from({ length: 3000 }, (_, i) => JSON.stringify({ id: `k${(i * 31) % 1000}`, i })).join("\n");
    const open = memoryStore(new Map([["in/a.jsonl", enc.encode(text)]]));
    const [chunk] = await planChunks([{ bucket: "in", key: "a.jsonl", size: text.length }], "jsonl", 1 << 20, { open });
    const buckets = chooseBuckets(
      Array.from({ length: 1000 }, (_, i) => ({ key: enc.encode(`k${i}`), bytes: 1 })),
      6000,
      3,
      1000,
    );
    const plan: Plan = {
      request: req(),
      dataBucket: "out",
      createdAt: "t",
      chunks: 1,
      buckets,
      inputBytes: text.length,
    };
    const runs: Uint8Array[] = [];
    for (const memoryBytes of [1 << 30, 40_000, 1 << 30]) {
      const out = new Map<string, Uint8Array>();
      const r = await partitionChunk({ plan, chunk, dataBucket: "out", open, openSink: memorySinks(out), memoryBytes });
      if (memoryBytes === 40_000) expect(r.spills).toBeGreaterThanOrEqual(2);
      runs.push(out.get(`out/${r.runKey}`) as Uint8Array);
    }
    expect(Buffer.compare(runs[0], runs[1])).toBe(0);
    expect(Buffer.compare(runs[0], runs[2])).toBe(0);
  });
});

describe("sampling", () => {
  it("is deterministic, bounded, and weights add up to the chunk size", async () => {
    const text = Array.from({ length: 5000 }, (_, i) => JSON.stringify({ id: `user-${i}` })).join("\n");
    const open = memoryStore(new Map([["in/a.jsonl", enc.encode(text)]]));
    const chunks = await planChunks([{ bucket: "in", key: "a.jsonl", size: text.length }], "jsonl", 40_000, { open });
    const c = chunks[1];
    const s1 = await sampleChunk(c, req(), { open, maxKeys: 100, maxBytes: 8000 });
    const s2 = await sampleChunk(c, req(), { open, maxKeys: 100, maxBytes: 8000 });
    expect(s1.samples.map((s) => Buffer.from(s.key).toString())).toEqual(
      s2.samples.map((s) => Buffer.from(s.key).toString()),
    );
    expect(s1.samples.length).toBe(100);
    expect(s1.recordsRead).toBeGreaterThan(100);
    expect(s1.recordsRead).toBeLessThan(800);
    const total = s1.samples.reduce((t, s) => t + s.bytes, 0);
    expect(Math.abs(total - ((c.end as number) - (c.start as number)))).toBeLessThan(1);
  });
});
