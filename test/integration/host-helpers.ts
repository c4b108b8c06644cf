/** Staging a dataset version by hand (SSTs built with core/sst, manifest.json on the local S3) and waiting helpers. */
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { s3 } from "../../core/aws/clients.js";
import { type Manifest, manifestKey, versionPrefix } from "../../core/manifest/schema.js";
import { shardOf } from "../../core/shuffle/shard.js";
import { memorySink, SstWriter } from "../../core/sst/index.js";

export interface Staged {
  manifest: Manifest;
  /** key → value */
  records: Map<string, string>;
  /** object bytes by manifest path */
  objects: Map<string, Uint8Array>;
}

export async function putObject(bucket: string, key: string, body: Uint8Array | string): Promise<void> {
  await s3().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

/** Build one SST per shard (two when `splitFiles` and the shard has enough keys), upload, write the manifest. */
export async function stageVersion(o: {
  bucket: string;
  dataset: string;
  version: string;
  shards: number;
  records: Map<string, string>;
  splitFiles?: boolean;
  /** change the manifest before it is written (tests of bad manifests) */
  mutate?: (m: Record<string, unknown>) => void;
}): Promise<Staged> {
  const byShard = new Map<number, Array<[Buffer, Buffer]>>();
  for (const [k, v] of o.records) {
    const kb = Buffer.from(k);
    const s = shardOf(kb, o.shards);
    byShard.set(s, [...(byShard.get(s) ?? []), [kb, Buffer.from(v)]]);
  }
  const files: Manifest["files"] = [];
  const objects = new Map<string, Uint8Array>();
  for (const [shard, recs] of [...byShard].sort((a, b) => a[0] - b[0])) {
    recs.sort((a, b) => Buffer.compare(a[0], b[0]));
    const parts =
      o.splitFiles && recs.length > 1 ? [recs.slice(0, recs.length >> 1), recs.slice(recs.length >> 1)] : [recs];
    for (let p = 0; p < parts.length; p++) {
      const sink = memorySink();
      const w = new SstWriter(sink, {});
      for (const [k, v] of parts[p]) await w.add(k, v);
      const info = await w.finish();
      const path = `shard=${shard}/s${String(shard).padStart(4, "0")}-b0000-${p}.sst`;
      const bytes = sink.bytes();
      objects.set(path, bytes);
      await putObject(o.bucket, `${versionPrefix(o.dataset, o.version)}${path}`, bytes);
      files.push({
        shard,
        path,
        smallestKey: Buffer.from(info.smallestKey).toString("hex"),
        largestKey: Buffer.from(info.largestKey).toString("hex"),
        entries: info.entries,
        bytes: info.bytes,
        sha256: info.sha256,
      });
    }
  }
  const manifest: Manifest = {
    formatVersion: 1,
    dataset: o.dataset,
    version: o.version,
    createdAt: new Date().toISOString(),
    shards: o.shards,
    shardHash: { name: "murmur3_32", seed: 0 },
    key: { columns: ["id"], kind: "utf8" },
    value: { kind: "raw", columns: ["v"] },
    sst: { compression: "none", bloomBitsPerKey: 10, formatVersion: 5 },
    counts: { recordsIn: o.records.size, duplicates: 0, skipped: 0, entries: o.records.size },
    files,
    totalBytes: files.reduce((s, f) => s + f.bytes, 0),
    source: { input: "test", format: "jsonl" },
  };
  const raw = JSON.parse(JSON.stringify(manifest)) as Record<string, unknown>;
  o.mutate?.(raw);
  await putObject(o.bucket, manifestKey(o.dataset, o.version), JSON.stringify(raw));
  return { manifest, records: o.records, objects };
}

export function makeRecords(n: number, tag: string, valueBytes = 0): Map<string, string> {
  const m = new Map<string, string>();
  const pad = valueBytes > 0 ? "x".repeat(valueBytes) : "";
  for (let i = 0; i < n; i++) m.set(`key-${String(i).padStart(6, "0")}`, `${tag}:${i}${pad}`);
  return m;
}

export async function waitFor<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs = 20_000,
  everyMs = 100,
): Promise<T> {
  const t0 = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() - t0 > timeoutMs) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** GET a key from one host; undefined on 404 */
export async function hostGet(
  endpoint: string,
  dataset: string,
  key: string,
): Promise<{ status: number; value?: string; version?: string }> {
  const res = await fetch(`${endpoint}/v1/datasets/${dataset}/keys/${encodeURIComponent(key)}`);
  const body = Buffer.from(await res.arrayBuffer()).toString("utf8");
  return {
    status: res.status,
    value: res.status === 200 ? body : undefined,
    version: res.headers.get("x-ferry-version") ?? undefined,
  };
}
