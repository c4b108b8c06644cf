/**
 * Bad input through the whole state machine on the local stack: each case fails with one clear message naming the
 * file and line/row (or the field), nothing is published (no manifest), the version is FAILED (or never registered)
 * and the dataset's active version is untouched.
 */
import { gzipSync } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import { getDataset } from "../../core/control/datasets.js";
import { getVersion } from "../../core/control/versions.js";
import { headObject } from "../../core/manifest/s3.js";
import { manifestKey } from "../../core/manifest/schema.js";
import { type DeployedPipeline, deployPipeline, putObject } from "../integration/pipeline-helpers.js";

const prefix = `pb${Date.now().toString(36)}-`;
let p: DeployedPipeline;
const D = "bad";

const good = Array.from({ length: 50 }, (_, i) => `{"id":"k${i}","v":${i}}\n`).join("");

async function run(version: string, request: Record<string, unknown>) {
  const runner = p.runner();
  return runner.runExecution(p.names.stateMachine, {
    name: `${D}-${version}`,
    input: { request: { dataset: D, version, format: "jsonl", key: ["id"], shards: 2, ...request } },
  });
}

async function expectFailedCleanly(version: string, rec: Awaited<ReturnType<typeof run>>, dataset = D) {
  expect(rec.status).toBe("FAILED");
  expect(await headObject(p.names.dataBucket, manifestKey(dataset, version))).toBeUndefined();
  const v = await getVersion(p.names.controlTable, dataset, version);
  if (v) expect(v.status).toBe("FAILED");
  const ds = await getDataset(p.names.controlTable, D);
  expect(ds?.activeVersion).toBe("v1");
}

beforeAll(async () => {
  p = await deployPipeline(prefix);
  await putObject(p.names.dataBucket, "input/bad/good/a.jsonl", good);
  const rec = await run("v1", { input: `s3://${p.names.dataBucket}/input/bad/good/` });
  if (rec.status !== "SUCCEEDED") throw new Error(`setup load failed: ${rec.error}: ${rec.cause}`);
}, 300_000);

describe("bad input: clear message, nothing published, active version untouched", () => {
  it("malformed JSONL line names the object and the line", async () => {
    const key = "input/bad/malformed/a.jsonl";
    await putObject(p.names.dataBucket, key, `{"id":"a","v":1}\n{"id":"b","v":2}\n{"id": "c", "v": oops}\n`);
    const rec = await run("malformed", { input: `s3://${p.names.dataBucket}/${key}` });
    expect(rec.error).toBe("InputError");
    expect(rec.cause).toContain(key);
    expect(rec.cause).toMatch(/line 3/);
    await expectFailedCleanly("malformed", rec);
    const v = await getVersion(p.names.controlTable, D, "malformed");
    expect(v?.error?.cause).toContain("line 3");
  }, 120_000);

  it("CSV without the key column names the column", async () => {
    const key = "input/bad/nokey/a.csv";
    await putObject(p.names.dataBucket, key, "name,score\nx,1\ny,2\n");
    const rec = await run("nokey", { input: `s3://${p.names.dataBucket}/${key}`, format: "csv", key: ["profile_id"] });
    expect(rec.error).toBe("InputError");
    expect(rec.cause).toContain("profile_id");
    expect(rec.cause).toContain(key);
    await expectFailedCleanly("nokey", rec);
  }, 120_000);

  it("an empty key names the line and the column", async () => {
    const key = "input/bad/emptykey/a.csv.gz";
    await putObject(p.names.dataBucket, key, gzipSync("id,v\na,1\n,2\nc,3\n"));
    const rec = await run("emptykey", { input: `s3://${p.names.dataBucket}/${key}`, format: "csv" });
    expect(rec.error).toBe("InputError");
    expect(rec.cause).toContain(key);
    expect(rec.cause).toMatch(/line 3/);
    expect(rec.cause).toContain("'id'");
    await expectFailedCleanly("emptykey", rec);
  }, 120_000);

  it("duplicate keys under duplicates=error name the key", async () => {
    const key = "input/bad/dups/a.jsonl";
    await putObject(p.names.dataBucket, key, `{"id":"a","v":1}\n{"id":"dup-key","v":2}\n{"id":"dup-key","v":3}\n`);
    const rec = await run("dups", { input: `s3://${p.names.dataBucket}/${key}`, duplicates: "error" });
    expect(rec.status).toBe("FAILED");
    expect(rec.cause).toContain("dup-key");
    await expectFailedCleanly("dups", rec);
  }, 120_000);

  it("more bad rows than --max-bad-records fails with examples", async () => {
    const key = "input/bad/toomany/a.jsonl";
    await putObject(p.names.dataBucket, key, `{"id":"a"}\n{"v":1}\n{"v":2}\n{"v":3}\n{"id":"b"}\n`);
    const rec = await run("toomany", {
      input: `s3://${p.names.dataBucket}/${key}`,
      badRecords: "skip",
      maxBadRecords: 1,
    });
    expect(rec.status).toBe("FAILED");
    expect(rec.cause).toMatch(/maxBadRecords|max-bad-records/);
    expect(rec.cause).toContain(key);
    await expectFailedCleanly("toomany", rec);
  }, 120_000);

  it("bad rows within --max-bad-records are skipped and counted", async () => {
    const key = "input/bad/some/a.jsonl";
    await putObject(p.names.dataBucket, key, `{"id":"a"}\n{"v":1}\n{"id":"b"}\n`);
    const rec = await run("some", { input: `s3://${p.names.dataBucket}/${key}`, badRecords: "skip", maxBadRecords: 5 });
    expect(rec.error ? `${rec.error}: ${rec.cause}` : rec.status).toBe("SUCCEEDED");
    const v = await getVersion(p.names.controlTable, D, "some");
    expect(v?.counts?.skipped).toBe(1);
    expect(v?.counts?.entries).toBe(2);
    // a successful load moves the active version: put v1 back for the other cases
    const { activateVersion } = await import("../../core/control/datasets.js");
    const { transitionVersion } = await import("../../core/control/versions.js");
    await activateVersion(p.names.controlTable, D, "v1").catch(async () => {
      await transitionVersion(p.names.controlTable, D, "v1", "ACTIVE");
    });
  }, 120_000);

  it("a key over the size limit names the line", async () => {
    const key = "input/bad/bigkey/a.jsonl";
    await putObject(p.names.dataBucket, key, `{"id":"a","v":1}\n{"id":"${"x".repeat(70_000)}","v":2}\n`);
    const rec = await run("bigkey", { input: `s3://${p.names.dataBucket}/${key}` });
    expect(rec.error).toBe("InputError");
    expect(rec.cause).toMatch(/line 2/);
    expect(rec.cause).toMatch(/bytes, more than/);
    await expectFailedCleanly("bigkey", rec);
  }, 120_000);

  it("an empty dataset (only empty objects / blank lines) says there is nothing to load", async () => {
    await putObject(p.names.dataBucket, "input/bad/empty/a.jsonl", "");
    await putObject(p.names.dataBucket, "input/bad/empty/b.jsonl", "\n\n");
    const rec = await run("empty", { input: `s3://${p.names.dataBucket}/input/bad/empty/` });
    expect(rec.error).toBe("InputError");
    expect(rec.cause).toMatch(/no records|nothing to load/);
    await expectFailedCleanly("empty", rec);
  }, 120_000);

  it("an input prefix with no objects says so", async () => {
    const rec = await run("noobjects", { input: `s3://${p.names.dataBucket}/input/bad/does-not-exist/` });
    expect(rec.error).toBe("InputError");
    expect(rec.cause).toContain("no objects found");
    expect(rec.cause).toContain("input/bad/does-not-exist/");
    await expectFailedCleanly("noobjects", rec);
  }, 120_000);

  it("an unknown format names the field", async () => {
    const rec = await run("xml", { input: `s3://${p.names.dataBucket}/input/bad/good/`, format: "xml" });
    expect(rec.error).toBe("ConfigError");
    expect(rec.cause).toContain("field 'format'");
    expect(rec.cause).toContain("'xml' is not supported");
    await expectFailedCleanly("xml", rec);
  }, 120_000);

  it("an illegal dataset name names the field", async () => {
    const runner = p.runner();
    const rec = await runner.runExecution(p.names.stateMachine, {
      name: "illegal-name",
      input: {
        request: {
          dataset: "Bad Name!",
          version: "v1",
          input: `s3://${p.names.dataBucket}/input/bad/good/`,
          format: "jsonl",
          key: ["id"],
        },
      },
    });
    expect(rec.status).toBe("FAILED");
    expect(rec.error).toBe("ConfigError");
    expect(rec.cause).toContain("field 'dataset'");
    const ds = await getDataset(p.names.controlTable, D);
    expect(ds?.activeVersion).toBe("v1");
  }, 120_000);
});
