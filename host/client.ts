/**
 * Reading a dataset through its serving hosts (what `ferry get` does): find the active version, read its manifest
 * (cached), route the key by shardOf(key, manifest.shards) to a live host that owns the shard — hosts that report the
 * active version first — and GET it over HTTP. A host that is down, does not own the shard (421) or has no active
 * version yet (503) is skipped for the next one.
 */
import { getDatasetActive, getDirective, listHosts } from "../core/control/fleet.js";
import { ConfigError, NotFoundError, TransientError } from "../core/errors.js";
import { parseManifest } from "../core/manifest/manifest.js";
import { getText } from "../core/manifest/s3.js";
import { type Manifest, manifestKey } from "../core/manifest/schema.js";
import { shardOf } from "../core/shuffle/shard.js";

export interface RoutedGet {
  dataset: string;
  key: string;
  found: boolean;
  value?: Buffer;
  /** the version that answered (x-ferry-version) */
  version: string;
  activeVersion: string;
  shard: number;
  hostId?: string;
  endpoint?: string;
}

const manifests = new Map<string, Manifest>();

export async function readManifestCached(bucket: string, dataset: string, version: string): Promise<Manifest> {
  const k = `${bucket}/${dataset}/${version}`;
  let m = manifests.get(k);
  if (!m) {
    const key = manifestKey(dataset, version);
    const text = await getText(bucket, key);
    if (text === undefined)
      throw new NotFoundError(`manifest s3://${bucket}/${key} does not exist`, { dataset, version });
    m = parseManifest(text, `s3://${bucket}/${key}`);
    manifests.set(k, m);
  }
  return m;
}

export async function routeGet(o: {
  table: string;
  /** bucket of the manifests when the fleet directive names none */
  bucket?: string;
  dataset: string;
  key: string | Uint8Array;
  timeoutMs?: number;
}): Promise<RoutedGet> {
  const keyBytes = typeof o.key === "string" ? Buffer.from(o.key, "utf8") : Buffer.from(o.key);
  const keyText = typeof o.key === "string" ? o.key : keyBytes.toString("hex");
  const ds = await getDatasetActive(o.table, o.dataset);
  if (!ds?.activeVersion) throw new NotFoundError(`dataset ${o.dataset} has no active version`, { dataset: o.dataset });
  if (!ds.fleet) {
    throw new ConfigError(`dataset ${o.dataset} has no fleet: no hosts serve it (load it with --fleet)`, {
      dataset: o.dataset,
    });
  }
  const dir = await getDirective(o.table, ds.fleet, o.dataset);
  const bucket = dir?.bucket ?? o.bucket;
  if (!bucket) throw new ConfigError("no data bucket known: set FERRY_DATA_BUCKET", { field: "bucket" });
  const manifest = await readManifestCached(bucket, o.dataset, ds.activeVersion);
  const shard = shardOf(keyBytes, manifest.shards);
  const hosts = (await listHosts(o.table, ds.fleet))
    .filter((h) => h.live && h.shards.includes(shard))
    .sort((a, b) => {
      const aa = a.datasets?.[o.dataset]?.active === ds.activeVersion ? 0 : 1;
      const bb = b.datasets?.[o.dataset]?.active === ds.activeVersion ? 0 : 1;
      return aa - bb || Math.random() - 0.5;
    });
  const tried: string[] = [];
  for (const h of hosts) {
    const url = `${h.endpoint}/v1/datasets/${encodeURIComponent(o.dataset)}/keys/${keyBytes.toString("hex")}?encoding=hex`;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(o.timeoutMs ?? 5000) });
      const version = res.headers.get("x-ferry-version") ?? "";
      const base = {
        dataset: o.dataset,
        key: keyText,
        version,
        activeVersion: ds.activeVersion,
        shard,
        hostId: h.hostId,
        endpoint: h.endpoint,
      };
      if (res.status === 200) return { ...base, found: true, value: Buffer.from(await res.arrayBuffer()) };
      if (res.status === 404) {
        await res.arrayBuffer();
        return { ...base, found: false };
      }
      tried.push(`${h.hostId}: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
    } catch (err) {
      tried.push(`${h.hostId}: ${(err as Error).message}`);
    }
  }
  throw new TransientError(
    `no live host answered for ${o.dataset} shard ${shard} on fleet ${ds.fleet}` +
      (tried.length ? `: ${tried.join("; ")}` : " (no live host owns it)"),
    { dataset: o.dataset, shard, fleet: ds.fleet },
  );
}
