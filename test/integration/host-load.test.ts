/**
 * Hosts load a hand-staged version, coverage is reached, cutover switches reads; rollback switches back; cleanup and
 * host GC drop old versions. Runs with the sst store and, when librocksdb is present, the rocksdb store.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  cleanup,
  coverage,
  cutoverStep,
  getDirective,
  listHostLoads,
  listHosts,
  rollback,
  type SignalOutput,
  signalStep,
  waitForHostsStep,
} from "../../core/control/fleet.js";
import { keys } from "../../core/control/keys.js";
import { putIfAbsent } from "../../core/control/table.js";
import { getVersion } from "../../core/control/versions.js";
import { routeGet } from "../../host/client.js";
import { type HostHandle, startHost } from "../../host/main.js";
import { rocksdbBackend } from "../../host/store/index.js";
import { createBucket, createControlTable, dropTable, uniq } from "./fleet-helpers.js";
import { hostGet, makeRecords, stageVersion, waitFor } from "./host-helpers.js";

const rocksOk = rocksdbBackend.available() === true;
if (!rocksOk && process.env.CI === "true")
  throw new Error(`rocksdb store unavailable in CI: ${rocksdbBackend.available()}`);
if (!rocksOk) console.warn(`\n*** host-load: rocksdb store NOT tested: ${rocksdbBackend.available()} ***\n`);
const stores = rocksOk ? (["sst", "rocksdb"] as const) : (["sst"] as const);

let table: string;
let bucket: string;
const dirs: string[] = [];
beforeAll(async () => {
  table = await createControlTable();
  bucket = await createBucket();
});
afterAll(async () => {
  await dropTable(table);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const quiet = process.env.FERRY_TEST_VERBOSE ? undefined : () => {};
const fast = { pollIntervalMs: 100, heartbeatIntervalMs: 500, log: quiet };

async function registerVersionItem(dataset: string, version: string) {
  await putIfAbsent(table, {
    ...keys.version(dataset, version),
    dataset,
    version,
    status: "STAGED",
    createdAt: new Date().toISOString(),
    timings: {},
  });
}

async function loadAndCutover(s: SignalOutput) {
  await waitFor(async () => (await waitForHostsStep(table, s)).covered, `coverage of ${s.version}`);
  return cutoverStep(table, s);
}

describe.each(stores)("hosts with the %s store", { timeout: 180_000 }, (store) => {
  it("load → coverage → cutover → reads switch; rollback; cleanup drops old versions", async () => {
    const fleet = uniq("fleet");
    const dataset = uniq("ds");
    const shards = 4;
    const hosts: HostHandle[] = [];
    try {
      // v1 staged by hand, 2 hosts x 2 shards each, plus a replica of shards 0-1
      const v1 = await stageVersion({
        bucket,
        dataset,
        version: "v1",
        shards,
        records: makeRecords(300, "one"),
        splitFiles: true,
      });
      await registerVersionItem(dataset, "v1");
      const s1 = await signalStep(table, { dataset, version: "v1", fleet, bucket, minReplicas: 1 }, async () => shards);
      for (const sh of [
        [0, 1],
        [2, 3],
        [0, 1],
      ]) {
        const dataDir = mkdtempSync(join(tmpdir(), "ferry-host-"));
        dirs.push(dataDir);
        hosts.push(await startHost({ fleet, shards: sh, dataDir, table, bucket, store, ...fast }));
      }
      expect((await listHosts(table, fleet)).filter((h) => h.live)).toHaveLength(3);
      const c1 = await loadAndCutover(s1);
      expect(c1).toMatchObject({ activeVersion: "v1", previousVersion: null, switched: true });
      await waitFor(
        async () => (await listHostLoads(table, dataset, "v1")).every((l) => l.state === "LOADED"),
        "all three hosts LOADED",
      );
      expect(await listHostLoads(table, dataset, "v1")).toHaveLength(3);
      expect(
        (await coverage(table, { fleet, dataset, version: "v1", shards, minReplicas: 1 })).shards[0].loaded,
      ).toHaveLength(2);

      // every key readable through routing, and from the host that owns it
      // each host activates v1 on its own after the cutover: wait for all of them (one routed key only proves one
      // shard's host; reading the other shard before its host switched was a flaky 503 "no active version")
      await allHostsActive(hosts, dataset, "v1");
      for (const [k, v] of [...v1.records].slice(0, 20)) {
        const r = await routeGet({ table, dataset, key: k });
        expect(r.found).toBe(true);
        expect(r.value?.toString()).toBe(v);
      }
      expect((await routeGet({ table, dataset, key: "no-such-key" })).found).toBe(false);

      // v2: new values; reads switch only at cutover
      const v2 = await stageVersion({ bucket, dataset, version: "v2", shards, records: makeRecords(300, "two") });
      await registerVersionItem(dataset, "v2");
      const s2 = await signalStep(table, { dataset, version: "v2", fleet, bucket }, async () => shards);
      await waitFor(async () => (await waitForHostsStep(table, s2)).covered, "coverage of v2");
      expect((await hostGet(hosts[0].endpoint, dataset, "key-000001")).version).toBe("v1"); // loaded, not yet active
      const c2 = await cutoverStep(table, s2);
      expect(c2).toMatchObject({ activeVersion: "v2", previousVersion: "v1" });
      await allHostsActive(hosts, dataset, "v2");
      for (const [k, v] of [...v2.records].slice(0, 10))
        expect((await routeGet({ table, dataset, key: k })).value?.toString()).toBe(v);
      expect((await getVersion(table, dataset, "v2"))?.status).toBe("ACTIVE");

      // rollback: hosts switch back to v1 (kept for exactly this)
      const rb = await rollback(table, dataset);
      expect(rb).toMatchObject({ activeVersion: "v1", previousVersion: "v2" });
      await waitFor(async () => {
        const rs = await Promise.all(hosts.map((h) => hostGet(h.endpoint, dataset, "key-000123")));
        return rs.every((r) => r.version === "v1" || r.status === 421);
      }, "hosts back on v1");
      const back = await routeGet({ table, dataset, key: "key-000123" });
      expect(back.value?.toString()).toBe(v1.records.get("key-000123"));
      await rollback(table, dataset); // and forward again to v2
      await waitFor(async () => (await routeGet({ table, dataset, key: "key-000123" })).version === "v2", "v2 again");

      // v3 → hosts keep v3 (active) and v2 (previous), drop v1; cleanup retires v1
      await stageVersion({ bucket, dataset, version: "v3", shards, records: makeRecords(100, "three") });
      await registerVersionItem(dataset, "v3");
      const s3 = await signalStep(table, { dataset, version: "v3", fleet, bucket }, async () => shards);
      await loadAndCutover(s3);
      const cl = await cleanup(table, { dataset, keepVersions: 2 });
      expect(cl.retired).toEqual(["v1"]);
      expect((await getVersion(table, dataset, "v1"))?.status).toBe("RETIRED");
      const dir = await getDirective(table, fleet, dataset);
      expect(dir).toMatchObject({ activeVersion: "v3", previousVersion: "v2" });
      for (const h of hosts) {
        const dataDir = dirs[dirs.length - hosts.length + hosts.indexOf(h)];
        await waitFor(() => !existsSync(join(dataDir, dataset, "v1")), `host ${h.hostId} dropped v1`);
        expect(readdirSync(join(dataDir, dataset)).sort()).toEqual(["v2", "v3"]);
      }
      expect((await routeGet({ table, dataset, key: "key-000050" })).value?.toString()).toBe("three:50");
    } finally {
      for (const h of hosts) await h.stop();
    }
    expect((await listHosts(table, fleet)).length).toBe(0); // graceful stop deregisters
  });

  it("a host that starts late loads the active version first and serves it", async () => {
    const fleet = uniq("fleet");
    const dataset = uniq("ds");
    const v1 = await stageVersion({ bucket, dataset, version: "v1", shards: 2, records: makeRecords(50, "one") });
    const s1 = await signalStep(table, { dataset, version: "v1", fleet, bucket }, async () => 2);
    const d1 = mkdtempSync(join(tmpdir(), "ferry-host-"));
    dirs.push(d1);
    const h1 = await startHost({ fleet, shards: [0, 1], dataDir: d1, table, bucket, store, ...fast });
    try {
      await loadAndCutover(s1);
      // v2 is signalled but not cut over; a late host must serve v1 (active) first
      await stageVersion({ bucket, dataset, version: "v2", shards: 2, records: makeRecords(50, "two") });
      await signalStep(table, { dataset, version: "v2", fleet, bucket }, async () => 2);
      const d2 = mkdtempSync(join(tmpdir(), "ferry-host-"));
      dirs.push(d2);
      const h2 = await startHost({ fleet, shards: [0, 1], dataDir: d2, table, bucket, store, ...fast });
      try {
        await waitFor(
          async () => (await hostGet(h2.endpoint, dataset, "key-000003")).status === 200,
          "late host serves",
        );
        const r = await hostGet(h2.endpoint, dataset, "key-000003");
        expect(r).toMatchObject({ version: "v1", value: v1.records.get("key-000003") });
        await waitFor(
          async () => (await listHostLoads(table, dataset, "v2")).filter((l) => l.state === "LOADED").length === 2,
          "both loaded v2",
        );
      } finally {
        await h2.stop();
      }
    } finally {
      await h1.stop();
    }
  });
});

/** waits until every host's status says `version` is the dataset's active one */
async function allHostsActive(
  hosts: Array<{ endpoint: string; hostId: string }>,
  dataset: string,
  version: string,
): Promise<void> {
  for (const h of hosts) {
    await waitFor(async () => {
      const st = (await (await fetch(`${h.endpoint}/v1/status`)).json()) as {
        datasets: Record<string, { active?: { version: string } }>;
      };
      return st.datasets[dataset]?.active?.version === version;
    }, `host ${h.hostId} serving ${version}`);
  }
}
