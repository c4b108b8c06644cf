import { crc32 as zlibCrc32 } from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CorruptionError, InputError } from "../../core/errors.js";
import { buildBucket } from "../../core/pipeline/build.js";
import { partitionChunk } from "../../core/pipeline/partition.js";
import { chooseBuckets, makeRouter } from "../../core/pipeline/sample.js";
import type { Bucket, LoadRequest, Plan } from "../../core/pipeline/types.js";
import { memoryObject, memoryStore, planChunks } from "../../core/records/index.js";
import {
  kWayMerge,
  memorySinks,
  RunWriter,
  readRunEntry,
  readRunIndex,
  readSegment,
  shardOf,
} from "../../core/shuffle/index.js";
import { makeWasmJsonlMapper } from "../../core/records/jsonl-wasm.js";
import type { RecordGather } from "../../core/shuffle/run.js";
import { keyPrefix } from "../../core/shuffle/sort.js";
import { varintLength, writeVarint } from "../../core/shuffle/varint.js";
import { crc32c } from "../../core/sst/crc32c.js";
import { bufferSource, SstReader } from "../../core/sst/index.js";

const enc = new TextEncoder();
const dec = new TextDecoder();

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** the gatherer the arena supplier made (the test's RunWriter asks for it at finish) */
const w2: { gather?: RecordGather } = {};

describe("run objects", () => {
  for (const memoryBytes of [1 << 30, 2000]) {
    it(`round-trip: sorted segments per bucket, equal keys in input order, index and meta (memory budget ${memoryBytes})`, async () => {
      const store = new Map<string, Uint8Array>();
      const w = new RunWriter({
        bucketCount: 3,
        meta: { chunkId: "c0000007", chunkIndex: 7, source: "s3://in/x", unit: "line" },
        memoryBytes,
      });
      const expected: Array<Array<[string, string, number]>> = [[], [], []];
      for (let i = 1; i <= 600; i++) {
        const k = `k${(i * 7919) % 211}`;
        const b = i % 3 === 0 ? 2 : i % 3 === 1 ? 0 : 0; // bucket 1 stays empty
        w.add(b, enc.encode(k), enc.encode(`v${i}`), i);
        expected[b].push([k, `v${i}`, i]);
      }
      const sinkFor = memorySinks(store);
      const summary = await w.finish(await sinkFor("d", "run"));
      if (memoryBytes < 10000) expect(summary.spills).toBeGreaterThan(0);
      const reader = memoryObject(store.get("d/run") as Uint8Array, "s3://d/run", 37);
      const idx = await readRunIndex(reader);
      expect(idx.header).toMatchObject({ bucketCount: 3, chunkIndex: 7 });
      expect(idx.meta.source).toBe("s3://in/x");
      expect(idx.entries.map((e) => e.count)).toEqual([400, 0, 200]);
      for (let b = 0; b < 3; b++) {
        const { entry, header } = await readRunEntry(reader, b);
        expect(entry).toEqual(idx.entries[b]);
        const got = (await collect(readSegment(reader, entry, header.chunkIndex))).map(
          (r) => [dec.decode(r.key), dec.decode(r.value), r.line] as [string, string, number],
        );
        const want = [...expected[b]].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[2] - y[2]));
        expect(got).toEqual(want);
      }
    });
  }

  it("page 0 from a supplier (arena option): sized once with the input stage, same bytes as a plain array", async () => {
    const runs: string[] = [];
    for (const supplied of [false, true]) {
      const asked: number[] = [];
      const w = new RunWriter({
        bucketCount: 2,
        meta: { chunkId: "c1", chunkIndex: 1, source: "s", unit: "line" },
        memoryBytes: 4096,
        inputStageBytes: 3000,
        ...(supplied
          ? {
              arena: (bytes: number) => {
                asked.push(bytes);
                return new Uint8Array(bytes + 100);
              },
            }
          : {}),
      });
      const stage = w.inputStage(3000);
      if (supplied) {
        expect(asked).toEqual([4096 + (1 << 20) + 3000]);
        expect(stage.buf.length).toBe(asked[0] + 100);
        // larger than the array: a supplied page 0 is never replaced
        expect(() => w.inputStage(3101)).toThrow(RangeError);
      }
      // records from ranges of the stage (moved with copyWithin) and from another array, past the arena (own pages)
      const text = enc.encode('{"id":"k1","v":1}{"id":"k0","v":2}');
      stage.buf.set(text, stage.start);
      const segs = Int32Array.of(stage.start, stage.start + 17);
      for (let i = 0; i < 400; i++) {
        w.addRanges(i % 2, stage.buf, stage.start + 7, stage.start + 9, stage.buf, segs, 1, 17, i + 1);
        w.addRanges(i % 2, text, 24, 26, text, Int32Array.of(17, 34), 1, 17, i + 1);
      }
      const store = new Map<string, Uint8Array>();
      await w.finish(await memorySinks(store)("d", "r"));
      runs.push(Buffer.from(store.get("d/r") as Uint8Array).toString("hex"));
    }
    expect(runs[1]).toBe(runs[0]);
    expect(
      () =>
        new RunWriter({
          bucketCount: 1,
          meta: { chunkId: "c", chunkIndex: 0, source: "s", unit: "line" },
          arena: (bytes) => new Uint8Array(bytes - 1),
        }),
    ).toThrow(RangeError);
  });

  it("pushWritten (a record encoded in place at appendPos) leaves what addRanges would: same run bytes, spills too (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(3), fc.uint8Array({ minLength: 1, maxLength: 20 }), fc.nat(3000)), {
          maxLength: 80,
        }),
        fc.constantFrom(1, 2000, 1 << 20),
        async (recs, memoryBytes) => {
          const runs: string[] = [];
          for (const inPlace of [false, true]) {
            const w = new RunWriter({
              bucketCount: 4,
              meta: { chunkId: "c1", chunkIndex: 1, source: "s", unit: "line" },
              memoryBytes,
              inputStageBytes: 8192,
            });
            const st = w.inputStage(8192);
            const hi = new Uint32Array(1);
            const lo = new Uint32Array(1);
            const lc = new Uint8Array(1);
            let line = 0;
            for (const [b, key, vl] of recs) {
              line += 1 + (vl % 300) * 7;
              // key then value in the input stage
              st.buf.set(key, st.start);
              st.buf.fill(vl & 255, st.start + key.length, st.start + key.length + vl);
              const ks = st.start;
              const ke = ks + key.length;
              const segs = Int32Array.of(ke, ke + (vl >> 1), ke + (vl >> 1), ke + vl);
              const need = varintLength(key.length) + key.length + varintLength(vl) + vl + varintLength(line);
              const pos = w.appendPos;
              if (inPlace && pos >= 0 && pos + need <= w.appendLimit) {
                let p = writeVarint(st.buf, pos, key.length);
                const kStart = p;
                st.buf.copyWithin(p, ks, ke);
                p = writeVarint(st.buf, p + key.length, vl);
                st.buf.copyWithin(p, ke, ke + vl);
                writeVarint(st.buf, p + vl, line);
                keyPrefix(st.buf, kStart, kStart + key.length, hi, lo, lc, 0);
                w.pushWritten(b, need, kStart, key.length, hi[0], lo[0], lc[0]);
              } else w.addRanges(b, st.buf, ks, ke, st.buf, segs, 2, vl, line);
            }
            const store = new Map<string, Uint8Array>();
            await w.finish(await memorySinks(store)("d", "r"));
            runs.push(Buffer.from(store.get("d/r") as Uint8Array).toString("hex"));
          }
          expect(runs[1]).toBe(runs[0]);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("copy-out by the WebAssembly gatherer (arena in the module's memory) gives the same bytes as the JS loop (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.tuple(
            fc.nat(3),
            fc.uint8Array({ minLength: 1, maxLength: 12 }),
            // mostly small values; some near or past the 1 MiB output staging (records that do not fit what is left)
            fc.oneof(fc.nat(300), fc.integer({ min: 300_000, max: 1_100_000 })),
          ),
          { maxLength: 60 },
        ),
        // input stage: room for the tables, or not (then the JS loop)
        fc.constantFrom(1 << 16, 16),
        async (recs, inputStageBytes) => {
          const runs: string[] = [];
          for (const wasm of [false, true]) {
            let gathered = 0;
            const mapper = makeWasmJsonlMapper({ key: ["id"] }, 0);
            const w = new RunWriter({
              bucketCount: 4,
              meta: { chunkId: "c1", chunkIndex: 1, source: "s", unit: "line" },
              memoryBytes: 8 << 20,
              inputStageBytes,
              ...(wasm
                ? {
                    arena: (bytes: number) => {
                      const m = makeWasmJsonlMapper({ key: ["id"] }, bytes);
                      if (!m) throw new Error("no WebAssembly");
                      const g = m.gather;
                      w2.gather = {
                        copy: (...a: Parameters<typeof g.copy>) => {
                          gathered++;
                          return g.copy(...a);
                        },
                        get bytes() {
                          return g.bytes;
                        },
                      };
                      return m.arena;
                    },
                    gather: () => w2.gather,
                  }
                : {}),
            });
            recs.forEach(([b, key, vl], i) => {
              w.add(b, key, new Uint8Array(vl).fill((i * 7 + vl) & 255), i + 1);
            });
            const store = new Map<string, Uint8Array>();
            await w.finish(await memorySinks(store)("d", "r"));
            runs.push(Buffer.from(store.get("d/r") as Uint8Array).toString("hex"));
            if (wasm && mapper && recs.length > 0 && inputStageBytes > 12 * recs.length)
              expect(gathered).toBeGreaterThan(0);
          }
          expect(runs[1]).toBe(runs[0]);
        },
      ),
      { numRuns: 40 },
    );
  });

  it("a flipped byte is detected (checksum)", async () => {
    const store = new Map<string, Uint8Array>();
    const w = new RunWriter({ bucketCount: 1, meta: { chunkId: "c0", chunkIndex: 0, source: "s", unit: "line" } });
    for (let i = 0; i < 50; i++) w.add(0, enc.encode(`key${i}`), enc.encode("value"), i + 1);
    await w.finish(await memorySinks(store)("d", "r"));
    const bytes = Uint8Array.from(store.get("d/r") as Uint8Array);
    bytes[bytes.length - 30] ^= 1;
    const reader = memoryObject(bytes);
    const { entry } = await readRunEntry(reader, 0);
    await expect(collect(readSegment(reader, entry, 0))).rejects.toBeInstanceOf(CorruptionError);
    const bad = Uint8Array.from(bytes);
    bad[0] = 0;
    await expect(readRunIndex(memoryObject(bad))).rejects.toThrow(/not a ferry run object/);
  });

  it("the checksum streams with the segment: any piece size reads it, a flip in any checksum byte is caught", async () => {
    const store = new Map<string, Uint8Array>();
    const w = new RunWriter({ bucketCount: 2, meta: { chunkId: "c0", chunkIndex: 0, source: "s", unit: "line" } });
    for (let i = 0; i < 40; i++) w.add(i % 2, enc.encode(`key${i}`), enc.encode(`value${i}`), i + 1);
    const { entries } = await w.finish(await memorySinks(store)("d", "r"));
    const bytes = store.get("d/r") as Uint8Array;
    const expectKeys = [0, 1].map((b) =>
      [...Array(40).keys()]
        .filter((i) => i % 2 === b)
        .map((i) => `key${i}`)
        .sort(),
    );
    for (const piece of [1, 2, 3, 4, 5, 7, 13, 64 * 1024]) {
      for (const e of entries) {
        const got = await collect(readSegment(memoryObject(bytes, "<m>", piece), e, 0));
        expect(got.map((r) => dec.decode(r.key)).sort()).toEqual(expectKeys[entries.indexOf(e)]);
        for (let j = 1; j <= 4; j++) {
          const bad = Uint8Array.from(bytes);
          bad[e.offset + e.length - j] ^= 0x10;
          await expect(collect(readSegment(memoryObject(bad, "<m>", piece), e, 0))).rejects.toThrow(
            /checksum mismatch/,
          );
        }
      }
    }
  });

  it("checksums are CRC-32C (format FERRYRN2); a run of the format before (FERRYRN1, zlib CRC-32) is rejected", async () => {
    const store = new Map<string, Uint8Array>();
    const w = new RunWriter({ bucketCount: 2, meta: { chunkId: "c0", chunkIndex: 0, source: "s", unit: "line" } });
    for (let i = 0; i < 50; i++) w.add(i % 2, enc.encode(`key${i}`), enc.encode("value"), i + 1);
    const { entries } = await w.finish(await memorySinks(store)("d", "r"));
    const bytes = Buffer.from(store.get("d/r") as Uint8Array);
    expect(bytes.toString("latin1", 0, 8)).toBe("FERRYRN2");
    expect(bytes.readUInt32LE(20)).toBe(crc32c(bytes.subarray(0, 20)));
    for (const e of entries) {
      const end = e.offset + e.length - 4;
      expect(bytes.readUInt32LE(end)).toBe(crc32c(bytes.subarray(e.offset, end)));
    }
    const old = Buffer.from(bytes);
    old.write("FERRYRN1", 0, "latin1");
    old.writeUInt32LE(zlibCrc32(old.subarray(0, 20)), 20);
    const err = await readRunIndex(memoryObject(old)).catch((e) => e);
    expect(err).toBeInstanceOf(CorruptionError);
    expect(String(err)).toMatch(/not a ferry run object \(bad magic\)/);
  });
});

describe("k-way merge", () => {
  it("merges sorted sources into one sorted stream (property), ties to the earlier source", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(fc.integer({ min: 0, max: 50 })), { maxLength: 9 }), async (lists) => {
        const sorted = lists.map((l) => [...l].sort((a, b) => a - b).map((v, i) => ({ v, src: lists.indexOf(l), i })));
        const sources = sorted.map((l) =>
          (async function* () {
            yield* l;
          })(),
        );
        const out = await collect(kWayMerge(sources, (a, b) => a.v - b.v));
        expect(out.map((x) => x.v)).toEqual(lists.flat().sort((a, b) => a - b));
        for (let i = 1; i < out.length; i++) {
          if (out[i].v === out[i - 1].v)
            expect(out[i].src > out[i - 1].src || (out[i].src === out[i - 1].src && out[i].i > out[i - 1].i)).toBe(
              true,
            );
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe("split points", () => {
  it("balanced buckets per shard, sorted ids, contiguous ranges, deterministic", () => {
    const samples = Array.from({ length: 20000 }, (_, i) => ({
      key: enc.encode(`user-${(i * 7727) % 20000}`),
      bytes: 100,
    }));
    const total = 2_000_000;
    const buckets = chooseBuckets(samples, total, 4, 100_000);
    expect(chooseBuckets([...samples].reverse(), total, 4, 100_000)).toEqual(buckets);
    expect(buckets.map((b) => b.index)).toEqual(buckets.map((_, i) => i));
    expect([...buckets.map((b) => b.id)].sort()).toEqual(buckets.map((b) => b.id));
    const route = makeRouter(buckets, 4);
    const counts = new Array(buckets.length).fill(0);
    for (const s of samples) counts[route(s.key)]++;
    // ~20 buckets of ~1000 samples each (total/target), none far off
    expect(buckets.length).toBeGreaterThanOrEqual(19);
    expect(buckets.length).toBeLessThanOrEqual(24);
    for (const c of counts) expect(c).toBeGreaterThan(600);
    for (const c of counts) expect(c).toBeLessThan(1400);
    for (let s = 0; s < 4; s++) {
      const mine = buckets.filter((b) => b.shard === s);
      expect(mine[0].lowerKey).toBe("");
      expect(mine[mine.length - 1].upperKey).toBe("");
      for (let i = 1; i < mine.length; i++) expect(mine[i].lowerKey).toBe(mine[i - 1].upperKey);
    }
    // every key routes to a bucket of its own shard whose range holds it
    for (const s of samples.slice(0, 2000)) {
      const b = buckets[route(s.key)];
      expect(b.shard).toBe(shardOf(s.key, 4));
      const hex = Buffer.from(s.key).toString("hex");
      expect(b.lowerKey <= hex && (b.upperKey === "" || hex < b.upperKey)).toBe(true);
    }
  });
  it("no samples: one open bucket per shard", () => {
    expect(chooseBuckets([], 0, 3, 100).map((b) => [b.id, b.lowerKey, b.upperKey])).toEqual([
      ["s0000-b0000", "", ""],
      ["s0001-b0000", "", ""],
      ["s0002-b0000", "", ""],
    ]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// partition → build in memory (S3 versions of these run in test/integration)

function request(over: Partial<LoadRequest> = {}): LoadRequest {
  return {
    dataset: "ds",
    version: "v1",
    input: "s3://in/",
    format: "jsonl",
    key: ["id"],
    shards: 2,
    duplicates: "error",
    badRecords: "fail",
    maxBadRecords: 0,
    sstCompression: "none",
    bloomBitsPerKey: 10,
    targetFileSize: 64 * 1024 * 1024,
    minReplicas: 1,
    keepVersions: 2,
    ...over,
  };
}

async function pipeline(
  files: Record<string, string>,
  req: LoadRequest,
  opts: { chunkBytes?: number; buckets?: Bucket[]; fanIn?: number } = {},
) {
  const data = new Map<string, Uint8Array>();
  for (const [k, v] of Object.entries(files)) data.set(`in/${k}`, enc.encode(v));
  const out = new Map<string, Uint8Array>();
  const open = memoryStore(data, 1000);
  const openAll = async (bucket: string, key: string) =>
    bucket === "in"
      ? open(bucket, key)
      : memoryObject(out.get(`${bucket}/${key}`) as Uint8Array, `s3://${bucket}/${key}`, 999);
  const chunks = await planChunks(
    [...data].map(([k, v]) => ({ bucket: "in", key: k.slice(3), size: v.length })),
    req.format,
    opts.chunkBytes ?? 1 << 20,
    { open },
  );
  const buckets = opts.buckets ?? chooseBuckets([], 0, req.shards, 1);
  const plan: Plan = {
    request: req,
    dataBucket: "data",
    createdAt: "t",
    chunks: chunks.length,
    buckets,
    inputBytes: 0,
  };
  const parts = [];
  for (const chunk of chunks)
    parts.push(await partitionChunk({ plan, chunk, dataBucket: "data", open: openAll, openSink: memorySinks(out) }));
  const results = [];
  for (const bucket of buckets) {
    results.push(
      await buildBucket({
        plan,
        bucket,
        runKeys: parts.map((p) => p.runKey),
        dataBucket: "data",
        open: openAll,
        openSink: memorySinks(out),
        fanIn: opts.fanIn,
      }),
    );
  }
  const kv = new Map<string, string>();
  for (const r of results) {
    for (const f of r.files) {
      const sst = await SstReader.open(bufferSource(out.get(`data/versions/ds/v1/${f.path}`) as Uint8Array));
      for await (const [k, v] of sst.scan()) kv.set(dec.decode(k), dec.decode(v));
    }
  }
  return { parts, results, kv, chunks };
}

describe("partition → build (memory stores)", () => {
  const lines = (rows: object[]) => rows.map((r) => JSON.stringify(r)).join("\n");
  it("every record lands once, in its shard's files, with deterministic names; empty buckets make no file", async () => {
    const rows = Array.from({ length: 300 }, (_, i) => ({ id: `u${i}`, n: i }));
    const buckets = chooseBuckets(
      rows.map((r) => ({ key: enc.encode(r.id), bytes: 1 })),
      300,
      2,
      60,
    );
    const { results, kv, parts } = await pipeline(
      { "a.jsonl": lines(rows.slice(0, 150)), "b.jsonl": lines(rows.slice(150)) },
      request({ shards: 2 }),
      {
        chunkBytes: 500,
        buckets,
      },
    );
    expect(parts.length).toBeGreaterThan(10);
    expect(kv.size).toBe(300);
    for (const r of rows) expect(JSON.parse(kv.get(r.id) as string)).toEqual({ n: r.n });
    for (const r of results) for (const f of r.files) expect(f.path).toBe(`shard=${r.shard}/${r.bucketId}-0000.sst`);
    expect(results.reduce((s, r) => s + r.recordsIn, 0)).toBe(300);
  });

  it("duplicates: error names the key and both origins; last/first follow input order, not arrival", async () => {
    const files = {
      "a.jsonl": lines([
        { id: "k1", v: "a1" },
        { id: "k2", v: "a2" },
      ]),
      "b.jsonl": lines([
        { id: "k1", v: "b1" },
        { id: "k3", v: "b3" },
        { id: "k1", v: "b1-later" },
      ]),
    };
    const err = await pipeline(files, request({ shards: 1 })).catch((e) => e);
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toContain(
      'key "k1" in s3://in/a.jsonl line 1 and s3://in/b.jsonl line 1 and s3://in/b.jsonl line 3',
    );
    const last = await pipeline(files, request({ shards: 1, duplicates: "last" }));
    expect(JSON.parse(last.kv.get("k1") as string).v).toBe("b1-later");
    expect(last.results[0].duplicates).toBe(2);
    const first = await pipeline(files, request({ shards: 1, duplicates: "first" }));
    expect(JSON.parse(first.kv.get("k1") as string).v).toBe("a1");
    expect(first.kv.size).toBe(3);
  });

  it("more runs than the fan-in: extra merge rounds give the same result", async () => {
    const rows = Array.from({ length: 400 }, (_, i) => ({ id: `k${(i * 37) % 400}`, i }));
    const files = { "a.jsonl": lines(rows) };
    const wide = await pipeline(files, request({ shards: 1 }), { chunkBytes: 300 });
    const narrow = await pipeline(files, request({ shards: 1 }), { chunkBytes: 300, fanIn: 3 });
    expect(wide.chunks.length).toBeGreaterThan(9);
    expect(narrow.results[0].mergeRounds).toBeGreaterThanOrEqual(2);
    expect([...narrow.kv]).toEqual([...wide.kv]);
    expect(narrow.kv.size).toBe(400);
    // fan-ins the run count is not a power of: rounds merge only some sources, the rest wait for the final merge
    for (const fanIn of [4, 5]) {
      const partial = await pipeline(files, request({ shards: 1 }), { chunkBytes: 300, fanIn });
      expect(partial.results[0].mergeRounds).toBeGreaterThanOrEqual(1);
      expect([...partial.kv]).toEqual([...wide.kv]);
    }
  });

  it("a bad record fails the chunk naming file, line and field", async () => {
    const err = await pipeline({ "a.jsonl": lines([{ id: "x" }, { id: "" }]) }, request()).catch((e) => e);
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toMatch(/^s3:\/\/in\/a\.jsonl line 2: key column 'id' is empty/);
  });

  it("keys routed to their shard and sorted inside every file", async () => {
    const rows = Array.from({ length: 200 }, (_, i) => ({ id: `z${i}` }));
    const { results } = await pipeline({ "a.jsonl": lines(rows) }, request({ shards: 4 }), { chunkBytes: 256 });
    expect(results.map((r) => r.files.length)).toEqual([1, 1, 1, 1]);
    for (const r of results) {
      const f = r.files[0];
      expect(f.smallestKey < f.largestKey).toBe(true);
    }
  });
});
