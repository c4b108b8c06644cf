/**
 * Verify what the serving hosts answer against the source: for a sample of record indexes, ask a host that owns
 * each key's shard (through the HTTP batch API, as a client would) and compare the value with the record the
 * generator makes for that index. Absent keys must be answered "not found".
 */
import { shardOf } from "../../core/shuffle/shard.js";
import { HOST } from "../../core/limits.js";
import { demoExpectedValue, demoKey } from "./dataset.js";

export interface FleetMember {
  endpoint: string;
  shards: number[];
}

export interface VerifyResult {
  checked: number;
  mismatches: number;
  absentChecked: number;
  /** the versions that answered, with counts */
  versions: Record<string, number>;
  examples: string[];
  seconds: number;
}

interface BatchAnswer {
  version: string;
  results: Array<{ key: string; found: boolean; value?: string; error?: string }>;
}

export async function verifyThroughHosts(o: {
  dataset: string;
  shards: number;
  hosts: FleetMember[];
  indexes: number[];
  rev: number;
  absent?: number;
  expectVersion?: string;
}): Promise<VerifyResult> {
  const t0 = performance.now();
  const enc = new TextEncoder();
  const byHost = new Map<string, Array<{ key: string; index: number | undefined }>>();
  const route = (key: string, index: number | undefined, n: number) => {
    const shard = shardOf(enc.encode(key), o.shards);
    const owners = o.hosts.filter((h) => h.shards.includes(shard));
    if (!owners.length) throw new Error(`no demo host owns shard ${shard}`);
    const h = owners[n % owners.length];
    const list = byHost.get(h.endpoint) ?? [];
    byHost.set(h.endpoint, list);
    list.push({ key, index });
  };
  for (const [n, i] of o.indexes.entries()) route(demoKey(i), i, n);
  const absent = o.absent ?? 0;
  for (let n = 0; n < absent; n++) route(`absent-${n}`, undefined, n);

  const res: VerifyResult = { checked: 0, mismatches: 0, absentChecked: 0, versions: {}, examples: [], seconds: 0 };
  const miss = (msg: string) => {
    res.mismatches++;
    if (res.examples.length < 5) res.examples.push(msg);
  };
  for (const [endpoint, items] of byHost) {
    for (let off = 0; off < items.length; off += HOST.batchGetMaxKeys) {
      const part = items.slice(off, off + HOST.batchGetMaxKeys);
      const r = await fetch(`${endpoint}/v1/datasets/${encodeURIComponent(o.dataset)}/keys:batchGet`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ keys: part.map((p) => p.key) }),
      });
      if (!r.ok) {
        const text = await r.text();
        for (const p of part) miss(`${p.key}: host ${endpoint} answered HTTP ${r.status} ${text}`);
        continue;
      }
      const body = (await r.json()) as BatchAnswer;
      res.versions[body.version] = (res.versions[body.version] ?? 0) + part.length;
      if (o.expectVersion && body.version !== o.expectVersion) {
        miss(`host ${endpoint} served version ${body.version}, expected ${o.expectVersion}`);
      }
      part.forEach((p, k) => {
        const got = body.results[k];
        if (p.index === undefined) {
          res.absentChecked++;
          if (got?.found) miss(`${p.key}: should be absent, host ${endpoint} found ${got.value}`);
          return;
        }
        res.checked++;
        if (!got?.found || got.value === undefined) {
          miss(`${p.key}: not found on ${endpoint}${got?.error ? ` (${got.error})` : ""}`);
          return;
        }
        const want = JSON.stringify(demoExpectedValue(p.index, o.rev));
        const have = canonical(got.value);
        if (have !== want) miss(`${p.key}: expected ${want}, got ${got.value}`);
      });
    }
  }
  res.seconds = (performance.now() - t0) / 1000;
  return res;
}

/** parse a served JSON value and re-serialize its fields in the generator's column order */
function canonical(text: string): string {
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    return JSON.stringify({ title: v.title, minutes: v.minutes, completed: v.completed, rev: v.rev });
  } catch {
    return text;
  }
}
