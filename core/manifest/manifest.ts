/**
 * Building, writing (once) and reading manifest.json. The manifest is immutable: writing it again with the same
 * content (timestamps aside) is fine — Publish is retried — and different content is a ConflictError.
 */
import { ConflictError, CorruptionError, NotFoundError } from "../errors.js";
import type { BuildResult, Plan } from "../pipeline/types.js";
import { type Manifest, type SstFile, manifestKey, manifestSchema } from "./schema.js";
import { getText, putText } from "./s3.js";

export interface ManifestCounts {
  recordsIn: number;
  duplicates: number;
  skipped: number;
}

/** Sort files by shard, then smallest key; the order every reader of the manifest sees. */
export function sortFiles(files: SstFile[]): SstFile[] {
  return [...files].sort(
    (a, b) =>
      a.shard - b.shard ||
      (a.smallestKey < b.smallestKey ? -1 : a.smallestKey > b.smallestKey ? 1 : 0) ||
      (a.path < b.path ? -1 : a.path > b.path ? 1 : 0),
  );
}

export function buildManifest(
  plan: Plan,
  results: BuildResult[],
  counts: ManifestCounts,
  createdAt = new Date().toISOString(),
): Manifest {
  const req = plan.request;
  const files = sortFiles(results.flatMap((r) => r.files));
  const entries = files.reduce((s, f) => s + f.entries, 0);
  const manifest: Manifest = {
    formatVersion: 1,
    dataset: req.dataset,
    version: req.version,
    createdAt,
    shards: req.shards,
    shardHash: { name: "murmur3_32", seed: 0 },
    key: { columns: req.key, kind: req.key.length === 1 ? "utf8" : "tuple" },
    value: req.valueRaw
      ? { kind: "raw", columns: [req.valueRaw] }
      : { kind: "json", ...(req.value ? { columns: req.value } : {}) },
    sst: { compression: req.sstCompression, bloomBitsPerKey: req.bloomBitsPerKey, formatVersion: 5 },
    counts: { recordsIn: counts.recordsIn, duplicates: counts.duplicates, skipped: counts.skipped, entries },
    files,
    totalBytes: files.reduce((s, f) => s + f.bytes, 0),
    source: { input: req.input, format: req.format, ...(req.compression ? { compression: req.compression } : {}) },
  };
  return manifestSchema.parse(manifest);
}

/** The manifest without its timestamps: what must be equal for two writes to be "the same". */
export function manifestContent(m: Manifest): Omit<Manifest, "createdAt"> {
  const { createdAt: _c, ...rest } = m;
  return rest;
}

function stableStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(",")}]`;
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableStringify(o[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}

export function sameManifestContent(a: Manifest, b: Manifest): boolean {
  return stableStringify(manifestContent(a)) === stableStringify(manifestContent(b));
}

export function parseManifest(text: string, where: string): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CorruptionError(`${where} is not valid JSON: ${(err as Error).message}`, { file: where });
  }
  const r = manifestSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new CorruptionError(`${where}: field '${i.path.join(".")}' ${i.message}`, { file: where });
  }
  return r.data;
}

export async function readManifest(bucket: string, dataset: string, version: string): Promise<Manifest> {
  const key = manifestKey(dataset, version);
  const text = await getText(bucket, key);
  if (text === undefined) {
    throw new NotFoundError(`no manifest for ${dataset}/${version} at s3://${bucket}/${key}`, { dataset, version });
  }
  return parseManifest(text, `s3://${bucket}/${key}`);
}

/**
 * Write the manifest once. Existing with the same content → returns the stored one (its createdAt wins);
 * existing with different content → ConflictError. Uses If-None-Match on S3 so two racing writers cannot both win.
 */
export async function writeManifestOnce(
  bucket: string,
  manifest: Manifest,
): Promise<{ manifest: Manifest; written: boolean }> {
  const key = manifestKey(manifest.dataset, manifest.version);
  const where = `s3://${bucket}/${key}`;
  const check = async (): Promise<Manifest | undefined> => {
    const text = await getText(bucket, key);
    if (text === undefined) return undefined;
    const existing = parseManifest(text, where);
    if (!sameManifestContent(existing, manifest)) {
      throw new ConflictError(
        `${where} already exists with different content: a published version is immutable (publish a new version)`,
        { dataset: manifest.dataset, version: manifest.version },
      );
    }
    return existing;
  };
  const before = await check();
  if (before) return { manifest: before, written: false };
  try {
    await putText(bucket, key, `${JSON.stringify(manifest, null, 2)}\n`, "application/json", { IfNoneMatch: "*" });
  } catch (err) {
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 412 || status === 409 || (err as Error).name === "PreconditionFailed") {
      const after = await check();
      if (after) return { manifest: after, written: false };
    }
    throw err;
  }
  return { manifest, written: true };
}
