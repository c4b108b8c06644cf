import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { putIfAbsent } from "../../core/control/table.js";
import {
  coverage,
  cutover,
  cutoverStep,
  getDatasetActive,
  getDirective,
  HostsNotReadyError,
  heartbeat,
  listDirectives,
  putHostLoad,
  registerHost,
  rollback,
  signal,
  signalStep,
  waitForHostsStep,
  withdrawDirective,
} from "../../core/control/fleet.js";
import { keys } from "../../core/control/keys.js";
import { getVersion } from "../../core/control/versions.js";
import { ConflictError } from "../../core/errors.js";
import { createControlTable, dropTable, uniq } from "./fleet-helpers.js";

let table: string;
beforeAll(async () => {
  table = await createControlTable();
});
afterAll(async () => {
  await dropTable(table);
});

const loaded = (dataset: string, version: string, hostId: string, fleet: string, shards: number[]) =>
  putHostLoad(table, {
    dataset,
    version,
    hostId,
    fleet,
    shards,
    state: "LOADED",
    progress: { filesDone: 1, filesTotal: 1, bytesDone: 1, bytesTotal: 1 },
  });

const T = Date.now();

async function stageSignalCutover(fleet: string, dataset: string, version: string, issuedAt: number) {
  await registerHost(table, { fleet, hostId: "h1", shards: [0, 1], endpoint: "http://h1" });
  const s = await signalStep(
    table,
    { dataset, version, fleet, bucket: "b", shards: 2, issuedAt, execution: `${dataset}-${version}` },
    async () => 2,
  );
  await loaded(dataset, version, "h1", fleet, [0, 1]);
  const w = await waitForHostsStep(table, s);
  expect(w.covered).toBe(true);
  return cutoverStep(table, s);
}

describe("fleet control plane", () => {
  it("coverage counts live LOADED owners per shard; stale and FAILED hosts are not counted", async () => {
    const fleet = uniq("f");
    const dataset = uniq("d");
    await registerHost(table, { fleet, hostId: "a", shards: [0, 1], endpoint: "http://a" });
    await registerHost(table, { fleet, hostId: "b", shards: [2, 3], endpoint: "http://b" });
    await registerHost(table, { fleet, hostId: "c", shards: [3], endpoint: "http://c" });
    await heartbeat(table, { fleet, hostId: "c", shards: [3], endpoint: "http://c", now: Date.now() - 60_000 });
    await loaded(dataset, "v1", "a", fleet, [0, 1]);
    await loaded(dataset, "v1", "c", fleet, [3]);
    let c = await coverage(table, { fleet, dataset, version: "v1", shards: 4 });
    expect(c.covered).toBe(false);
    expect(c.uncovered).toEqual([2, 3]); // c is stale
    await putHostLoad(table, {
      dataset,
      version: "v1",
      hostId: "b",
      fleet,
      shards: [2, 3],
      state: "FAILED",
      progress: { filesDone: 0, filesTotal: 1, bytesDone: 0, bytesTotal: 1 },
      error: "shard=2/x.sst: sha256 mismatch",
    });
    c = await coverage(table, { fleet, dataset, version: "v1", shards: 4 });
    expect(c.failed).toEqual([{ host: "b", error: "shard=2/x.sst: sha256 mismatch" }]);
    await loaded(dataset, "v1", "b", fleet, [2, 3]);
    c = await coverage(table, { fleet, dataset, version: "v1", shards: 4 });
    expect(c.covered).toBe(true);
    c = await coverage(table, { fleet, dataset, version: "v1", shards: 4, minReplicas: 2 });
    expect(c.uncovered).toEqual([0, 1, 2, 3]);
  });

  it("WaitForHosts fails at its deadline naming the uncovered shards, and on a FAILED host", async () => {
    const fleet = uniq("f");
    const dataset = uniq("d");
    await registerHost(table, { fleet, hostId: "a", shards: [0, 2], endpoint: "http://a" });
    const s = await signalStep(
      table,
      { dataset, version: "v1", fleet, bucket: "b", shards: 4, waitForHostsSeconds: 0.5 },
      async () => 4,
    );
    await loaded(dataset, "v1", "a", fleet, [0, 2]);
    const w = await waitForHostsStep(table, s);
    expect(w).toMatchObject({ covered: false, uncovered: [1, 3], deadlinePassed: false });
    await new Promise((r) => setTimeout(r, 600));
    const err = await waitForHostsStep(table, s).catch((e) => e);
    expect(err).toBeInstanceOf(HostsNotReadyError);
    expect(err.name).toBe("HostsNotReadyError");
    expect(err.message).toContain("uncovered shards: [1, 3]");
    expect(err.details.uncovered).toEqual([1, 3]);

    const s2 = await signalStep(table, { dataset, version: "v2", fleet, bucket: "b", shards: 4 }, async () => 4);
    await putHostLoad(table, {
      dataset,
      version: "v2",
      hostId: "a",
      fleet,
      shards: [0, 2],
      state: "FAILED",
      progress: { filesDone: 0, filesTotal: 1, bytesDone: 0, bytesTotal: 1 },
      error: "bad sha",
    });
    const err2 = await waitForHostsStep(table, s2).catch((e) => e);
    expect(err2).toBeInstanceOf(HostsNotReadyError);
    expect(err2.message).toContain("a: bad sha");
  });

  it("signal never replaces a newer directive; a retried signal is a no-op; withdraw only withdraws its own", async () => {
    const fleet = uniq("f");
    const dataset = uniq("d");
    const base = { fleet, dataset, bucket: "b", shards: 2 };
    const r1 = await signal(table, { ...base, version: "v2", manifestKey: "m2", issuedAt: T + 2000 });
    expect(r1.written).toBe(true);
    const again = await signal(table, { ...base, version: "v2", manifestKey: "m2", issuedAt: T + 2000 });
    expect(again.written).toBe(false);
    await expect(
      signal(table, { ...base, version: "v1", manifestKey: "m1", issuedAt: T + 1000 }),
    ).rejects.toBeInstanceOf(ConflictError);
    expect((await getDirective(table, fleet, dataset))?.targetVersion).toBe("v2");
    expect(await withdrawDirective(table, { fleet, dataset, version: "v1" })).toBe(false);
    expect((await getDirective(table, fleet, dataset))?.targetVersion).toBe("v2");
    const r3 = await signal(table, { ...base, version: "v3", manifestKey: "m3", issuedAt: T + 3000 });
    expect(r3.directive.targetVersion).toBe("v3");
    expect(await withdrawDirective(table, { fleet, dataset, version: "v3" })).toBe(true);
    const d = await getDirective(table, fleet, dataset);
    expect(d?.targetVersion).toBeUndefined();
    expect(d?.withdrawnVersion).toBe("v3");
    expect((await listDirectives(table, fleet)).map((x) => x.dataset)).toEqual([dataset]);
  });

  it("two concurrent cutovers: exactly one wins; a retry of the winner is a no-op", async () => {
    const fleet = uniq("f");
    const dataset = uniq("d");
    await stageSignalCutover(fleet, dataset, "v1", T + 1000);
    const s2 = await signalStep(
      table,
      { dataset, version: "v2", fleet, bucket: "b", shards: 2, issuedAt: T + 2000 },
      async () => 2,
    );
    // a second execution for another version, signalled from the same active state (v1)
    const s3 = { ...s2, version: "v3", token: "exec-v3", issuedAt: T + 2500 };
    const results = await Promise.allSettled([cutoverStep(table, s2), cutoverStep(table, s3)]);
    const won = results.filter((r) => r.status === "fulfilled");
    const lost = results.filter((r) => r.status === "rejected");
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect((lost[0] as PromiseRejectedResult).reason).toBeInstanceOf(ConflictError);
    const ds = await getDatasetActive(table, dataset);
    const winner = (won[0] as PromiseFulfilledResult<{ activeVersion: string }>).value.activeVersion;
    expect(ds?.activeVersion).toBe(winner);
    expect(ds?.previousVersion).toBe("v1");
    const retry = await cutoverStep(table, winner === "v2" ? s2 : s3);
    expect(retry.switched).toBe(false);
    // the directive followed the dataset item
    const d = await getDirective(table, fleet, dataset);
    expect(d?.activeVersion).toBe(winner);
    expect(d?.previousVersion).toBe("v1");
  });

  it("same execution racing itself: one switch, one no-op", async () => {
    const fleet = uniq("f");
    const dataset = uniq("d");
    const s = await signalStep(
      table,
      { dataset, version: "v1", fleet, bucket: "b", shards: 1, execution: "x" },
      async () => 1,
    );
    const rs = await Promise.all([cutoverStep(table, s), cutoverStep(table, s)]);
    expect(rs.map((r) => r.switched).sort()).toEqual([false, true]);
  });

  it("cutover never moves backwards; rollback swaps back and the directive follows", async () => {
    const fleet = uniq("f");
    const dataset = uniq("d");
    await stageSignalCutover(fleet, dataset, "v1", T + 1000);
    // v2 signalled at 2000 captures expected=v1; v3 signalled later at 3000 also from v1 and cuts over first
    const s2 = await signalStep(
      table,
      { dataset, version: "v2", fleet, bucket: "b", shards: 2, issuedAt: T + 2000 },
      async () => 2,
    );
    const s3 = await signalStep(
      table,
      { dataset, version: "v3", fleet, bucket: "b", shards: 2, issuedAt: T + 3000 },
      async () => 2,
    );
    await cutoverStep(table, s3);
    await expect(cutoverStep(table, s2)).rejects.toBeInstanceOf(ConflictError);
    // even with the right expected version, an older directive cannot win
    await expect(cutoverStep(table, { ...s2, expectedActiveVersion: "v3" })).rejects.toBeInstanceOf(ConflictError);
    // without the directive pre-check (no fleet) the dataset item's condition alone refuses it
    await expect(cutoverStep(table, { ...s2, fleet: null, expectedActiveVersion: "v3" })).rejects.toBeInstanceOf(
      ConflictError,
    );
    expect((await getDatasetActive(table, dataset))?.activeVersion).toBe("v3");

    const rb = await rollback(table, dataset);
    expect(rb).toMatchObject({ activeVersion: "v1", previousVersion: "v3", fleet });
    const d = await getDirective(table, fleet, dataset);
    expect(d?.activeVersion).toBe("v1");
    expect(d?.previousVersion).toBe("v3");
    // after a rollback, the old signal still cannot cut over (activeIssuedAt is not lowered)
    await expect(cutoverStep(table, { ...s2, expectedActiveVersion: "v1" })).rejects.toBeInstanceOf(ConflictError);
    // rolling back again goes forward to v3
    expect((await rollback(table, dataset)).activeVersion).toBe("v3");
    expect((await getDirective(table, fleet, dataset))?.activeVersion).toBe("v3");
  });

  it("cutover marks a registered version ACTIVE", async () => {
    const dataset = uniq("d");
    await putIfAbsent(table, {
      ...keys.version(dataset, "v1"),
      dataset,
      version: "v1",
      status: "STAGED",
      createdAt: new Date().toISOString(),
      timings: {},
    });
    const s = await signalStep(table, { dataset, version: "v1", fleet: null, bucket: "b", shards: 1 }, async () => 1);
    expect((await waitForHostsStep(table, s)).covered).toBe(true);
    await cutover(table, { dataset, version: "v1", expectedActiveVersion: null, issuedAt: s.issuedAt, token: s.token });
    expect((await getDatasetActive(table, dataset))?.activeVersion).toBe("v1");
    expect((await getVersion(table, dataset, "v1"))?.status).toBe("ACTIVE");
  });
});
