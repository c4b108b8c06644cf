/**
 * Build reads run segments from S3 in windows lent from the part pool and gives each back (releaseWindow) once the
 * merge has retired its batch and neither the pending record of the duplicate check nor the last emitted one is in
 * it. A window given back too early would be refilled by a later GET under the merge (here scribbled at once): the
 * SST bytes built from S3 in small windows (many per segment, the pool reused all the time) must equal those built
 * from the same runs in memory — with duplicates kept "last" (the pending record spans batches), and with extra
 * merge rounds through local files (fan-in 2).
 */
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { putBytes, s3 } from "../../core/aws/index.js";
import { scribbleReleasedWindows } from "../../core/aws/s3.js";
import { buildBucket } from "../../core/pipeline/build.js";
import { parseLoadRequest } from "../../core/pipeline/config.js";
import { partitionChunk } from "../../core/pipeline/partition.js";
import type { Plan } from "../../core/pipeline/types.js";
import { memoryStore, s3Opener } from "../../core/records/source.js";
import { memorySinks } from "../../core/shuffle/io.js";

const bucket = `pool-${Date.now().toString(36)}`;

beforeAll(async () => {
  await s3().send(new CreateBucketCommand({ Bucket: bucket }));
  // a window given back too early reads as 0xEE at once
  scribbleReleasedWindows(true);
});
afterAll(() => scribbleReleasedWindows(false));

describe("Build with pooled segment windows", () => {
  it("builds the same SST bytes from S3 in small lent windows as from memory", async () => {
    // ~6,000 records in 4 chunks; every key appears in two chunks with different values (duplicates "last")
    const lines: string[] = [];
    for (let i = 0; i < 6000; i++) {
      const id = `k${String((i * 7919) % 3000).padStart(6, "0")}`;
      lines.push(JSON.stringify({ id, i, pad: "p".repeat(20 + (i % 50)) }));
    }
    const input = Buffer.from(`${lines.join("\n")}\n`);
    const objects = new Map<string, Uint8Array>([[`${bucket}/in.jsonl`, input]]);
    const request = parseLoadRequest({
      dataset: "pool",
      version: "v1",
      input: `s3://${bucket}/in.jsonl`,
      format: "jsonl",
      key: ["id"],
      shards: 1,
      duplicates: "last",
    });
    const buckets = [{ id: "s0", shard: 0, index: 0, lowerKey: "", upperKey: "" }];
    const plan: Plan = { request, dataBucket: bucket, createdAt: "", chunks: 4, buckets, inputBytes: input.length };
    const runs = new Map<string, Uint8Array>();
    const runKeys: string[] = [];
    const step = Math.ceil(input.length / 4);
    for (let c = 0; c < 4; c++) {
      const chunk = {
        id: `c${String(c).padStart(7, "0")}`,
        bucket,
        key: "in.jsonl",
        size: input.length,
        index: c,
        start: c * step,
        end: Math.min(input.length, (c + 1) * step),
      };
      const r = await partitionChunk({
        plan,
        chunk,
        dataBucket: bucket,
        open: memoryStore(objects),
        openSink: memorySinks(runs),
      });
      runKeys.push(r.runKey);
      await putBytes(bucket, r.runKey, runs.get(`${bucket}/${r.runKey}`) as Uint8Array);
    }
    const build = async (open: ReturnType<typeof memoryStore>, fanIn?: number) => {
      const out = new Map<string, Uint8Array>();
      const r = await buildBucket({
        plan,
        bucket: buckets[0],
        runKeys,
        dataBucket: bucket,
        open,
        openSink: memorySinks(out),
        ...(fanIn ? { fanIn } : {}),
      });
      return { r, bytes: [...out.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([, v]) => Buffer.from(v)) };
    };
    const want = await build(memoryStore(runs));
    expect(want.r.duplicates).toBe(3000);
    expect(want.r.files.reduce((s, f) => s + f.entries, 0)).toBe(3000);
    for (const fanIn of [undefined, 2]) {
      // 4 KiB windows: ~25 per segment; every released window is refilled by a later GET
      const got = await build(s3Opener(4096), fanIn);
      expect(got.r.duplicates).toBe(3000);
      expect(got.r.mergeRounds).toBe(fanIn ? 1 : 0);
      expect(got.bytes.length).toBe(want.bytes.length);
      for (let i = 0; i < want.bytes.length; i++) expect(got.bytes[i].equals(want.bytes[i]), `file ${i}`).toBe(true);
    }
  });
});
