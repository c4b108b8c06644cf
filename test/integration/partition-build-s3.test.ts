/**
 * Partition + Build on the local stack's S3: several input objects (JSONL split in byte ranges, gzip CSV, Parquet),
 * sampled split points, runs written with multipart uploads, buckets merged from ranged GETs, SST files read back
 * with core/sst's SstReader and compared with the source.
 */
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { parquetWriteBuffer } from "hyparquet-writer";
import { beforeAll, describe, expect, it } from "vitest";
import { getBytes, listAll, putBytes, s3 } from "../../core/aws/index.js";
import { InputError } from "../../core/errors.js";
import { buildBucket } from "../../core/pipeline/build.js";
import { partitionChunk } from "../../core/pipeline/partition.js";
import { chooseBucketsForPlan } from "../../core/pipeline/sample.js";
import type { BuildResult, LoadRequest, PartitionResult, Plan } from "../../core/pipeline/types.js";
import { decodeTupleKeyStrings, planChunks } from "../../core/records/index.js";
import { bufferSource, SstReader } from "../../core/sst/index.js";

const bucket = `dp-${Date.now().toString(36)}`;
const dec = new TextDecoder();

beforeAll(async () => {
  await s3().send(new CreateBucketCommand({ Bucket: bucket }));
});

function request(over: Partial<LoadRequest>): LoadRequest {
  return {
    dataset: "profiles",
    version: "v1",
    input: `s3://${bucket}/input/`,
    format: "jsonl",
    key: ["id"],
    shards: 3,
    duplicates: "error",
    badRecords: "fail",
    maxBadRecords: 0,
    sstCompression: "snappy",
    bloomBitsPerKey: 10,
    targetFileSize: 4 * 1024,
    minReplicas: 1,
    keepVersions: 2,
    ...over,
  };
}

async function runPipeline(req: LoadRequest, prefix: string, chunkBytes: number, targetBytes: number) {
  const objects = (await listAll(bucket, prefix)).map((o) => ({ bucket, key: o.key, size: o.size }));
  const chunks = await planChunks(objects, req.format, chunkBytes);
  const inputBytes = objects.reduce((s, o) => s + o.size, 0);
  const buckets = await chooseBucketsForPlan({ request: req, chunks, inputBytes, targetBytes });
  const plan: Plan = {
    request: req,
    dataBucket: bucket,
    createdAt: "2026-01-01T00:00:00Z",
    chunks: chunks.length,
    buckets,
    inputBytes,
  };
  const parts: PartitionResult[] = [];
  for (const chunk of chunks) parts.push(await partitionChunk({ plan, chunk, dataBucket: bucket }));
  const builds: BuildResult[] = [];
  // the S3 reads Build makes: with the runs' sizes known no HEAD, and each segment's checksum comes with its records
  const reads: Record<string, number> = {};
  const count = "count-build-reads";
  s3().middlewareStack.add(
    (next, ctx) => (args) => {
      reads[ctx.commandName as string] = (reads[ctx.commandName as string] ?? 0) + 1;
      return next(args);
    },
    { step: "initialize", name: count },
  );
  try {
    for (const b of buckets) {
      const runKeys = parts.map((p) => p.runKey);
      const runBytes = parts.map((p) => p.runBytes as number);
      builds.push(await buildBucket({ plan, bucket: b, runKeys, runBytes, dataBucket: bucket }));
    }
  } finally {
    s3().middlewareStack.remove(count);
  }
  expect(reads.HeadObjectCommand ?? 0).toBe(0);
  // per bucket and run: the header and index entry, then its segment (one window here, checksum included)
  expect(reads.GetObjectCommand).toBeLessThanOrEqual(buckets.length * parts.length * 2);
  const kv = new Map<string, string>();
  const keysInOrder: string[][] = [];
  for (const r of builds) {
    for (const f of r.files) {
      const bytes = await getBytes(bucket, `versions/${req.dataset}/${req.version}/${f.path}`);
      expect(bytes.length).toBe(f.bytes);
      expect(createHash("sha256").update(bytes).digest("hex")).toBe(f.sha256);
      const sst = await SstReader.open(bufferSource(bytes, f.path));
      const ks: string[] = [];
      for await (const [k, v] of sst.scan()) {
        const hex = Buffer.from(k).toString("hex");
        ks.push(hex);
        expect(kv.has(hex)).toBe(false);
        kv.set(hex, dec.decode(v));
      }
      expect(ks[0]).toBe(f.smallestKey);
      expect(ks[ks.length - 1]).toBe(f.largestKey);
      expect(ks.length).toBe(f.entries);
      keysInOrder.push(ks);
    }
  }
  return { chunks, buckets, parts, builds, kv, keysInOrder };
}

const hexOf = (s: string) => Buffer.from(s, "utf8").toString("hex");

describe("partition + build on S3", () => {
  it("JSONL in byte ranges: every record once, sampled buckets, files rolled at targetFileSize, retries idempotent", async () => {
    const rows = Array.from({ length: 4000 }, (_, i) => ({
      id: `user-${(i * 7919) % 4000}`,
      n: i,
      tag: "x".repeat(i % 40),
    }));
    const half = rows.length / 2;
    const text = (rs: typeof rows) => `${rs.map((r) => JSON.stringify(r)).join("\n")}\n`;
    await putBytes(bucket, "input/j/part-0.jsonl", text(rows.slice(0, half)));
    await putBytes(bucket, "input/j/part-1.jsonl", text(rows.slice(half)));
    const req = request({ dataset: "jsonl" });
    const r = await runPipeline(req, "input/j/", 40_000, 60_000);
    expect(r.chunks.length).toBeGreaterThan(4);
    expect(r.chunks.some((c) => (c.start ?? 0) > 0)).toBe(true);
    expect(r.buckets.length).toBeGreaterThan(3);
    expect(r.kv.size).toBe(rows.length);
    for (const row of rows) {
      expect(JSON.parse(r.kv.get(hexOf(row.id)) as string)).toEqual({ n: row.n, tag: row.tag });
    }
    expect(r.builds.some((b) => b.files.length > 1)).toBe(true);
    // files of one shard do not overlap
    const byShard = new Map<number, Array<[string, string]>>();
    for (const b of r.builds)
      for (const f of b.files) byShard.set(f.shard, [...(byShard.get(f.shard) ?? []), [f.smallestKey, f.largestKey]]);
    for (const ranges of byShard.values()) {
      ranges.sort((a, b) => (a[0] < b[0] ? -1 : 1));
      for (let i = 1; i < ranges.length; i++) expect(ranges[i][0] > ranges[i - 1][1]).toBe(true);
    }
    // a retried Partition writes the same run object at the same key
    const runKey = r.parts[1].runKey;
    const before = await getBytes(bucket, runKey);
    const plan: Plan = {
      request: req,
      dataBucket: bucket,
      createdAt: "x",
      chunks: r.chunks.length,
      buckets: r.buckets,
      inputBytes: 0,
    };
    const again = await partitionChunk({ plan, chunk: r.chunks[1], dataBucket: bucket });
    expect(again.runKey).toBe(runKey);
    expect(Buffer.compare(await getBytes(bucket, runKey), before)).toBe(0);
    const runs = await listAll(bucket, "staging/jsonl/v1/runs/");
    expect(runs.length).toBe(r.chunks.length);
  });

  it("gzip CSV with quoted newlines and a composite key", async () => {
    const lines = ["country,user,bio"];
    for (let i = 0; i < 500; i++) lines.push(`${["fr", "us", "de"][i % 3]},u${i},"line one\nline ""two"" ${i}"`);
    await putBytes(bucket, "input/c/data.csv.gz", gzipSync(`${lines.join("\r\n")}\r\n`));
    const r = await runPipeline(
      request({ dataset: "csv", format: "csv", key: ["country", "user"], valueRaw: "bio" }),
      "input/c/",
      1000,
      1 << 30,
    );
    expect(r.chunks.length).toBe(1);
    expect(r.kv.size).toBe(500);
    const sample = [...r.kv].find(([k]) => decodeTupleKeyStrings(Buffer.from(k, "hex")).join("/") === "us/u1");
    expect(sample?.[1]).toBe('line one\nline "two" 1');
  });

  it("Parquet by row groups", async () => {
    const n = 3000;
    const buf = parquetWriteBuffer({
      columnData: [
        { name: "id", data: Array.from({ length: n }, (_, i) => BigInt(i * 3)), type: "INT64" },
        { name: "name", data: Array.from({ length: n }, (_, i) => `name-${i}`), type: "STRING" },
      ],
      rowGroupSize: 500,
    });
    await putBytes(bucket, "input/p/t.parquet", new Uint8Array(buf));
    const r = await runPipeline(request({ dataset: "pq", format: "parquet" }), "input/p/", 1, 20_000);
    expect(r.chunks.length).toBe(6);
    expect(r.kv.size).toBe(n);
    expect(JSON.parse(r.kv.get(hexOf("2997")) as string)).toEqual({ name: "name-999" });
  });

  it("bad input: the error names the object, line and field", async () => {
    await putBytes(bucket, "input/bad/a.jsonl", '{"id":"a"}\n{"id":"b"}\n{"idx":"c"}\n');
    const err = await runPipeline(request({ dataset: "bad" }), "input/bad/", 1 << 20, 1 << 30).catch((e) => e);
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toMatch(new RegExp(`^s3://${bucket}/input/bad/a\\.jsonl line 3: key column 'id' is missing`));
    expect(err.details).toMatchObject({ line: 3, field: "id" });
    await putBytes(bucket, "input/dup/a.jsonl", '{"id":"a"}\n{"id":"b"}\n');
    await putBytes(bucket, "input/dup/b.jsonl", '{"id":"c"}\n{"id":"a"}\n');
    const dup = await runPipeline(request({ dataset: "dup", shards: 1 }), "input/dup/", 1 << 20, 1 << 30).catch(
      (e) => e,
    );
    expect(dup).toBeInstanceOf(InputError);
    expect(dup.message).toContain(
      `key "a" in s3://${bucket}/input/dup/a.jsonl line 1 and s3://${bucket}/input/dup/b.jsonl line 2`,
    );
  });
});
