/**
 * End to end on the local stack: the CDK-synthesized bulk-load state machine (BulkLoadPipeline) run by the local
 * runner with the real handlers, for each input format (JSONL, CSV, Parquet; gzip included). Every source record is
 * checked against the published SST files read back with core/sst, and the shard of every key against murmur3.
 */
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getDataset } from "../../core/control/datasets.js";
import { getVersion } from "../../core/control/versions.js";
import { getJsonOrUndefined, headObject } from "../../core/manifest/s3.js";
import { stagingKeys } from "../../core/pipeline/plan.js";
import { shardOf } from "../../core/shuffle/shard.js";
import {
  type DeployedPipeline,
  deployPipeline,
  prng,
  putObject,
  readPublished,
} from "../integration/pipeline-helpers.js";

const prefix = `pe${Date.now().toString(36)}-`;
let p: DeployedPipeline;

beforeAll(async () => {
  p = await deployPipeline(prefix);
}, 300_000);
afterAll(() => {});

interface Row {
  id: string;
  name: string;
  score: number;
}

function rows(n: number, seed: number): Row[] {
  const r = prng(seed);
  return Array.from({ length: n }, (_, i) => ({
    id: `user-${String(i).padStart(6, "0")}-${Math.floor(r() * 1e6)}`,
    name: `name ${Math.floor(r() * 1e9).toString(36)}`,
    score: Math.floor(r() * 1000),
  }));
}

const jsonl = (rs: Row[]) => rs.map((x) => `${JSON.stringify(x)}\n`).join("");
const csv = (rs: Row[]) => `id,name,score\n${rs.map((x) => `${x.id},${x.name},${x.score}`).join("\n")}\n`;

async function load(request: Record<string, unknown>, name?: string) {
  const runner = p.runner();
  const exec = name ?? `${request.dataset}-${request.version}`;
  return runner.runExecution(p.names.stateMachine, { name: exec, input: { request } });
}

function expectAllLoaded(
  source: Row[],
  pub: Awaited<ReturnType<typeof readPublished>>,
  value: (r: Row) => unknown,
  shards: number,
) {
  expect(pub.entries.size).toBe(source.length);
  for (const r of source) {
    const v = pub.entries.get(r.id);
    expect(v, `key ${r.id}`).toBeDefined();
    expect(JSON.parse(v as string)).toEqual(value(r));
  }
  for (const [shard, ks] of pub.byShard) {
    for (const k of ks) expect(shardOf(Buffer.from(k), shards)).toBe(shard);
  }
  expect(pub.manifest.counts.entries).toBe(source.length);
  expect(pub.manifest.shards).toBe(shards);
}

describe("bulk load end to end (local stack, synthesized state machine)", () => {
  it("JSONL (one plain object, one gzip) → SSTs with every record, activated", async () => {
    const { dataBucket, controlTable } = p.names;
    const src = rows(3000, 1);
    await putObject(dataBucket, "input/users/part-0.jsonl", jsonl(src.slice(0, 1800)));
    await putObject(dataBucket, "input/users/part-1.jsonl.gz", gzipSync(jsonl(src.slice(1800))));
    await putObject(dataBucket, "input/users/_SUCCESS", "");
    const rec = await load({
      dataset: "users",
      version: "v1",
      input: `s3://${dataBucket}/input/users/`,
      format: "jsonl",
      key: ["id"],
      shards: 4,
    });
    expect(rec.error ? `${rec.error}: ${rec.cause}` : rec.status).toBe("SUCCEEDED");
    const pub = await readPublished(dataBucket, "users", "v1");
    expectAllLoaded(src, pub, (r) => ({ name: r.name, score: r.score }), 4);
    const v = await getVersion(controlTable, "users", "v1");
    expect(v?.status).toBe("ACTIVE");
    expect(v?.counts?.entries).toBe(3000);
    const ds = await getDataset(controlTable, "users");
    expect(ds?.activeVersion).toBe("v1");
    // PlanBuild recorded every run's size, so Build opened them without a HEAD each
    const runs = await getJsonOrUndefined<{ runKeys: string[]; runBytes?: number[] }>(
      dataBucket,
      stagingKeys("users", "v1").runs,
    );
    expect(runs?.runKeys.length).toBeGreaterThan(0);
    for (const [i, key] of (runs?.runKeys ?? []).entries())
      expect(runs?.runBytes?.[i], key).toBe((await headObject(dataBucket, key))?.size);
  }, 180_000);

  it("CSV (gzip) with --value-raw → raw values", async () => {
    const { dataBucket } = p.names;
    const src = rows(2000, 2);
    await putObject(dataBucket, "input/scores/a.csv.gz", gzipSync(csv(src)));
    const rec = await load({
      dataset: "scores",
      version: "v1",
      input: `s3://${dataBucket}/input/scores/a.csv.gz`,
      format: "csv",
      key: "id",
      valueRaw: "name",
      shards: 3,
    });
    expect(rec.error ? `${rec.error}: ${rec.cause}` : rec.status).toBe("SUCCEEDED");
    const pub = await readPublished(dataBucket, "scores", "v1");
    expect(pub.entries.size).toBe(src.length);
    for (const r of src) expect(pub.entries.get(r.id)).toBe(r.name);
  }, 180_000);

  it("Parquet → SSTs with every record", async () => {
    const { dataBucket } = p.names;
    const src = rows(2500, 3);
    const { parquetWriteBuffer } = await import("hyparquet-writer");
    const buf = parquetWriteBuffer({
      columnData: [
        { name: "id", data: src.map((r) => r.id), type: "STRING" },
        { name: "name", data: src.map((r) => r.name), type: "STRING" },
        { name: "score", data: src.map((r) => r.score), type: "INT32" },
      ],
      rowGroupSize: 1000,
    });
    await putObject(dataBucket, "input/pq/data.parquet", new Uint8Array(buf));
    const rec = await load({
      dataset: "pq",
      version: "v1",
      input: `s3://${dataBucket}/input/pq/`,
      format: "parquet",
      key: ["id"],
      shards: 2,
    });
    expect(rec.error ? `${rec.error}: ${rec.cause}` : rec.status).toBe("SUCCEEDED");
    const pub = await readPublished(dataBucket, "pq", "v1");
    expectAllLoaded(src, pub, (r) => ({ name: r.name, score: r.score }), 2);
  }, 180_000);

  it("the input a marker rule produces (_SUCCESS in a dated folder) loads that folder as that version", async () => {
    const { dataBucket, controlTable } = p.names;
    const src = rows(500, 4);
    await putObject(dataBucket, "input/trig/2026-11-21/part-0.jsonl", jsonl(src));
    await putObject(dataBucket, "input/trig/2026-11-21/_SUCCESS", "");
    // what infra/constructs/triggers.ts makes EventBridge send (see test/unit/infra-bulk-load.test.ts)
    const input = {
      dataset: "trig",
      config: { dataset: "trig", input: `s3://${dataBucket}/input/trig/`, format: "jsonl", key: ["id"], shards: 2 },
      trigger: {
        kind: "object-created",
        time: "2026-11-22T02:15:00Z",
        bucket: dataBucket,
        key: "input/trig/2026-11-21/_SUCCESS",
      },
    };
    const rec = await p.runner().runExecution(p.names.stateMachine, { name: "trig-marker-1", input });
    expect(rec.error ? `${rec.error}: ${rec.cause}` : rec.status).toBe("SUCCEEDED");
    const pub = await readPublished(dataBucket, "trig", "2026-11-21");
    expectAllLoaded(src, pub, (r) => ({ name: r.name, score: r.score }), 2);
    expect((await getDataset(controlTable, "trig"))?.activeVersion).toBe("2026-11-21");
    // EventBridge delivers at least once: the same event again is a no-op
    const again = await p.runner().runExecution(p.names.stateMachine, { name: "trig-marker-2", input });
    expect(again.status).toBe("SUCCEEDED");
    expect((again.output as { alreadyDone?: boolean }).alreadyDone).toBe(true);
  }, 180_000);

  it("the input a schedule rule produces loads the configured prefix as a timestamp version", async () => {
    const { dataBucket } = p.names;
    const src = rows(300, 5);
    await putObject(dataBucket, "input/sched/a.jsonl", jsonl(src));
    const input = {
      dataset: "sched",
      config: { dataset: "sched", input: `s3://${dataBucket}/input/sched/`, format: "jsonl", key: ["id"], shards: 2 },
      trigger: { kind: "schedule", time: "2026-11-22T03:00:00Z" },
    };
    const rec = await p.runner().runExecution(p.names.stateMachine, { name: "sched-1", input });
    expect(rec.error ? `${rec.error}: ${rec.cause}` : rec.status).toBe("SUCCEEDED");
    const pub = await readPublished(dataBucket, "sched", "20261122T030000Z");
    expect(pub.entries.size).toBe(300);
  }, 180_000);
});
