/**
 * Build's own checks on what the merge hands it (memory stores, real runs and SST writer): keys of another shard,
 * below the bucket's lower bound or at/above its upper bound are a CorruptionError naming the key and the chunk;
 * duplicates are found by sameKey under each policy; sameKey itself; each file's xxh3x2 is of the bytes uploaded.
 */
import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Xxh3x2 } from "../../core/aws/s3.js";
import { CorruptionError, InputError } from "../../core/errors.js";
import { buildBucket, compareRecords, mergeRoundGroups, sameKey } from "../../core/pipeline/build.js";
import type { Bucket, LoadRequest, Plan } from "../../core/pipeline/types.js";
import { memoryObject } from "../../core/records/index.js";
import { compareRunRecords, memorySinks, RunWriter, shardOf } from "../../core/shuffle/index.js";
import { bufferSource, SstReader } from "../../core/sst/index.js";

const enc = new TextEncoder();
const dec = new TextDecoder();

function request(over: Partial<LoadRequest> = {}): LoadRequest {
  return {
    dataset: "ds",
    version: "v1",
    input: "s3://in/",
    format: "jsonl",
    key: ["id"],
    shards: 1,
    duplicates: "error",
    badRecords: "fail",
    maxBadRecords: 0,
    sstCompression: "none",
    bloomBitsPerKey: 10,
    targetFileSize: 1 << 20,
    minReplicas: 1,
    keepVersions: 2,
    ...over,
  };
}

/** one run per key list (chunk i = list i), every record written to bucket 0 regardless of the plan */
async function build(keyLists: string[][], bucket: Bucket, req: LoadRequest) {
  const out = new Map<string, Uint8Array>();
  const runKeys: string[] = [];
  for (let c = 0; c < keyLists.length; c++) {
    const w = new RunWriter({
      bucketCount: 1,
      meta: { chunkId: `c${c}`, chunkIndex: c, source: `s3://in/f${c}`, unit: "line" },
    });
    for (const [i, k] of keyLists[c].entries()) w.add(0, enc.encode(k), enc.encode(`${c}:${i}`), i + 1);
    const key = `runs/c${c}.run`;
    await w.finish(await memorySinks(out)("data", key));
    runKeys.push(key);
  }
  const plan: Plan = {
    request: req,
    dataBucket: "data",
    createdAt: "t",
    chunks: keyLists.length,
    buckets: [bucket],
    inputBytes: 0,
  };
  const r = await buildBucket({
    plan,
    bucket,
    runKeys,
    dataBucket: "data",
    open: async (b, k) => memoryObject(out.get(`${b}/${k}`) as Uint8Array, `s3://${b}/${k}`, 64),
    openSink: memorySinks(out),
  });
  const kv: Array<[string, string]> = [];
  for (const f of r.files) {
    const sst = await SstReader.open(bufferSource(out.get(`data/versions/ds/v1/${f.path}`) as Uint8Array));
    for await (const [k, v] of sst.scan()) kv.push([dec.decode(k), dec.decode(v)]);
  }
  return { r, kv, out };
}

const hex = (s: string) => Buffer.from(s).toString("hex");
const whole: Bucket = { id: "s0000-b0000", shard: 0, index: 0, lowerKey: "", upperKey: "" };

describe("buildBucket key checks", () => {
  it("accepts keys inside [lower, upper) of the bucket's shard", async () => {
    const b = { ...whole, lowerKey: hex("b"), upperKey: hex("d") };
    const { r, kv } = await build(
      [
        ["b1", "c5"],
        ["b0", "c9"],
      ],
      b,
      request(),
    );
    expect(kv.map(([k]) => k)).toEqual(["b0", "b1", "c5", "c9"]);
    expect(r.recordsIn).toBe(4);
  });

  it.each([
    ["below the lower bound", { lowerKey: hex("b"), upperKey: "" }, [["a9", "b1"], ["c0"]], /key "a9" from chunk 0/],
    ["at the upper bound", { lowerKey: "", upperKey: hex("c") }, [["a1"], ["b0", "c"]], /key "c" from chunk 1/],
    ["above the upper bound", { lowerKey: hex("a"), upperKey: hex("c") }, [["a1", "zz"]], /key "zz" from chunk 0/],
  ])("refuses a key %s", async (_n, bounds, lists, re) => {
    const err = await build(lists, { ...whole, ...bounds }, request()).catch((e) => e);
    expect(err).toBeInstanceOf(CorruptionError);
    expect(String(err.message)).toMatch(re);
    expect(String(err.message)).toMatch(/does not belong to bucket s0000-b0000: runs and plan disagree/);
  });

  it("refuses a key of another shard", async () => {
    const keys = Array.from({ length: 40 }, (_, i) => `k${String(i).padStart(2, "0")}`);
    const other = keys.find((k) => shardOf(enc.encode(k), 4) !== 0) as string;
    const err = await build([keys], whole, request({ shards: 4 })).catch((e) => e);
    expect(err).toBeInstanceOf(CorruptionError);
    expect(String(err.message)).toContain("does not belong to bucket s0000-b0000");
    expect(other).toBeDefined();
  });

  it("finds duplicates across runs under each policy", async () => {
    const lists = [
      ["a", "b", "c"],
      ["b", "d"],
      ["b", "e"],
    ];
    const last = await build(lists, whole, request({ duplicates: "last" }));
    expect(last.kv).toEqual([
      ["a", "0:0"],
      ["b", "2:0"],
      ["c", "0:2"],
      ["d", "1:1"],
      ["e", "2:1"],
    ]);
    expect(last.r.duplicates).toBe(2);
    const first = await build(lists, whole, request({ duplicates: "first" }));
    expect(first.kv.find(([k]) => k === "b")).toEqual(["b", "0:1"]);
    const err = await build(lists, whole, request({ duplicates: "error" })).catch((e) => e);
    expect(err).toBeInstanceOf(InputError);
    expect(String(err.message)).toMatch(
      /duplicate keys .*key "b" in s3:\/\/in\/f0 line 2 and s3:\/\/in\/f1 line 1 and s3:\/\/in\/f2 line 1/,
    );
  });
});

describe("buildBucket file checksums", () => {
  it("records each file's xxh3x2 of the bytes it uploaded, next to their sha256", async () => {
    const keys = Array.from({ length: 3000 }, (_, i) => `k${String(i).padStart(5, "0")}`);
    const lists = [keys.filter((_, i) => i % 2 === 0), keys.filter((_, i) => i % 2 === 1)];
    const { r, out } = await build(lists, whole, request({ targetFileSize: 16 * 1024 }));
    expect(r.files.length).toBeGreaterThan(1);
    for (const f of r.files) {
      const bytes = out.get(`data/versions/ds/v1/${f.path}`) as Uint8Array;
      const x = new Xxh3x2();
      x.update(bytes);
      expect(f.xxh3x2).toBe(x.digest());
      expect(f.sha256).toBe(createHash("sha256").update(bytes).digest("hex"));
    }
  });
});

describe("sameKey", () => {
  it("is byte equality", () => {
    const b = (s: string) => enc.encode(s);
    expect(sameKey(b("abc"), b("abc"))).toBe(true);
    expect(sameKey(b(""), b(""))).toBe(true);
    expect(sameKey(b("abc"), b("abd"))).toBe(false);
    expect(sameKey(b("abc"), b("xbc"))).toBe(false);
    expect(sameKey(b("ab"), b("abc"))).toBe(false);
  });
});

describe("compareRecords", () => {
  it("orders like compareRunRecords (key bytewise, then chunk, then line)", () => {
    const rec = fc.record({
      key: fc.uint8Array({ maxLength: 6, max: 3 }),
      run: fc.integer({ min: 0, max: 3 }),
      line: fc.integer({ min: 0, max: 3 }),
    });
    fc.assert(
      fc.property(rec, rec, (a, b) => {
        const r = { ...a, value: new Uint8Array(0) };
        const s = { ...b, value: new Uint8Array(0) };
        expect(Math.sign(compareRecords(r, s))).toBe(Math.sign(compareRunRecords(r, s)));
      }),
      { numRuns: 2000 },
    );
  });
});

describe("mergeRoundGroups (Build's extra merge rounds)", () => {
  /** the rounds a build makes: sizes of the sources left after each, and the bytes each round writes */
  function simulate(bytes: number[], fanIn: number) {
    let cur = bytes.slice();
    const written: number[] = [];
    for (;;) {
      const groups = mergeRoundGroups(cur, fanIn);
      if (groups.length === 0) break;
      const all = groups.flat();
      expect(new Set(all).size).toBe(all.length);
      for (const g of groups) {
        expect(g.length).toBeGreaterThanOrEqual(2);
        expect(g.length).toBeLessThanOrEqual(fanIn);
        for (const i of g) expect(i >= 0 && i < cur.length).toBe(true);
      }
      // the smallest go first
      const inRound = new Set(all);
      const rest = cur.filter((_, i) => !inRound.has(i));
      if (rest.length > 0) expect(Math.max(...all.map((i) => cur[i]))).toBeLessThanOrEqual(Math.min(...rest));
      written.push(all.reduce((s, i) => s + cur[i], 0));
      cur = [...rest, ...groups.map((g) => g.reduce((s, i) => s + cur[i], 0))];
      expect(written.length).toBeLessThan(64);
    }
    return { left: cur, written };
  }

  it("reaches the fan-in in ceil(log_fanIn n) - 1 rounds, merging the smallest sources, bytes conserved (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 1000 }), { maxLength: 3000 }),
        fc.integer({ min: 2, max: 70 }),
        (bytes, fanIn) => {
          const { left, written } = simulate(bytes, fanIn);
          expect(left.length).toBeLessThanOrEqual(fanIn);
          expect(left.reduce((s, b) => s + b, 0)).toBe(bytes.reduce((s, b) => s + b, 0));
          let rounds = 0;
          for (let c = fanIn; c < bytes.length; c *= fanIn) rounds++;
          expect(written.length).toBe(rounds);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("6,900 equal runs at fan-in 64 (the 50 TB plan) go through local disk 1.41 times, not twice; powers merge all", () => {
    const runs = Array.from({ length: 6900 }, () => 1);
    const { written } = simulate(runs, 64);
    expect(written).toEqual([2849, 6900]);
    const eight = Array.from({ length: 8 }, () => 1);
    expect(simulate(eight, 2).written).toEqual([8, 8]);
    // 4 merged into 1 leave 5 for the final merge
    expect(simulate(eight, 5).written).toEqual([4]);
    expect(mergeRoundGroups([5, 1, 1, 1], 3)).toEqual([[1, 2]]);
  });
});
