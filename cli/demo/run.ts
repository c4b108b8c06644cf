/**
 * `ferry demo`: the whole product, end to end, on the embedded local stack.
 *
 *   1. start the local stack (or use the running one) and deploy the CDK app's resources onto it
 *   2. start N serving hosts (child processes), each owning a share of the shards, `replicas` hosts per shard
 *   3. generate a dataset (viewing profiles, shuffled) and load it as v1 through the synthesized state machine
 *      (Plan → Partition → Build → Publish → Signal → WaitForHosts → Cutover)
 *   4. verify a random sample of keys (and absent keys) through the hosts' HTTP API against the source
 *   5. load v2 (every value changed), verify the cutover
 *   6. roll back to v1, verify again
 *   7. run the event-ingestion demo (duplicates, shuffling, malformed events) and check its final state
 *   8. stop everything; print a summary table (stderr) or one JSON object (--json); exit 1 on any mismatch
 */
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { rollback } from "../../core/control/fleet.js";
import { ENV, requireEnv } from "../../core/env.js";
import { type HostHandle, startHost } from "../../host/main.js";
import type { HostStatus } from "../../host/server/types.js";
import { deployLocal } from "../../local/deploy/index.js";
import { PROJECT_ROOT, withLocalStack } from "../../local/stack/index.js";
import { runEventsDemo } from "../commands/events.js";
import { runLoad } from "../commands/load.js";
import { DEMO_KEY_COLUMN, sampleIndexes, writeDemoDataset } from "./dataset.js";
import { type FleetMember, type VerifyResult, verifyThroughHosts } from "./verify.js";

export interface DemoOptions {
  records: number;
  hosts: number;
  shards: number;
  replicas: number;
  /** keys verified per phase */
  sample: number;
  events: number;
  json: boolean;
  store?: "rocksdb" | "sst";
  log: (line: string) => void;
}

export interface DemoPhase {
  phase: string;
  seconds: number;
  records?: number;
  recordsPerSec?: number;
  mb?: number;
  mbPerSec?: number;
  verified?: number;
  mismatches?: number;
  note?: string;
}

export interface DemoResult {
  ok: boolean;
  mismatches: number;
  recordsVerified: number;
  records: number;
  hosts: number;
  shards: number;
  replicas: number;
  store: string;
  phases: DemoPhase[];
  events?: Record<string, unknown>;
  examples: string[];
  seconds: number;
}

const DATASET = "profiles";
const FLEET = "demo";

/** shard s is owned by hosts s mod H, s+1 mod H, … (replicas of them) */
export function assignShards(hosts: number, shards: number, replicas: number): number[][] {
  const owned: number[][] = Array.from({ length: hosts }, () => []);
  const r = Math.min(replicas, hosts);
  for (let s = 0; s < shards; s++) for (let k = 0; k < r; k++) owned[(s + k) % hosts].push(s);
  return owned;
}

export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const t0 = performance.now();
  const phases: DemoPhase[] = [];
  const examples: string[] = [];
  let mismatches = 0;
  let recordsVerified = 0;
  const timed = async <T>(
    phase: string,
    fn: () => Promise<T>,
    extra: (r: T, s: number) => Partial<DemoPhase> = () => ({}),
  ) => {
    o.log(`▶ ${phase}`);
    const s0 = performance.now();
    const r = await fn();
    const seconds = (performance.now() - s0) / 1000;
    const p: DemoPhase = { phase, seconds: round(seconds), ...extra(r, seconds) };
    phases.push(p);
    o.log(`✓ ${phase} (${p.seconds}s${p.note ? `, ${p.note}` : ""})`);
    return r;
  };
  const check = (phase: string, v: VerifyResult) => {
    mismatches += v.mismatches;
    recordsVerified += v.checked;
    examples.push(...v.examples.map((e) => `${phase}: ${e}`));
    return {
      verified: v.checked + v.absentChecked,
      mismatches: v.mismatches,
      note: `${v.checked} keys + ${v.absentChecked} absent keys checked through ${Object.keys(v.versions).join(",")}, ${v.mismatches} mismatches`,
    };
  };

  const work = join(PROJECT_ROOT, ".ferry", "demo");
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });

  return withLocalStack(async () => {
    const deployment = await timed("deploy the CDK app onto the local stack", () => deployLocal({ applyEnv: true }));
    const bucket = requireEnv(ENV.dataBucket);
    const table = requireEnv(ENV.controlTable);

    const owned = assignShards(o.hosts, o.shards, o.replicas);
    const hosts: HostHandle[] = [];
    const fleet: FleetMember[] = [];
    let store = o.store ?? "";
    try {
      await timed(`start ${o.hosts} serving hosts`, async () => {
        const started = await Promise.all(
          owned.map((shards, i) =>
            startHost({
              fleet: FLEET,
              shards,
              dataDir: join(work, `host-${i}`),
              store: o.store,
              mode: "child",
              table,
              bucket,
              hostId: `host-${i}`,
              pollIntervalMs: 500,
              heartbeatIntervalMs: 2000,
            }),
          ),
        );
        started.forEach((h, i) => {
          hosts.push(h);
          fleet.push({ endpoint: h.endpoint, shards: owned[i] });
          o.log(`  host-${i} ${h.endpoint} store=${h.store} shards=${owned[i].join(",")}`);
        });
        store = started[0]?.store ?? store;
      });

      const files = { v1: join(work, "profiles-v1.jsonl"), v2: join(work, "profiles-v2.jsonl") };
      const bytes = await timed(
        `generate ${o.records.toLocaleString("en-US")} records (v1 and v2)`,
        async () => {
          const a = await writeDemoDataset(files.v1, o.records, 1);
          const b = await writeDemoDataset(files.v2, o.records, 2);
          return { v1: a, v2: b };
        },
        (r) => ({ mb: mb(r.v1 + r.v2) }),
      );

      const load = (version: string, input: string, size: number) =>
        timed(
          `load ${version} (plan → partition → build → publish → signal → wait for hosts → cutover)`,
          async () => {
            const r = await runLoad({
              dataset: DATASET,
              version,
              input,
              format: "jsonl",
              key: [DEMO_KEY_COLUMN],
              shards: o.shards,
              fleet: FLEET,
              minReplicas: o.replicas,
              deployment,
              progress: (line: string) => o.log(`  ${line}`),
            });
            // hosts switch reads on their next directive poll after the cutover
            await waitUntilServing(fleet, DATASET, version, 30_000);
            return r;
          },
          (r, s) => ({
            records: r.records,
            recordsPerSec: Math.round(r.records / s),
            mb: mb(size),
            mbPerSec: round(mb(size) / s),
            note: `${r.files} SST files, ${mb(r.bytes)} MB, status ${r.status}`,
          }),
        );

      const sample = (seed: number) => sampleIndexes(o.records, o.sample, seed);
      const verify = (phase: string, rev: number, version: string, seed: number) =>
        timed(
          phase,
          async () =>
            verifyThroughHosts({
              dataset: DATASET,
              shards: o.shards,
              hosts: fleet,
              indexes: sample(seed),
              rev,
              absent: Math.max(10, Math.round(o.sample / 20)),
              expectVersion: version,
            }),
          (v) => check(phase, v),
        );

      await load("v1", files.v1, bytes.v1);
      await verify("verify v1 through the hosts", 1, "v1", 11);
      await load("v2", files.v2, bytes.v2);
      await verify("verify the cutover to v2", 2, "v2", 22);
      await timed("roll back to v1", async () => {
        const r = await rollback(table, DATASET);
        await waitUntilServing(fleet, DATASET, "v1", 30_000);
        return r;
      });
      await verify("verify v1 after the rollback", 1, "v1", 33);

      if (o.events > 0) {
        const ev = await timed(
          `event ingestion (${o.events} events with duplicates, shuffling, malformed)`,
          () =>
            runEventsDemo({
              events: o.events,
              duplicates: 20,
              shuffle: true,
              malformed: 2,
              log: (l: string) => o.log(`  ${l}`),
            }),
          (r) => ({
            verified: r.entities,
            mismatches: Number(r.mismatches ?? 0),
            note: `accepted ${r.accepted}, applied ${r.applied}, duplicate ${r.duplicate}, stale ${r.stale}, parked ${r.parked}, mismatches ${r.mismatches}`,
          }),
        );
        mismatches += ev.mismatches;
        if (!ev.ok) examples.push(`events: ${JSON.stringify(ev).slice(0, 300)}`);
        return finish(ev as unknown as Record<string, unknown>);
      }
      return finish(undefined);
    } finally {
      await Promise.all(hosts.map((h) => h.stop().catch(() => h.kill())));
    }

    function finish(events: Record<string, unknown> | undefined): DemoResult {
      return {
        ok: mismatches === 0 && (events === undefined || events.ok === true),
        mismatches,
        recordsVerified,
        records: o.records,
        hosts: o.hosts,
        shards: o.shards,
        replicas: o.replicas,
        store,
        phases,
        events,
        examples: examples.slice(0, 10),
        seconds: round((performance.now() - t0) / 1000),
      };
    }
  });
}

/** wait until every host that serves the dataset reports `version` as active */
async function waitUntilServing(
  fleet: FleetMember[],
  dataset: string,
  version: string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const active = await Promise.all(
      fleet.map(async (h) => {
        const r = await fetch(`${h.endpoint}/v1/status`);
        const s = (await r.json()) as HostStatus;
        return s.datasets?.[dataset]?.active?.version;
      }),
    );
    if (active.every((v) => v === version)) return;
    if (Date.now() > deadline)
      throw new Error(`hosts did not switch to ${dataset} ${version} within ${timeoutMs} ms: ${active.join(",")}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function mb(bytes: number): number {
  return round(bytes / 1e6);
}
function round(x: number): number {
  return Math.round(x * 100) / 100;
}

export function formatDemoTable(r: DemoResult): string {
  const rows = [["phase", "seconds", "records/s", "MB/s", "verified", "mismatches"]];
  for (const p of r.phases) {
    rows.push([
      p.phase,
      String(p.seconds),
      p.recordsPerSec ? p.recordsPerSec.toLocaleString("en-US") : "",
      p.mbPerSec ? String(p.mbPerSec) : "",
      p.verified !== undefined ? String(p.verified) : "",
      p.mismatches !== undefined ? String(p.mismatches) : "",
    ]);
  }
  const w = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  const line = (row: string[]) => row.map((cell, c) => (c === 0 ? cell.padEnd(w[c]) : cell.padStart(w[c]))).join("  ");
  const out = [line(rows[0]), w.map((n) => "-".repeat(n)).join("  "), ...rows.slice(1).map(line)];
  out.push("");
  out.push(
    `${r.ok ? "OK" : "FAILED"}: ${r.recordsVerified} records verified, ${r.mismatches} mismatches; ${r.records.toLocaleString("en-US")} records, ${r.hosts} hosts (${r.store}), ${r.shards} shards x ${r.replicas} replicas; ${r.seconds}s in all`,
  );
  for (const e of r.examples) out.push(`  ${e}`);
  return out.join("\n");
}
