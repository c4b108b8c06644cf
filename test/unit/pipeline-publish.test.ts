/**
 * Publish's checks (pure): every bucket has a result verified by Build, entries = records in − duplicates per bucket, builds read what
 * partitions routed, files of a shard do not overlap and stay inside their bucket, empty shards are recorded;
 * manifest building (sorted files, counts) and content equality without timestamps; failure descriptions.
 */
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../core/errors.js";
import { buildManifest, sameManifestContent } from "../../core/manifest/manifest.js";
import { checkBuildResults, describeFailure, failureTarget } from "../../core/pipeline/publish.js";
import type { Bucket, BuildResult, Plan } from "../../core/pipeline/types.js";

const sha = "a".repeat(64);
const buckets: Bucket[] = [
  { id: "s0000-b0000", shard: 0, index: 0, lowerKey: "", upperKey: "6d" },
  { id: "s0000-b0001", shard: 0, index: 1, lowerKey: "6d", upperKey: "" },
  { id: "s0001-b0000", shard: 1, index: 2, lowerKey: "", upperKey: "" },
  { id: "s0002-b0000", shard: 2, index: 3, lowerKey: "", upperKey: "" },
];
const file = (shard: number, name: string, lo: string, hi: string, entries: number) => ({
  shard,
  path: `shard=${shard}/${name}.sst`,
  smallestKey: lo,
  largestKey: hi,
  entries,
  bytes: 100 * entries,
  sha256: sha,
});
/** every result as Build stores it: verified (re-read after upload) with the files and bytes it lists */
function results(): BuildResult[] {
  return raw().map((r) => ({
    ...r,
    verified: {
      method: "reread-sha256+sst-properties",
      files: r.files.length,
      bytes: r.files.reduce((s, f) => s + f.bytes, 0),
    },
  }));
}
function raw(): BuildResult[] {
  return [
    {
      bucketId: "s0000-b0000",
      shard: 0,
      recordsIn: 12,
      duplicates: 2,
      files: [file(0, "b0-0", "61", "62", 6), file(0, "b0-1", "63", "6c", 4)],
    },
    { bucketId: "s0000-b0001", shard: 0, recordsIn: 5, duplicates: 0, files: [file(0, "b1-0", "6d", "7a", 5)] },
    { bucketId: "s0001-b0000", shard: 1, recordsIn: 3, duplicates: 0, files: [file(1, "c-0", "41", "42", 3)] },
    { bucketId: "s0002-b0000", shard: 2, recordsIn: 0, duplicates: 0, files: [] },
  ];
}

describe("checkBuildResults", () => {
  it("accepts consistent results and records empty shards", () => {
    const r = checkBuildResults({ buckets, results: results(), shards: 3, recordsRouted: 20 });
    expect(r).toEqual({ emptyShards: [2], entries: 18, duplicates: 2 });
  });

  it.each([
    ["a missing bucket", (rs: BuildResult[]) => rs.splice(1, 1), 20, /bucket s0000-b0001 .* missing/],
    [
      "entries that do not add up",
      (rs: BuildResult[]) => (rs[0].duplicates = 1),
      20,
      /hold 10 entries but 12 records in − 1 duplicates/,
    ],
    ["records lost between partition and build", () => {}, 21, /builds read 20 records but partitions routed 21/],
    [
      "overlapping files in a shard",
      (rs: BuildResult[]) => (rs[0].files[1] = file(0, "b0-1", "62", "6c", 4)),
      20,
      /overlap/,
    ],
    [
      "a file outside its bucket's range",
      (rs: BuildResult[]) => (rs[1].files[0] = file(0, "b1-0", "6c", "7a", 5)),
      20,
      /below its bucket's lower bound/,
    ],
    [
      "a result Build did not verify",
      (rs: BuildResult[]) => delete rs[1].verified,
      20,
      /bucket s0000-b0001: the build result was not verified/,
    ],
    [
      "a result listing files other than the verified ones",
      (rs: BuildResult[]) => rs[0].files.push(file(0, "b0-2", "6a", "6b", 1)),
      20,
      /bucket s0000-b0000: Build verified 2 files \/ 1000 bytes but its result lists 3 files \/ 1100 bytes/,
    ],
    ["a file of another shard", (rs: BuildResult[]) => (rs[2].files[0].shard = 2), 20, /is for shard 2, not 1/],
    [
      "smallest > largest",
      (rs: BuildResult[]) => (rs[2].files[0].smallestKey = "43"),
      20,
      /smallest key 43 > largest key 42/,
    ],
  ])("refuses %s", (_name, mutate, routed, re) => {
    const rs = results();
    mutate(rs);
    expect(() => checkBuildResults({ buckets, results: rs, shards: 3, recordsRouted: routed })).toThrow(
      ValidationError,
    );
    expect(() => checkBuildResults({ buckets, results: rs, shards: 3, recordsRouted: routed })).toThrow(re);
  });
});

describe("manifest", () => {
  const plan = {
    request: {
      dataset: "d",
      version: "v1",
      input: "s3://b/in/",
      format: "jsonl",
      key: ["id"],
      shards: 3,
      duplicates: "last",
      badRecords: "skip",
      maxBadRecords: 5,
      sstCompression: "snappy",
      bloomBitsPerKey: 10,
      targetFileSize: 1 << 20,
      minReplicas: 1,
      keepVersions: 3,
    },
    dataBucket: "b",
    createdAt: "x",
    chunks: 1,
    buckets,
    inputBytes: 1,
  } as Plan;

  it("is built with sorted files and counts, and compares without timestamps", () => {
    const rs = results().reverse();
    const m = buildManifest(plan, rs, { recordsIn: 21, duplicates: 2, skipped: 1 }, "2026-01-01T00:00:00Z");
    expect(m.files.map((f) => f.path)).toEqual([
      "shard=0/b0-0.sst",
      "shard=0/b0-1.sst",
      "shard=0/b1-0.sst",
      "shard=1/c-0.sst",
    ]);
    expect(m.counts).toEqual({ recordsIn: 21, duplicates: 2, skipped: 1, entries: 18 });
    expect(m.totalBytes).toBe(1800);
    expect(m.key).toEqual({ columns: ["id"], kind: "utf8" });
    expect(m.sst).toEqual({ compression: "snappy", bloomBitsPerKey: 10, formatVersion: 5 });
    const later = buildManifest(plan, results(), { recordsIn: 21, duplicates: 2, skipped: 1 }, "2027-01-01T00:00:00Z");
    expect(sameManifestContent(m, later)).toBe(true);
    // Build's xxh3x2 (its verification checksum) stays out of the manifest: same files, same content
    const withXxh = results().map((r) => ({ ...r, files: r.files.map((f) => ({ ...f, xxh3x2: "b".repeat(32) })) }));
    const mx = buildManifest(plan, withXxh, { recordsIn: 21, duplicates: 2, skipped: 1 }, "2026-01-01T00:00:00Z");
    expect(mx).toEqual(m);
    expect(JSON.stringify(mx)).not.toContain("xxh3x2");
    const other = buildManifest(plan, results(), { recordsIn: 21, duplicates: 2, skipped: 0 });
    expect(sameManifestContent(m, other)).toBe(false);
  });
});

describe("failures", () => {
  it("takes the message out of a Lambda error cause", () => {
    expect(
      describeFailure({
        Error: "InputError",
        Cause: JSON.stringify({ errorType: "InputError", errorMessage: "s3://b/k line 3: bad" }),
      }),
    ).toEqual({ error: "InputError", cause: "s3://b/k line 3: bad" });
    expect(describeFailure({ Error: "States.Timeout", Cause: "plain" })).toEqual({
      error: "States.Timeout",
      cause: "plain",
    });
  });

  it("finds the version from the failing state or the execution input", () => {
    expect(failureTarget({ dataset: "a", version: "1", error: { Error: "E" } }, {})).toMatchObject({
      dataset: "a",
      version: "1",
    });
    expect(failureTarget({ request: {} }, { request: { dataset: "b", version: "2", fleet: "f" } })).toMatchObject({
      dataset: "b",
      version: "2",
      fleet: "f",
    });
  });
});
