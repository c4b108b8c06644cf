import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { buildBucket } from "../../core/pipeline/build.js";
import { parseLoadRequest } from "../../core/pipeline/config.js";
import { partitionChunk } from "../../core/pipeline/partition.js";
import { chooseBuckets } from "../../core/pipeline/sample.js";
import type { Plan } from "../../core/pipeline/types.js";
import { memoryObject, memoryStore, planChunks } from "../../core/records/index.js";
import { memorySinks } from "../../core/shuffle/io.js";
import { bufferSource, SstReader } from "../../core/sst/index.js";

/** every file under dir, recursively */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

describe("Build's extra merge rounds on local disk", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  // enough records that the SST writer opens its sink (its first 1 MiB) while the final merge is still reading
  const N = 60_000;
  it("delete each round's files once the next round has read them, and leave nothing behind", async () => {
    const rows = Array.from({ length: N }, (_, i) => JSON.stringify({ id: `k${(i * 7919) % N}`, i })).join("\n");
    const data = new Map([["in/a.jsonl", new TextEncoder().encode(rows)]]);
    const out = new Map<string, Uint8Array>();
    const open = memoryStore(data, 1000);
    const openAll = async (bucket: string, key: string) =>
      bucket === "in" ? open(bucket, key) : memoryObject(out.get(`${bucket}/${key}`) as Uint8Array, key, 999);
    const request = parseLoadRequest({
      dataset: "ds",
      version: "v1",
      input: "s3://in-bucket/in/",
      format: "jsonl",
      key: ["id"],
      shards: 1,
    });
    const chunks = await planChunks([{ bucket: "in", key: "a.jsonl", size: rows.length }], "jsonl", 64 * 1024, {
      open,
    });
    expect(chunks.length).toBeGreaterThanOrEqual(16);
    const buckets = chooseBuckets([], 0, 1, 1);
    const plan: Plan = { request, dataBucket: "data", createdAt: "t", chunks: chunks.length, buckets, inputBytes: 0 };
    const runKeys: string[] = [];
    for (const chunk of chunks) {
      const p = await partitionChunk({ plan, chunk, dataBucket: "data", open: openAll, openSink: memorySinks(out) });
      runKeys.push(p.runKey);
    }
    const tmp = mkdtempSync(join(tmpdir(), "ferry-merge-test-"));
    dirs.push(tmp);
    // fan-in 2 over >= 16 runs: >= 3 rounds through local files (8 + 4 + 2 files if every round's were kept)
    let onDiskWhenWriting: string[] | undefined;
    const sinks = memorySinks(out);
    const result = await buildBucket({
      plan,
      bucket: buckets[0],
      runKeys,
      dataBucket: "data",
      open: openAll,
      fanIn: 2,
      tmpDir: tmp,
      openSink: (bucket, key) => {
        // the final merge has started: only the last round's files may still be on disk
        onDiskWhenWriting ??= filesUnder(tmp);
        return sinks(bucket, key);
      },
    });
    expect(result.mergeRounds).toBeGreaterThanOrEqual(3);
    expect(onDiskWhenWriting?.length).toBeGreaterThan(0);
    expect(onDiskWhenWriting?.length).toBeLessThanOrEqual(2);
    expect(onDiskWhenWriting?.every((f) => f.includes(`round${result.mergeRounds}-`))).toBe(true);
    expect(filesUnder(tmp)).toEqual([]);
    // and the records are all there, in order
    const f = result.files[0];
    const sst = await SstReader.open(bufferSource(out.get(`data/versions/ds/v1/${f.path}`) as Uint8Array));
    let n = 0;
    for await (const _ of sst.scan()) n++;
    expect(n).toBe(N);
  });
});
