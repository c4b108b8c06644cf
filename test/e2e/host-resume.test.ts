/**
 * Hosts as real child processes: a host SIGKILLed mid-download restarts and finishes (resuming the verified parts),
 * and GETs keep succeeding while a host loads a new version (p99 idle vs during load printed for docs/hosts.md).
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cutoverStep, listHostLoads, signalStep, waitForHostsStep } from "../../core/control/fleet.js";
import { routeGet } from "../../host/client.js";
import { type HostHandle, startHost } from "../../host/main.js";
import { createBucket, createControlTable, dropTable, uniq } from "../integration/fleet-helpers.js";
import { hostGet, makeRecords, stageVersion, waitFor } from "../integration/host-helpers.js";

let table: string;
let bucket: string;
const dirs: string[] = [];
const hosts: HostHandle[] = [];

beforeAll(async () => {
  table = await createControlTable();
  bucket = await createBucket();
});
afterAll(async () => {
  for (const h of hosts) await h.kill().catch(() => {});
  await dropTable(table);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** the child's JSON log lines (node may print plain warnings too) */
function jsonLines(lines: string[]): Array<Record<string, unknown> & { msg?: string; version?: string }> {
  return lines.flatMap((l) => {
    try {
      return l.startsWith("{") ? [JSON.parse(l)] : [];
    } catch {
      return [];
    }
  });
}

function p99(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))];
}

function listParts(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else out.push(e.name);
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

describe("hosts as child processes", { timeout: 180_000 }, () => {
  const fleet = uniq("fleet");
  const dataset = uniq("ds");
  const dataDir = mkdtempSync(join(tmpdir(), "ferry-host-"));
  dirs.push(dataDir);
  let host: HostHandle;
  const logs: string[] = [];
  const common = {
    fleet,
    shards: [0, 1],
    dataDir,
    mode: "child" as const,
    store: "sst" as const,
    pollIntervalMs: 100,
    heartbeatIntervalMs: 500,
    downloadPartBytes: 256 * 1024,
  };

  it("a host killed mid-download restarts and finishes, keeping the verified parts", async () => {
    // ~6 MB over 2 shards; the first host downloads at 8 Mbit/s (1 MB/s, ~6 s) so it is surely mid-download when
    // killed even though progress is reported only every second and this machine may be slow to notice
    const v1 = await stageVersion({
      bucket,
      dataset,
      version: "v1",
      shards: 2,
      records: makeRecords(4000, "one", 1500),
    });
    const total = v1.manifest.totalBytes;
    expect(total).toBeGreaterThan(5_000_000);
    const s1 = await signalStep(table, { dataset, version: "v1", fleet, bucket }, async () => 2);
    const first = await startHost({ ...common, table, bucket, maxDownloadMbps: 8 });
    hosts.push(first);
    await waitFor(
      async () => {
        const [l] = await listHostLoads(table, dataset, "v1");
        return l && l.progress.bytesDone > total * 0.1 && l.state === "DOWNLOADING";
      },
      "a tenth downloaded",
      30_000,
    );
    await first.kill();
    const [mid] = await listHostLoads(table, dataset, "v1");
    expect(mid.state).toBe("DOWNLOADING");
    const left = listParts(join(dataDir, dataset, "v1", "download"));
    expect(left.some((f) => f.endsWith(".sst.part"))).toBe(true);
    expect(left.some((f) => f.endsWith(".sst.part.json"))).toBe(true);

    host = await startHost({ ...common, table, bucket, maxDownloadMbps: 40, log: (l) => logs.push(l) });
    hosts.push(host);
    expect(host.hostId).toBe(first.hostId); // the id lives in the data dir
    await waitFor(async () => (await waitForHostsStep(table, s1)).covered, "v1 covered after restart", 30_000);
    const loaded = await waitFor(
      () => jsonLines(logs).find((j) => j.msg === "loaded" && j.version === "v1"),
      "the loaded log line",
    );
    expect(loaded.resumedBytes).toBeGreaterThan(total * 0.05);
    expect(loaded.resumedBytes as number).toBeLessThan(total);
    await cutoverStep(table, s1);
    await waitFor(async () => (await hostGet(host.endpoint, dataset, "key-000001")).version === "v1", "serving v1");
    for (const k of ["key-000000", "key-001234", "key-003999"]) {
      expect((await routeGet({ table, dataset, key: k })).value?.toString()).toBe(v1.records.get(k));
    }
    expect(listParts(join(dataDir, dataset, "v1", "download"))).toEqual([]);
  });

  it("GETs keep succeeding while the host loads the next version", async () => {
    const v2 = await stageVersion({
      bucket,
      dataset,
      version: "v2",
      shards: 2,
      records: makeRecords(4000, "two", 1500),
    });
    const keys = Array.from({ length: 200 }, (_, i) => `key-${String((i * 37) % 4000).padStart(6, "0")}`);
    const measure = async (until: () => boolean, max: number) => {
      const lat: number[] = [];
      let failures = 0;
      for (let i = 0; !until() && i < max; i++) {
        const t = performance.now();
        const r = await hostGet(host.endpoint, dataset, keys[i % keys.length]);
        lat.push(performance.now() - t);
        if (r.status !== 200) failures++;
      }
      return { lat, failures };
    };
    const idle = await measure(() => false, 300);
    let loadedState = false;
    const s2 = await signalStep(table, { dataset, version: "v2", fleet, bucket }, async () => 2);
    const poll = (async () => {
      await waitFor(async () => (await waitForHostsStep(table, s2)).covered, "v2 covered", 60_000, 50);
      loadedState = true;
    })();
    const during = await measure(() => loadedState, 100_000);
    await poll;
    expect(idle.failures).toBe(0);
    expect(during.failures).toBe(0);
    expect(during.lat.length).toBeGreaterThan(10);
    const loadLine = jsonLines(logs).find((j) => j.msg === "loaded" && j.version === "v2");
    console.log(
      JSON.stringify({
        getP99MsIdle: Number(p99(idle.lat).toFixed(2)),
        getP99MsLoading: Number(p99(during.lat).toFixed(2)),
        getsDuringLoad: during.lat.length,
        loadMb: Number((v2.manifest.totalBytes / 1e6).toFixed(2)),
        loadSeconds: loadLine?.seconds,
        downloadMbPerSec: loadLine?.downloadMbPerSec,
        capMbps: 40,
      }),
    );
    await cutoverStep(table, s2);
    await waitFor(async () => (await hostGet(host.endpoint, dataset, "key-000002")).version === "v2", "serving v2");
    await host.stop();
  });
});
