/**
 * Load config validation (core/pipeline/config.ts): defaults, every field's error names the field and says why,
 * default version format, trigger input → load request.
 */
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../core/errors.js";
import { PIPELINE, SST } from "../../core/limits.js";
import { defaultVersion, parseLoadRequest, requestFromTrigger } from "../../core/pipeline/config.js";

const base = { dataset: "profiles", version: "v1", input: "s3://my-bucket/in/", format: "jsonl", key: "id" };

function fieldOf(raw: unknown): { field: string; message: string } {
  try {
    parseLoadRequest(raw);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return { field: String((e as ConfigError).details.field), message: (e as Error).message };
  }
  throw new Error("expected a ConfigError");
}

describe("parseLoadRequest", () => {
  it("fills in defaults from core/limits.ts", () => {
    const r = parseLoadRequest(base);
    expect(r).toEqual({
      dataset: "profiles",
      version: "v1",
      input: "s3://my-bucket/in/",
      format: "jsonl",
      key: ["id"],
      shards: PIPELINE.defaultShards,
      duplicates: "error",
      badRecords: "fail",
      maxBadRecords: PIPELINE.maxBadRecords,
      sstCompression: "none",
      bloomBitsPerKey: SST.bloomBitsPerKey,
      targetFileSize: SST.targetFileSize,
      minReplicas: PIPELINE.minReplicas,
      keepVersions: PIPELINE.keepVersions,
    });
  });

  it("accepts every option", () => {
    const r = parseLoadRequest({
      ...base,
      key: "a, b",
      value: ["c", "d"],
      shards: "16",
      duplicates: "last",
      badRecords: "skip",
      maxBadRecords: 10,
      sstCompression: "zstd",
      compression: "gzip",
      bloomBitsPerKey: 0,
      targetFileSize: 1 << 20,
      fleet: "fleet-a",
      minReplicas: 2,
      keepVersions: 5,
      csvSplit: false,
    });
    expect(r.key).toEqual(["a", "b"]);
    expect(r.value).toEqual(["c", "d"]);
    expect(r.shards).toBe(16);
    expect(r.fleet).toBe("fleet-a");
    expect(r.csvSplit).toBe(false);
  });

  it.each([
    [{ dataset: "Bad Name!" }, "dataset", /lowercase/],
    [{ dataset: undefined }, "dataset", /required/],
    [{ input: "/local/path" }, "input", /S3 URI/],
    [{ format: "xml" }, "format", /'xml' is not supported: use jsonl, csv, parquet/],
    [{ key: "" }, "key", /must not be empty/],
    [{ key: "a,a" }, "key", /unique/],
    [{ shards: 0 }, "shards", /at least 1/],
    [{ shards: 5000 }, "shards", /at most 4096/],
    [{ shards: 1.5 }, "shards", /whole number/],
    [{ shards: "many" }, "shards", /number/],
    [{ duplicates: "keep" }, "duplicates", /not supported/],
    [{ badRecords: "ignore" }, "badRecords", /not supported/],
    [{ maxBadRecords: -1 }, "maxBadRecords", /at least 0/],
    [{ sstCompression: "gzip" }, "sstCompression", /not supported/],
    [{ targetFileSize: 10 }, "targetFileSize", /at least/],
    [{ schedule: "every day" }, "schedule", /rate\(1 day\)/],
    [{ minReplicas: 0 }, "minReplicas", /at least 1/],
    [{ value: "x", valueRaw: "y" }, "valueRaw", /either value or valueRaw/],
    [{ valueRaw: "id" }, "valueRaw", /key column/],
    [{ shardz: 3 }, "shardz", /unknown field/],
    [{ version: "a/b" }, "version", /not a valid version/],
    [{ version: "a..b" }, "version", /not a valid version/],
  ])("%j → field %s", (patch, field, re) => {
    const e = fieldOf({ ...base, ...patch });
    expect(e.field).toBe(field);
    expect(e.message).toContain(`field '${field}'`);
    expect(e.message).toMatch(re);
  });

  it("defaults the version to the UTC time", () => {
    expect(defaultVersion(new Date("2026-11-22T02:15:00.123Z"))).toBe("20261122T021500Z");
    const r = parseLoadRequest({ ...base, version: undefined }, { now: new Date("2026-01-02T03:04:05Z") });
    expect(r.version).toBe("20260102T030405Z");
  });
});

describe("requestFromTrigger", () => {
  const config = { input: "s3://data-bucket/input/p/", format: "csv", key: ["id"], schedule: "rate(1 day)" };

  it("schedule: the version is the event time, the input the configured prefix", () => {
    const r = requestFromTrigger({ dataset: "p", config, trigger: { kind: "schedule", time: "2026-11-22T02:00:00Z" } });
    expect(r.version).toBe("20261122T020000Z");
    expect(r.input).toBe("s3://data-bucket/input/p/");
    expect(r.dataset).toBe("p");
  });

  it("marker in a folder: the folder is the version and the input", () => {
    const r = requestFromTrigger({
      dataset: "p",
      config,
      trigger: {
        kind: "object-created",
        time: "2026-11-22T02:00:00Z",
        bucket: "data-bucket",
        key: "input/p/day-7/_SUCCESS",
      },
    });
    expect(r.version).toBe("day-7");
    expect(r.input).toBe("s3://data-bucket/input/p/day-7/");
  });

  it("marker directly under the prefix: version from the time", () => {
    const r = requestFromTrigger({
      dataset: "p",
      config,
      trigger: { kind: "object-created", time: "2026-11-22T02:00:00Z", bucket: "data-bucket", key: "input/p/_SUCCESS" },
    });
    expect(r.version).toBe("20261122T020000Z");
    expect(r.input).toBe("s3://data-bucket/input/p/");
  });

  it("a marker outside the input, or no config at all, is refused", () => {
    expect(() =>
      requestFromTrigger({
        dataset: "p",
        config,
        trigger: {
          kind: "object-created",
          time: "2026-11-22T02:00:00Z",
          bucket: "data-bucket",
          key: "elsewhere/_SUCCESS",
        },
      }),
    ).toThrow(/not under the dataset's input/);
    expect(() =>
      requestFromTrigger({ dataset: "p", trigger: { kind: "schedule", time: "2026-11-22T02:00:00Z" } }),
    ).toThrow(/no load config/);
  });

  it("falls back to the stored dataset config", () => {
    const stored = { dataset: "p", input: "s3://data-bucket/input/p/", format: "jsonl", key: ["id"], shards: 4 };
    const r = requestFromTrigger({ dataset: "p", trigger: { kind: "schedule", time: "2026-11-22T02:00:00Z" } }, stored);
    expect(r.shards).toBe(4);
  });
});
