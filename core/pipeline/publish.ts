/**
 * Build (per bucket, wrapping core/pipeline/build.ts), Publish, Activate and MarkFailed.
 *
 * Build verifies its own files once they are uploaded: every SST is re-read from S3 (size and xxh3x2 — sha256 for
 * results of older builds — streamed over the landed bytes, compared with what Build hashed as it wrote them) and
 * its SST properties (entries, smallest/largest key) read back with SstReader over ranged GETs. The result stored
 * at results/build/<bucket>.json records that
 * (`verified`). So the full re-read is spread over the Build Map, not done by one Lambda at the end.
 *
 * Publish gathers every bucket's build result and checks it — every result verified, entries = records in −
 * duplicates, records in = the partition totals, files of a shard do not overlap and stay inside their bucket's key
 * range, paths unique — plus one HeadObject per file (it exists, with the size verified), then writes the immutable
 * manifest (write-once) and marks the version STAGED. A shard without keys is allowed and recorded (`emptyShards`).
 */
import { activateVersion, retireOldVersions } from "../control/datasets.js";
import { failVersion, getVersion, transitionVersion } from "../control/versions.js";
import { CorruptionError, ValidationError } from "../errors.js";
import { writeManifestOnce, buildManifest } from "../manifest/manifest.js";
import {
  checksumObject,
  getBytes,
  getJsonOrUndefined,
  getJsonl,
  hashObject,
  headObject,
  mapLimit,
  putJson,
} from "../manifest/s3.js";
import { type Manifest, manifestKey, versionPrefix } from "../manifest/schema.js";
import { SstReader } from "../sst/index.js";
import type { RandomAccessSource } from "../sst/types.js";
import { buildBucket } from "./build.js";
import {
  type PlanPointer,
  firstItemError,
  gatherPartitionResults,
  loadPlan,
  recordItemError,
  stagingKeys,
  sumPartition,
} from "./plan.js";
import type { Bucket, BuildResult } from "./types.js";

// ---------------------------------------------------------------------------------------------------------------
// Build (per bucket)

export interface BuildTaskArgs {
  dataBucket: string;
  planKey: string;
  runsKey: string;
  bucket: Bucket;
}

export interface BuildTaskResult {
  bucketId: string;
  files: number;
  entries: number;
  bytes: number;
  reused: boolean;
}

/** PlanBuild's list of run objects (runs.json): keys, and their sizes when recorded */
interface RunList {
  runKeys: string[];
  runBytes?: number[];
}

const runsCache = new Map<string, Promise<RunList>>();

function loadRunKeys(dataBucket: string, runsKey: string): Promise<RunList> {
  const id = `${dataBucket}/${runsKey}`;
  let p = runsCache.get(id);
  if (!p) {
    p = getJsonOrUndefined<RunList>(dataBucket, runsKey).then((r) => {
      if (!r) {
        runsCache.delete(id);
        throw new ValidationError(`s3://${dataBucket}/${runsKey} is missing: PlanBuild did not finish`);
      }
      return r;
    });
    runsCache.set(id, p);
    if (runsCache.size > 16) runsCache.delete(runsCache.keys().next().value as string);
  }
  return p;
}

function summarize(r: BuildResult, reused: boolean): BuildTaskResult {
  return {
    bucketId: r.bucketId,
    files: r.files.length,
    entries: r.files.reduce((s, f) => s + f.entries, 0),
    bytes: r.files.reduce((s, f) => s + f.bytes, 0),
    reused,
  };
}

/** What Build records about its own verification of the files it wrote (see verifyBuiltFile): by sha256 */
export const VERIFY_METHOD = "reread-sha256+sst-properties";
/** ... or, when every file has one, by xxh3x2 */
export const VERIFY_METHOD_XXH3X2 = "reread-xxh3x2+sst-properties";

function verifiedRecord(files: BuildResult["files"]): NonNullable<BuildResult["verified"]> {
  const method = files.every((f) => f.xxh3x2 !== undefined) ? VERIFY_METHOD_XXH3X2 : VERIFY_METHOD;
  return { method, files: files.length, bytes: files.reduce((s, f) => s + f.bytes, 0) };
}

export async function buildTask(a: BuildTaskArgs): Promise<BuildTaskResult> {
  const plan = await loadPlan(a.dataBucket, a.planKey);
  const { dataset, version } = plan.request;
  const k = stagingKeys(dataset, version);
  const resultKey = k.buildResult(a.bucket.id);
  const prefix = versionPrefix(dataset, version);
  const prior = await getJsonOrUndefined<BuildResult>(a.dataBucket, resultKey);
  if (prior) {
    // reuse only if every file it names is still there with its size (a stored result was verified when written)
    const present = await mapLimit(
      prior.files,
      8,
      async (f) => (await headObject(a.dataBucket, prefix + f.path))?.size === f.bytes,
    );
    if (present.every(Boolean)) {
      if (prior.verified) return summarize(prior, true);
      // written before Build verified its files: verify now, rebuild if that fails
      const ok = await mapLimit(prior.files, VERIFY_CONCURRENCY, (f) =>
        verifyBuiltFile(a.dataBucket, prefix, f).then(
          () => true,
          (e) => {
            if (e instanceof CorruptionError) return false;
            throw e;
          },
        ),
      );
      if (ok.every(Boolean)) {
        const r = { ...prior, verified: verifiedRecord(prior.files) };
        await putJson(a.dataBucket, resultKey, r);
        return summarize(r, true);
      }
    }
  }
  const { runKeys, runBytes } = await loadRunKeys(a.dataBucket, a.runsKey);
  const r = await recordItemError(a.dataBucket, k.itemError(a.bucket.id), `bucket ${a.bucket.id}`, async () => {
    const built = await buildBucket({ plan, bucket: a.bucket, runKeys, runBytes, dataBucket: a.dataBucket });
    // what landed is what the writer produced: a CorruptionError here fails the item (retries rebuild it)
    await mapLimit(built.files, VERIFY_CONCURRENCY, (f) => verifyBuiltFile(a.dataBucket, prefix, f));
    return { ...built, verified: verifiedRecord(built.files) };
  });
  await putJson(a.dataBucket, resultKey, r);
  return summarize(r, false);
}

/** files of one bucket verified at once (each is one streamed GET plus a few small ranged GETs) */
const VERIFY_CONCURRENCY = 4;

// ---------------------------------------------------------------------------------------------------------------
// Publish

const hexCmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** An S3 object as a RandomAccessSource (ranged GETs) for SstReader. */
export function s3Source(bucket: string, key: string, size: number): RandomAccessSource {
  return {
    size,
    name: `s3://${bucket}/${key}`,
    read: (offset, length) => getBytes(bucket, key, offset, offset + length),
  };
}

const toHex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");

export interface PublishCheckInput {
  buckets: Bucket[];
  results: BuildResult[];
  shards: number;
  recordsRouted: number;
}

/**
 * The pure checks of Publish (no I/O): every bucket has a result, counts add up, files in a shard do not overlap
 * and each lies inside its bucket. Returns the shards without keys. Throws ValidationError naming what is wrong.
 */
export function checkBuildResults(c: PublishCheckInput): {
  emptyShards: number[];
  entries: number;
  duplicates: number;
} {
  const byId = new Map(c.results.map((r) => [r.bucketId, r]));
  for (const b of c.buckets) {
    if (!byId.has(b.id)) throw new ValidationError(`build result for bucket ${b.id} (shard ${b.shard}) is missing`);
  }
  let recordsIn = 0;
  let duplicates = 0;
  let entries = 0;
  for (const b of c.buckets) {
    const r = byId.get(b.id) as BuildResult;
    recordsIn += r.recordsIn;
    duplicates += r.duplicates;
    const e = r.files.reduce((s, f) => s + f.entries, 0);
    entries += e;
    const v = r.verified;
    const bytes = r.files.reduce((s, f) => s + f.bytes, 0);
    if (!v || v.files !== r.files.length || v.bytes !== bytes) {
      throw new ValidationError(
        v
          ? `bucket ${b.id}: Build verified ${v.files} files / ${v.bytes} bytes but its result lists ${r.files.length} files / ${bytes} bytes`
          : `bucket ${b.id}: the build result was not verified (Build re-reads every file it writes before recording its result)`,
      );
    }
    if (e !== r.recordsIn - r.duplicates) {
      throw new ValidationError(
        `bucket ${b.id}: files hold ${e} entries but ${r.recordsIn} records in − ${r.duplicates} duplicates = ${r.recordsIn - r.duplicates}`,
      );
    }
    for (const f of r.files) {
      if (f.shard !== b.shard)
        throw new ValidationError(`bucket ${b.id}: file ${f.path} is for shard ${f.shard}, not ${b.shard}`);
      if (hexCmp(f.smallestKey, f.largestKey) > 0) {
        throw new ValidationError(`file ${f.path}: smallest key ${f.smallestKey} > largest key ${f.largestKey}`);
      }
      if (b.lowerKey && hexCmp(f.smallestKey, b.lowerKey) < 0) {
        throw new ValidationError(
          `file ${f.path}: key ${f.smallestKey} is below its bucket's lower bound ${b.lowerKey}`,
        );
      }
      if (b.upperKey && hexCmp(f.largestKey, b.upperKey) >= 0) {
        throw new ValidationError(
          `file ${f.path}: key ${f.largestKey} is not below its bucket's upper bound ${b.upperKey}`,
        );
      }
    }
  }
  if (recordsIn !== c.recordsRouted) {
    throw new ValidationError(
      `builds read ${recordsIn} records but partitions routed ${c.recordsRouted}: a run segment was lost or read twice`,
    );
  }
  const files = c.results.flatMap((r) => r.files);
  const paths = new Set<string>();
  for (const f of files) {
    if (paths.has(f.path)) throw new ValidationError(`file ${f.path} is listed twice`);
    paths.add(f.path);
  }
  const emptyShards: number[] = [];
  for (let s = 0; s < c.shards; s++) {
    const fs = files.filter((f) => f.shard === s).sort((a, b) => hexCmp(a.smallestKey, b.smallestKey));
    if (fs.length === 0) emptyShards.push(s);
    for (let i = 1; i < fs.length; i++) {
      if (hexCmp(fs[i].smallestKey, fs[i - 1].largestKey) <= 0) {
        throw new ValidationError(
          `shard ${s}: files ${fs[i - 1].path} and ${fs[i].path} overlap (${fs[i - 1].largestKey} >= ${fs[i].smallestKey})`,
        );
      }
    }
  }
  return { emptyShards, entries, duplicates };
}

/**
 * Build's check of one file it wrote: re-read the object from S3 with its size and a checksum streamed over the
 * landed bytes (compared with what the build result says), then its SST properties (entries, smallest/largest key)
 * read back with SstReader over ranged GETs. Throws CorruptionError naming the object.
 *
 * The checksum is the file's xxh3x2 when the build result has one (Build hashes each byte as it goes to the upload,
 * core/aws/s3.ts checksummedSink), else sha256 (results written by older builds). Comparing xxh3x2 instead of
 * re-doing sha256 detects a stored object that differs from the written bytes as well: the writer's sha256 (the
 * manifest's, which hosts check) is of those same written bytes, so a landed object whose size and 128-bit xxh3x2
 * match them is, short of a 2^-128 accident, those bytes — and thus has that sha256. What the check guards against
 * is accidental damage (a truncated, stale or garbled object, the wrong key), not a forger who writes to the data
 * bucket: such a writer could replace the object after this check anyway, which is what the hosts' sha256 is for.
 * xxh3x2 costs ~0.3 ns/B against sha256's 1-2 ns/B here.
 */
export async function verifyBuiltFile(
  dataBucket: string,
  prefix: string,
  f: BuildResult["files"][number],
): Promise<void> {
  const key = prefix + f.path;
  const where = `s3://${dataBucket}/${key}`;
  const byXxh = f.xxh3x2 !== undefined;
  const name = byXxh ? "xxh3x2" : "sha256";
  const expected = f.xxh3x2 ?? f.sha256;
  const landed = byXxh ? await checksumObject(dataBucket, key) : await hashObject(dataBucket, key);
  const size = landed.size;
  const actual = "xxh3x2" in landed ? landed.xxh3x2 : landed.sha256;
  if (size !== f.bytes)
    throw new CorruptionError(`${where}: ${size} bytes, build result says ${f.bytes}`, { file: where });
  if (actual !== expected) {
    throw new CorruptionError(`${where}: ${name} ${actual}, build result says ${expected}`, {
      file: where,
      expected,
      actual,
    });
  }
  const reader = await SstReader.open(s3Source(dataBucket, key, size));
  try {
    if (reader.entries !== f.entries) {
      throw new CorruptionError(`${where}: SST properties say ${reader.entries} entries, build result ${f.entries}`, {
        file: where,
      });
    }
    if (toHex(reader.smallestKey) !== f.smallestKey || toHex(reader.largestKey) !== f.largestKey) {
      throw new CorruptionError(`${where}: SST key range differs from the build result`, { file: where });
    }
  } finally {
    await reader.close();
  }
}

/** Publish's cheap check of one file Build verified: it exists with that size (one HeadObject, no re-read). */
export async function checkPublishedFile(
  dataBucket: string,
  prefix: string,
  f: BuildResult["files"][number],
): Promise<void> {
  const key = prefix + f.path;
  const where = `s3://${dataBucket}/${key}`;
  const head = await headObject(dataBucket, key);
  if (!head) throw new CorruptionError(`${where}: missing (its build result lists it)`, { file: where });
  if (head.size !== f.bytes) {
    throw new CorruptionError(`${where}: ${head.size} bytes, build result says ${f.bytes}`, { file: where });
  }
}

export interface PublishOutput extends PlanPointer {
  manifestKey: string;
  records: number;
  duplicates: number;
  skipped: number;
  entries: number;
  files: number;
  bytes: number;
  emptyShards: number[];
}

export async function publish(
  p: PlanPointer,
  table: string,
  opts: { verifyConcurrency?: number } = {},
): Promise<PublishOutput> {
  const plan = await loadPlan(p.dataBucket, p.planKey);
  const { dataset, version } = plan.request;
  const k = stagingKeys(dataset, version);
  const buckets = await getJsonl<Bucket>(p.dataBucket, p.bucketsKey);
  const results = await mapLimit(buckets, 16, async (b) => {
    const r = await getJsonOrUndefined<BuildResult>(p.dataBucket, k.buildResult(b.id));
    if (!r) throw new ValidationError(`build result for bucket ${b.id} (shard ${b.shard}) is missing`);
    return r;
  });
  const partition = sumPartition((await gatherPartitionResults(p)).results);
  const { emptyShards, entries, duplicates } = checkBuildResults({
    buckets,
    results,
    shards: plan.request.shards,
    recordsRouted: partition.records,
  });
  // A Publish retried after it succeeded (its answer lost) finds the version STAGED already: re-checking and
  // re-writing the same manifest change nothing, but moving STAGED back to BUILT would be a step backwards.
  const current = await getVersion(table, dataset, version);
  if (current?.status !== "STAGED") {
    await transitionVersion(table, dataset, version, "BUILT", { counts: { duplicates, entries } });
  }
  const prefix = versionPrefix(dataset, version);
  const files = results.flatMap((r) => r.files);
  await mapLimit(files, opts.verifyConcurrency ?? 32, (f) => checkPublishedFile(p.dataBucket, prefix, f));
  const recordsIn = partition.records + partition.skipped;
  const manifest = buildManifest(plan, results, { recordsIn, duplicates, skipped: partition.skipped });
  if (manifest.counts.entries !== recordsIn - duplicates - partition.skipped) {
    throw new ValidationError(
      `entries ${manifest.counts.entries} ≠ records ${recordsIn} − duplicates ${duplicates} − skipped ${partition.skipped}`,
    );
  }
  const { manifest: stored } = await writeManifestOnce(p.dataBucket, manifest);
  await transitionVersion(table, dataset, version, "STAGED", {
    counts: {
      records: recordsIn,
      skipped: partition.skipped,
      duplicates,
      entries,
      files: files.length,
      emptyShards: emptyShards.length,
    },
    bytes: stored.totalBytes,
    manifestKey: manifestKey(dataset, version),
  });
  return {
    ...p,
    manifestKey: manifestKey(dataset, version),
    records: recordsIn,
    duplicates,
    skipped: partition.skipped,
    entries,
    files: files.length,
    bytes: stored.totalBytes,
    emptyShards,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Activate (no fleet) and MarkFailed

export async function activate(
  p: Pick<PlanPointer, "dataset" | "version" | "keepVersions" | "execution">,
  table: string,
): Promise<{
  dataset: string;
  version: string;
  activeVersion: string;
  previousVersion: string | null;
  retired: string[];
}> {
  const r = await activateVersion(table, p.dataset, p.version, p.execution ? `execution:${p.execution}` : undefined);
  const retired = await retireOldVersions(table, p.dataset, Math.max(2, p.keepVersions ?? 2));
  return {
    dataset: p.dataset,
    version: p.version,
    activeVersion: r.activeVersion,
    previousVersion: r.previousVersion ?? null,
    retired,
  };
}

/** Step Functions' Catch output: {Error, Cause}; for Lambda errors Cause is JSON {errorType, errorMessage}. */
export function describeFailure(err: { Error?: string; Cause?: string } | undefined): { error: string; cause: string } {
  const error = err?.Error ?? "Error";
  let cause = err?.Cause ?? "";
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: string; errorType?: string };
    if (parsed && typeof parsed.errorMessage === "string") cause = parsed.errorMessage;
  } catch {
    // plain text cause
  }
  return { error, cause: cause.slice(0, 4000) };
}

/**
 * Which version failed: the failing state's own dataset/version (every task after Plan passes them), else the
 * execution input's (`request` or flat), with the version Plan would have defaulted to left unknown.
 */
export function failureTarget(
  state: Record<string, unknown>,
  executionInput: Record<string, unknown>,
): { dataset?: string; version?: string; fleet?: string; error?: { Error?: string; Cause?: string } } {
  const req = (executionInput.request ?? executionInput) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === "string" && v.length > 0 ? v : undefined);
  return {
    dataset: str(state.dataset) ?? str(req.dataset),
    version: str(state.version) ?? str(req.version),
    fleet: str(state.fleet) ?? str(req.fleet),
    error: state.error as { Error?: string; Cause?: string } | undefined,
  };
}

export async function markFailed(
  input: {
    dataset?: string;
    version?: string;
    request?: { dataset?: string; version?: string };
    error?: { Error?: string; Cause?: string };
  },
  table: string,
  dataBucket?: string,
): Promise<{ dataset?: string; version?: string; status: string; error: string; cause: string }> {
  let failure = describeFailure(input.error);
  const dataset = input.dataset ?? input.request?.dataset;
  const version = input.version ?? input.request?.version;
  // a Distributed Map reports only that items failed: name the first item's own error instead
  if (dataBucket && dataset && version && failure.error.startsWith("States.")) {
    const item = await firstItemError(dataBucket, dataset, version);
    if (item)
      failure = { error: item.error, cause: `${item.message} (${item.item}; ${failure.error}: ${failure.cause})` };
  }
  if (!dataset || !version) return { dataset, version, status: "UNREGISTERED", ...failure };
  // a conflict means another execution owns this version (or it is published): leave it alone
  if (failure.error === "ConflictError") return { dataset, version, status: "UNCHANGED", ...failure };
  const v = await getVersion(table, dataset, version).catch(() => undefined);
  if (!v) return { dataset, version, status: "UNREGISTERED", ...failure };
  const after = await failVersion(table, dataset, version, failure);
  return { dataset, version, status: after?.status ?? "UNREGISTERED", ...failure };
}

export type { Manifest };
