/**
 * Failure cases, each with nothing lost and the previous version still served: a staged SST with one flipped byte,
 * a manifest whose file path tries to leave the data directory, no host for a shard (WaitForHosts deadline), a
 * withdrawn directive (MarkFailed) — plus the path checks themselves.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  cutoverStep,
  getDatasetActive,
  HostsNotReadyError,
  listHostLoads,
  signalStep,
  waitForHostsStep,
  withdrawDirective,
} from "../../core/control/fleet.js";
import { versionPrefix } from "../../core/manifest/schema.js";
import { safeJoin } from "../../host/agent/paths.js";
import { routeGet } from "../../host/client.js";
import { type HostHandle, startHost } from "../../host/main.js";
import { createBucket, createControlTable, dropTable, uniq } from "./fleet-helpers.js";
import { hostGet, makeRecords, putObject, stageVersion, waitFor } from "./host-helpers.js";

let table: string;
let bucket: string;
const dirs: string[] = [];
const hosts: HostHandle[] = [];
const quiet = process.env.FERRY_TEST_VERBOSE ? undefined : () => {};
const fast = { pollIntervalMs: 100, heartbeatIntervalMs: 500, log: quiet, store: "sst" as const };

function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), "ferry-host-"));
  dirs.push(d);
  return d;
}

beforeAll(async () => {
  table = await createControlTable();
  bucket = await createBucket();
});
afterAll(async () => {
  for (const h of hosts) await h.stop().catch(() => {});
  await dropTable(table);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** a fleet with v1 active on one host owning shards 0-1 */
async function fleetWithV1() {
  const fleet = uniq("fleet");
  const dataset = uniq("ds");
  const v1 = await stageVersion({ bucket, dataset, version: "v1", shards: 2, records: makeRecords(40, "one") });
  const s1 = await signalStep(table, { dataset, version: "v1", fleet, bucket }, async () => 2);
  const dir = dataDir();
  const h = await startHost({ fleet, shards: [0, 1], dataDir: dir, table, bucket, ...fast });
  hosts.push(h);
  await waitFor(async () => (await waitForHostsStep(table, s1)).covered, "v1 covered");
  await cutoverStep(table, s1);
  await waitFor(async () => (await hostGet(h.endpoint, dataset, "key-000001")).version === "v1", "serving v1");
  const stillV1 = async () => {
    expect((await getDatasetActive(table, dataset))?.activeVersion).toBe("v1");
    const r = await hostGet(h.endpoint, dataset, "key-000007");
    expect(r).toMatchObject({ status: 200, version: "v1", value: v1.records.get("key-000007") });
  };
  return { fleet, dataset, v1, h, dir, stillV1 };
}

describe("host failure cases", () => {
  it("a staged SST with one flipped byte is refused: FAILED with file and sha256s, nothing ingested, v1 serves", async () => {
    const { fleet, dataset, h, dir, stillV1 } = await fleetWithV1();
    const v2 = await stageVersion({ bucket, dataset, version: "v2", shards: 2, records: makeRecords(40, "two") });
    const bad = v2.manifest.files[0];
    const bytes = Buffer.from(v2.objects.get(bad.path)!);
    bytes[Math.floor(bytes.length / 2)] ^= 0x01;
    await putObject(bucket, `${versionPrefix(dataset, "v2")}${bad.path}`, bytes);
    const s2 = await signalStep(table, { dataset, version: "v2", fleet, bucket }, async () => 2);
    const err = await waitFor(
      async () =>
        waitForHostsStep(table, s2).then(
          () => undefined,
          (e) => e,
        ),
      "WaitForHosts to fail",
    );
    expect(err).toBeInstanceOf(HostsNotReadyError);
    expect(err.message).toContain(bad.path);
    expect(err.message).toContain(`expected ${bad.sha256}`);
    expect(err.details.failed[0].host).toBe(h.hostId);
    const [load] = await listHostLoads(table, dataset, "v2");
    expect(load.state).toBe("FAILED");
    expect(load.error).toMatch(/sha256 mismatch: expected [0-9a-f]{64}, got [0-9a-f]{64}/);
    // nothing ingested: no store, no LOADED marker, no verified copy of the bad file
    expect(existsSync(join(dir, dataset, "v2", "LOADED"))).toBe(false);
    expect(existsSync(join(dir, dataset, "v2", "db"))).toBe(false);
    expect(existsSync(join(dir, dataset, "v2", "download", bad.path))).toBe(false);
    await stillV1();
  });

  it("a manifest whose file path tries to leave the data directory is refused; v1 serves", async () => {
    const { fleet, dataset, dir, stillV1 } = await fleetWithV1();
    await stageVersion({
      bucket,
      dataset,
      version: "v2",
      shards: 2,
      records: makeRecords(40, "two"),
      mutate: (m) => {
        (m.files as Array<{ path: string }>)[0].path = "shard=0/../../../../escape.sst";
      },
    });
    const s2 = await signalStep(table, { dataset, version: "v2", fleet, bucket, shards: 2 }, async () => 2);
    const err = await waitFor(
      async () =>
        waitForHostsStep(table, s2).then(
          () => undefined,
          (e) => e,
        ),
      "WaitForHosts to fail",
    );
    expect(err).toBeInstanceOf(HostsNotReadyError);
    const [load] = await listHostLoads(table, dataset, "v2");
    expect(load.state).toBe("FAILED");
    expect(load.error).toContain("files.0.path");
    expect(existsSync(join(dir, "escape.sst"))).toBe(false);
    expect(existsSync(join(dir, dataset, "escape.sst"))).toBe(false);
    await stillV1();
  });

  it("safeJoin keeps every path inside the root", () => {
    const root = "/data/ds/v1/download";
    expect(safeJoin(root, "shard=3/a-1.sst")).toBe("/data/ds/v1/download/shard=3/a-1.sst");
    for (const bad of [
      "../x.sst",
      "shard=0/../../x.sst",
      "/etc/passwd.sst",
      "shard=0/..\\x.sst",
      "shard=0//x.sst",
      "shard=0/x.sst/../../y.sst",
      "shard=0/x.txt",
      "",
    ]) {
      expect(() => safeJoin(root, bad), bad).toThrow(/refused/);
    }
  });

  it("no host for a shard: WaitForHosts fails at its deadline naming the uncovered shards; v1 serves", async () => {
    const { fleet, dataset, stillV1 } = await fleetWithV1();
    // v2 has 4 shards; the only host owns 0-1
    await stageVersion({ bucket, dataset, version: "v2", shards: 4, records: makeRecords(40, "two") });
    const s2 = await signalStep(
      table,
      { dataset, version: "v2", fleet, bucket, waitForHostsSeconds: 3 },
      async () => 4,
    );
    await waitFor(
      async () => (await listHostLoads(table, dataset, "v2")).some((l) => l.state === "LOADED"),
      "the host loaded its shards",
    );
    const w = await waitForHostsStep(table, s2);
    expect(w).toMatchObject({ covered: false, uncovered: [2, 3], deadlinePassed: false });
    const err = await waitFor(
      async () =>
        waitForHostsStep(table, s2).then(
          () => undefined,
          (e) => e,
        ),
      "the deadline",
      10_000,
      250,
    );
    expect(err).toBeInstanceOf(HostsNotReadyError);
    expect(err.message).toContain("uncovered shards: [2, 3]");
    expect(err.message).toContain("deadline");
    await stillV1();
  });

  it("a withdrawn directive (MarkFailed) makes hosts drop the version; v1 serves", async () => {
    const { fleet, dataset, dir, stillV1 } = await fleetWithV1();
    await stageVersion({ bucket, dataset, version: "v2", shards: 2, records: makeRecords(40, "two") });
    const s2 = await signalStep(table, { dataset, version: "v2", fleet, bucket }, async () => 2);
    await waitFor(async () => (await waitForHostsStep(table, s2)).covered, "v2 loaded");
    expect(existsSync(join(dir, dataset, "v2"))).toBe(true);
    expect(await withdrawDirective(table, { fleet, dataset, version: "v2" })).toBe(true);
    await waitFor(() => !existsSync(join(dir, dataset, "v2")), "v2 dropped");
    await stillV1();
    expect((await routeGet({ table, dataset, key: "key-000003" })).value?.toString()).toBe("one:3");
  });
});
