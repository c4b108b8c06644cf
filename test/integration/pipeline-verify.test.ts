/**
 * Build's verification of the files it wrote (a re-read from S3: size and xxh3x2 — sha256 for results without one —
 * of the landed bytes, SST properties over ranged GETs) and Publish's cheap per-file check (HeadObject: present, with the verified size), against the
 * local stack's S3 with a real SST file: each way a landed file can differ from its build result is caught and named.
 */
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { beforeAll, describe, expect, it } from "vitest";
import { putBytes, s3 } from "../../core/aws/index.js";
import { Xxh3x2 } from "../../core/aws/s3.js";
import { CorruptionError } from "../../core/errors.js";
import { checkPublishedFile, verifyBuiltFile } from "../../core/pipeline/publish.js";
import type { BuildResult } from "../../core/pipeline/types.js";
import { memorySink, SstWriter } from "../../core/sst/index.js";

const bucket = `pv-${Date.now().toString(36)}`;
const prefix = "versions/d/v1/";
type FileEntry = BuildResult["files"][number];
let bytes: Uint8Array;
let good: FileEntry;
/** `good` with the xxh3x2 Build records now */
let goodX: FileEntry;

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

beforeAll(async () => {
  await s3().send(new CreateBucketCommand({ Bucket: bucket }));
  const sink = memorySink();
  const w = new SstWriter(sink, { compression: "snappy", sessionIdentity: false });
  for (let i = 0; i < 500; i++) {
    const p = w.add(Buffer.from(`key-${String(i).padStart(5, "0")}`), Buffer.from(`{"n":${i}}`));
    if (p) await p;
  }
  const info = await w.finish();
  bytes = sink.bytes();
  good = {
    shard: 0,
    path: "shard=0/s0000-b0000-0000.sst",
    smallestKey: hex(info.smallestKey),
    largestKey: hex(info.largestKey),
    entries: info.entries,
    bytes: info.bytes,
    sha256: info.sha256,
  };
  expect(bytes.length).toBe(info.bytes);
  const x = new Xxh3x2();
  x.update(bytes);
  goodX = { ...good, xxh3x2: x.digest() };
  await putBytes(bucket, prefix + good.path, bytes);
});

describe("Build verifies what landed", () => {
  it("accepts a file that matches its build result", async () => {
    await expect(verifyBuiltFile(bucket, prefix, good)).resolves.toBeUndefined();
  });

  it.each([
    ["another size", (f: FileEntry) => ({ ...f, bytes: f.bytes + 1 }), /bytes, build result says/],
    [
      "another sha256",
      (f: FileEntry) => ({ ...f, sha256: "0".repeat(64) }),
      /sha256 [0-9a-f]{64}, build result says 0+/,
    ],
    [
      "other entries",
      (f: FileEntry) => ({ ...f, entries: f.entries - 1 }),
      /SST properties say 500 entries, build result 499/,
    ],
    ["another key range", (f: FileEntry) => ({ ...f, largestKey: hex(Buffer.from("key-99999")) }), /key range differs/],
  ])("refuses a build result with %s", async (_n, mutate, re) => {
    const err = await verifyBuiltFile(bucket, prefix, mutate(good)).catch((e) => e);
    expect(err).toBeInstanceOf(CorruptionError);
    expect(String(err.message)).toMatch(re);
    expect(String(err.message)).toContain(`s3://${bucket}/${prefix}${good.path}`);
  });

  it("refuses a landed file with one byte changed (same size)", async () => {
    const path = "shard=0/s0000-b0000-0001.sst";
    const bad = Buffer.from(bytes);
    bad[Math.floor(bad.length / 3)] ^= 0xff;
    await putBytes(bucket, prefix + path, bad);
    const err = await verifyBuiltFile(bucket, prefix, { ...good, path }).catch((e) => e);
    expect(err).toBeInstanceOf(CorruptionError);
    expect(String(err.message)).toMatch(/sha256 .* build result says/);
  });
});

describe("Build verifies what landed by xxh3x2 when the build result has it", () => {
  it("accepts a file that matches its build result", async () => {
    await expect(verifyBuiltFile(bucket, prefix, goodX)).resolves.toBeUndefined();
  });

  it.each([
    ["another size", (f: FileEntry) => ({ ...f, bytes: f.bytes + 1 }), /bytes, build result says/],
    [
      "another xxh3x2",
      (f: FileEntry) => ({ ...f, xxh3x2: "0".repeat(32) }),
      /xxh3x2 [0-9a-f]{32}, build result says 0{32}$/,
    ],
    [
      "other entries",
      (f: FileEntry) => ({ ...f, entries: f.entries - 1 }),
      /SST properties say 500 entries, build result 499/,
    ],
    ["another key range", (f: FileEntry) => ({ ...f, largestKey: hex(Buffer.from("key-99999")) }), /key range differs/],
  ])("refuses a build result with %s", async (_n, mutate, re) => {
    const err = await verifyBuiltFile(bucket, prefix, mutate(goodX)).catch((e) => e);
    expect(err).toBeInstanceOf(CorruptionError);
    expect(String(err.message)).toMatch(re);
    expect(String(err.message)).toContain(`s3://${bucket}/${prefix}${good.path}`);
  });

  it("refuses a landed file with one byte changed (same size), naming expected and actual", async () => {
    const path = "shard=0/s0000-b0000-0002.sst";
    const bad = Buffer.from(bytes);
    bad[bad.length - 100] ^= 0x01;
    await putBytes(bucket, prefix + path, bad);
    const err = await verifyBuiltFile(bucket, prefix, { ...goodX, path }).catch((e) => e);
    expect(err).toBeInstanceOf(CorruptionError);
    expect(String(err.message)).toMatch(/xxh3x2 [0-9a-f]{32}, build result says [0-9a-f]{32}/);
    expect(err.details).toMatchObject({ expected: goodX.xxh3x2, file: `s3://${bucket}/${prefix}${path}` });
    expect(err.details.actual).not.toBe(goodX.xxh3x2);
  });
});

describe("Publish checks presence and size only", () => {
  it("accepts the verified file", async () => {
    await expect(checkPublishedFile(bucket, prefix, good)).resolves.toBeUndefined();
  });

  it("refuses a missing file and a file of another size, naming it", async () => {
    const missing = await checkPublishedFile(bucket, prefix, { ...good, path: "shard=0/gone.sst" }).catch((e) => e);
    expect(missing).toBeInstanceOf(CorruptionError);
    expect(String(missing.message)).toMatch(/shard=0\/gone\.sst: missing/);
    const resized = await checkPublishedFile(bucket, prefix, { ...good, bytes: good.bytes - 7 }).catch((e) => e);
    expect(resized).toBeInstanceOf(CorruptionError);
    expect(String(resized.message)).toMatch(new RegExp(`${bytes.length} bytes, build result says ${bytes.length - 7}`));
  });
});
