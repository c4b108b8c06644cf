/**
 * Plan and PlanBuild: the control side of the Partition phase.
 *
 * Plan validates the request, lists the input, splits it into chunks (core/records planChunks), samples keys and
 * chooses bucket split points (core/pipeline/sample.ts), writes staging/<d>/<v>/{plan.json, chunks.jsonl,
 * buckets.jsonl} and registers the version PLANNED with a conditional write. The same version planned twice is the
 * same plan: the second Plan reuses the stored plan (finished work is kept); a version already published makes the
 * whole execution a no-op (`alreadyDone`).
 *
 * Partition (per chunk) runs core/pipeline/partition.ts and records its result at results/partition/<chunk>.json;
 * a chunk whose result and run object already exist is not partitioned again (an execution that died mid-way is
 * resumed, not redone).
 *
 * PlanBuild gathers the partition results, enforces the bad-records limit, writes runs.json (the run objects every
 * Build reads) and marks the version PARTITIONED.
 */
import { createHash } from "node:crypto";
import { PUBLISHED, getVersion, registerVersion, transitionVersion } from "../control/versions.js";
import { upsertDatasetConfig } from "../control/datasets.js";
import { ConfigError, InputError, LimitError, NotFoundError, TransientError, ValidationError } from "../errors.js";
import { PIPELINE } from "../limits.js";
import { stagingPrefix } from "../manifest/schema.js";
import {
  getJson,
  getJsonOrUndefined,
  getJsonl,
  headObject,
  listObjects,
  mapLimit,
  putJson,
  putJsonl,
} from "../manifest/s3.js";
import { planChunks } from "../records/readers.js";
import { s3Opener } from "../records/source.js";
import { parseLoadRequest, parseS3Uri } from "./config.js";
import { partitionChunk } from "./partition.js";
import { chooseBucketsForPlan } from "./sample.js";
import type { Bucket, Chunk, LoadRequest, PartitionResult, Plan } from "./types.js";

/** What every task passes on: small, S3 pointers only (Step Functions payloads stay far below 256 KiB). */
export interface PlanPointer {
  dataset: string;
  version: string;
  dataBucket: string;
  planKey: string;
  chunksKey: string;
  bucketsKey: string;
  runsKey: string;
  resultsPrefix: string;
  chunks: number;
  buckets: number;
  shards: number;
  inputBytes: number;
  fleet: string | null;
  hasFleet: boolean;
  minReplicas: number;
  keepVersions: number;
  /** the version is already published: the execution skips to the end */
  alreadyDone: boolean;
  /** how Plan found the version: created | same-plan | replanned | already-done */
  outcome: string;
  execution?: string;
}

export function stagingKeys(dataset: string, version: string) {
  const p = stagingPrefix(dataset, version);
  return {
    prefix: p,
    plan: `${p}plan.json`,
    chunks: `${p}chunks.jsonl`,
    buckets: `${p}buckets.jsonl`,
    runs: `${p}runs.json`,
    results: `${p}results/`,
    partitionResult: (chunkId: string) => `${p}results/partition/${chunkId}.json`,
    buildResult: (bucketId: string) => `${p}results/build/${bucketId}.json`,
    runObject: (chunkId: string) => `${p}runs/${chunkId}.run`,
    /** a Map item's permanent error (MarkFailed reports the first: a Map failure itself names no item) */
    itemError: (itemId: string) => `${p}errors/${itemId}.json`,
    errors: `${p}errors/`,
  };
}

/** Names that are never input data: markers (_SUCCESS), hidden files, folder placeholders. */
export function isInputDataKey(key: string): boolean {
  const name = key.slice(key.lastIndexOf("/") + 1);
  return name.length > 0 && !name.startsWith("_") && !name.startsWith(".") && !key.endsWith("/");
}

/**
 * The objects an input URI names: one object (s3://b/file.jsonl) or every data object under a prefix. An input with
 * no objects is an InputError naming it.
 */
export async function listInput(
  input: string,
): Promise<Array<{ bucket: string; key: string; size: number; etag?: string }>> {
  const { bucket, key } = parseS3Uri(input);
  if (key && !key.endsWith("/")) {
    const head = await headObject(bucket, key);
    if (head) return [{ bucket, key, size: head.size, etag: head.etag }];
  }
  const prefix = key === "" || key.endsWith("/") ? key : `${key}/`;
  const objects = (await listObjects(bucket, prefix)).filter((o) => isInputDataKey(o.key));
  if (objects.length === 0) {
    throw new InputError(`input ${input}: no objects found (an empty prefix or a missing object); nothing to load`, {
      source: input,
      field: "input",
    });
  }
  return objects.map((o) => ({ bucket, key: o.key, size: o.size, etag: o.etag }));
}

/** sha256 of what makes a plan: the request and the exact input listing. */
export function planHash(request: LoadRequest, objects: Array<{ key: string; size: number; etag?: string }>): string {
  const h = createHash("sha256");
  h.update(JSON.stringify({ ...request, input: request.input }));
  for (const o of objects) h.update(`\n${o.key}\t${o.size}\t${o.etag ?? ""}`);
  return h.digest("hex");
}

export interface PlanArgs {
  /** the raw request (validated here) — the execution input's `request`, or the execution input itself */
  request: unknown;
  dataBucket: string;
  table: string;
  execution?: string;
}

function pointerFor(plan: Plan, extra: Partial<PlanPointer>): PlanPointer {
  const req = plan.request;
  const k = stagingKeys(req.dataset, req.version);
  return {
    dataset: req.dataset,
    version: req.version,
    dataBucket: plan.dataBucket,
    planKey: k.plan,
    chunksKey: k.chunks,
    bucketsKey: k.buckets,
    runsKey: k.runs,
    resultsPrefix: k.results,
    chunks: plan.chunks,
    buckets: plan.buckets.length,
    shards: req.shards,
    inputBytes: plan.inputBytes,
    fleet: req.fleet ?? null,
    hasFleet: Boolean(req.fleet),
    minReplicas: req.minReplicas,
    keepVersions: req.keepVersions,
    alreadyDone: false,
    outcome: "created",
    ...extra,
  };
}

/**
 * How Plan reads sampled chunks: ranged GETs of one sample window each. The default opener reads 8 MiB windows
 * with one prefetched (Partition's streaming size), so a 256 KiB sample window cost 16 MiB of GETs — 1 GB of input
 * cost ~512 MiB of sampling reads; with windows sized to the sample it is ~2× what is parsed.
 */
export function sampleOpener() {
  // sampleChunk spreads sampleBytesPerChunk over 4 windows (its default)
  return s3Opener(Math.max(64 * 1024, Math.ceil(PIPELINE.sampleBytesPerChunk / 4)));
}

/**
 * Chunk size and bucket target for an input of `inputBytes`. Build reads one segment per (chunk, bucket) pair, so with
 * fixed sizes the reads grow with the square of the input while each shrinks. Both sizes start at
 * PIPELINE.chunkBytes / bucketTargetBytes and grow together (to at most PIPELINE.maxScaledBytes) once
 * input / (chunks × buckets) would fall under PIPELINE.minSegmentBytes: size = √(input × minSegmentBytes), rounded
 * up to a MiB. 1 GB keeps 128 MiB / 256 MiB; 16 GiB is the crossover for chunks; 50 TB gives ~6.6 GiB each.
 */
export function scaledSizes(inputBytes: number): { chunkBytes: number; bucketTargetBytes: number } {
  const MiB = 1024 * 1024;
  const balanced = Math.ceil(Math.sqrt(Math.max(0, inputBytes) * PIPELINE.minSegmentBytes) / MiB) * MiB;
  const grow = (base: number) => Math.max(base, Math.min(PIPELINE.maxScaledBytes, balanced));
  return { chunkBytes: grow(PIPELINE.chunkBytes), bucketTargetBytes: grow(PIPELINE.bucketTargetBytes) };
}

/** Plan one version (see the file comment). */
export async function planLoad(args: PlanArgs): Promise<PlanPointer> {
  const request = parseLoadRequest(args.request);
  const { dataset, version } = request;
  const k = stagingKeys(dataset, version);
  const done = await publishedPointer(args.table, args.dataBucket, dataset, version);
  if (done) return { ...done, execution: args.execution };
  const objects = await listInput(request.input);
  const hash = planHash(request, objects);

  // the same plan stored before (a re-run, or a retry of this task): reuse it, never re-sample
  const stored = await getJsonOrUndefined<Plan & { planHash?: string }>(args.dataBucket, k.plan);
  let plan: Plan;
  if (stored && stored.planHash === hash) {
    plan = stored;
  } else {
    const inputBytes = objects.reduce((s, o) => s + o.size, 0);
    const sizes = scaledSizes(inputBytes);
    const chunks: Chunk[] = await planChunks(
      objects.map((o) => ({ bucket: o.bucket, key: o.key, size: o.size })),
      request.format,
      sizes.chunkBytes,
      {
        ...(request.compression ? { compression: request.compression } : {}),
        ...(request.csvSplit !== undefined ? { csvSplit: request.csvSplit } : {}),
      },
    );
    if (chunks.length === 0) {
      throw new InputError(`input ${request.input}: every object is empty; nothing to load`, {
        source: request.input,
        field: "input",
      });
    }
    const buckets: Bucket[] = await chooseBucketsForPlan({
      request,
      chunks,
      inputBytes,
      targetBytes: sizes.bucketTargetBytes,
      open: sampleOpener(),
    });
    plan = {
      request,
      dataBucket: args.dataBucket,
      createdAt: new Date().toISOString(),
      chunks: chunks.length,
      buckets,
      inputBytes,
    };
    (plan as Plan & { planHash: string }).planHash = hash;
    // item lists first, plan.json last: a plan.json with this hash means the lists are complete
    await putJsonl(args.dataBucket, k.chunks, chunks);
    await putJsonl(args.dataBucket, k.buckets, buckets);
    await putJson(args.dataBucket, k.plan, plan);
  }

  const reg = await registerVersion(args.table, {
    request,
    planHash: hash,
    planKey: k.plan,
    execution: args.execution,
    inputBytes: plan.inputBytes,
    counts: { chunks: plan.chunks, buckets: plan.buckets.length },
  });
  if (reg.outcome === "already-done") {
    return pointerFor(plan, { alreadyDone: true, outcome: reg.outcome, execution: args.execution });
  }
  const { version: _v, ...config } = request;
  await upsertDatasetConfig(args.table, config);
  return pointerFor(plan, { outcome: reg.outcome, execution: args.execution });
}

/**
 * Before any listing: is this version already published? Then Plan is a no-op (re-running a finished version
 * must not even need its input any more).
 */
export async function publishedPointer(
  table: string,
  dataBucket: string,
  dataset: string,
  version: string,
): Promise<PlanPointer | undefined> {
  const v = await getVersion(table, dataset, version);
  if (!v || !PUBLISHED.includes(v.status)) return undefined;
  const plan = await getJsonOrUndefined<Plan>(dataBucket, stagingKeys(dataset, version).plan);
  const req = v.request;
  const base: Plan = plan ?? {
    request: req,
    dataBucket,
    createdAt: v.createdAt,
    chunks: 0,
    buckets: [],
    inputBytes: 0,
  };
  return pointerFor(base, { alreadyDone: true, outcome: "already-done" });
}

// ---------------------------------------------------------------------------------------------------------------
// plan.json cache: one Lambda container runs many chunks/buckets of the same version

const planCache = new Map<string, Promise<Plan>>();

export function loadPlan(dataBucket: string, planKey: string): Promise<Plan> {
  const id = `${dataBucket}/${planKey}`;
  let p = planCache.get(id);
  if (!p) {
    p = getJson<Plan>(dataBucket, planKey).catch((err) => {
      planCache.delete(id);
      if (err instanceof NotFoundError) {
        throw new ValidationError(`plan s3://${dataBucket}/${planKey} is missing: was the version planned?`);
      }
      throw err;
    });
    planCache.set(id, p);
    if (planCache.size > 16) planCache.delete(planCache.keys().next().value as string);
  }
  return p;
}

// ---------------------------------------------------------------------------------------------------------------
// Partition (per chunk)

export interface PartitionTaskArgs {
  dataBucket: string;
  planKey: string;
  chunk: Chunk;
}

export interface PartitionTaskResult {
  chunkId: string;
  records: number;
  skipped: number;
  reused: boolean;
}

export async function partitionTask(a: PartitionTaskArgs): Promise<PartitionTaskResult> {
  const plan = await loadPlan(a.dataBucket, a.planKey);
  const k = stagingKeys(plan.request.dataset, plan.request.version);
  const resultKey = k.partitionResult(a.chunk.id);
  const prior = await getJsonOrUndefined<PartitionResult>(a.dataBucket, resultKey);
  if (prior && (await headObject(a.dataBucket, prior.runKey))) {
    return { chunkId: prior.chunkId, records: prior.records, skipped: prior.skipped, reused: true };
  }
  const r = await recordItemError(a.dataBucket, k.itemError(a.chunk.id), `chunk ${a.chunk.id}`, () =>
    partitionChunk({ plan, chunk: a.chunk, dataBucket: a.dataBucket }),
  );
  await putJson(a.dataBucket, resultKey, r);
  return { chunkId: r.chunkId, records: r.records, skipped: r.skipped, reused: false };
}

/** What a Map item leaves behind when it fails for good (not for TransientError: those are retried). */
export interface ItemError {
  item: string;
  error: string;
  message: string;
}

/**
 * Run a Map item's work; a permanent failure is recorded at `errorKey` before it is re-thrown, so MarkFailed can say
 * what went wrong (Step Functions reports a failed Distributed Map only as States.ExceedToleratedFailureThreshold).
 */
export async function recordItemError<T>(
  dataBucket: string,
  errorKey: string,
  item: string,
  fn: () => Promise<T>,
): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof TransientError)) {
      const e = err as Error;
      const rec: ItemError = { item, error: e?.name ?? "Error", message: e?.message ?? String(err) };
      await putJson(dataBucket, errorKey, rec).catch(() => undefined);
    }
    throw err;
  }
}

/** The first recorded Map item error of a version (items in id order), if any. */
export async function firstItemError(
  dataBucket: string,
  dataset: string,
  version: string,
): Promise<ItemError | undefined> {
  const keys = await listObjects(dataBucket, stagingKeys(dataset, version).errors).catch(() => []);
  for (const o of keys) {
    const e = await getJsonOrUndefined<ItemError>(dataBucket, o.key).catch(() => undefined);
    if (e) return e;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// PlanBuild

export interface PartitionTotals {
  records: number;
  skipped: number;
  bytesIn: number;
  skippedExamples: string[];
  runKeys: string[];
  /** each run's size, in runKeys' order, when every result has it */
  runBytes?: number[];
}

/** Read every chunk's partition result (all must be there), in chunk order. */
export async function gatherPartitionResults(p: Pick<PlanPointer, "dataBucket" | "chunksKey" | "dataset" | "version">) {
  const k = stagingKeys(p.dataset, p.version);
  const chunks = await getJsonl<Chunk>(p.dataBucket, p.chunksKey);
  const results = await mapLimit(chunks, 16, async (c) => {
    const r = await getJsonOrUndefined<PartitionResult>(p.dataBucket, k.partitionResult(c.id));
    if (!r) {
      throw new ValidationError(`partition result for chunk ${c.id} (s3://${c.bucket}/${c.key}) is missing`, {
        chunk: c.id,
      });
    }
    return r;
  });
  return { chunks, results };
}

export function sumPartition(results: PartitionResult[]): PartitionTotals {
  const t: PartitionTotals = { records: 0, skipped: 0, bytesIn: 0, skippedExamples: [], runKeys: [] };
  const sizes: number[] = [];
  for (const r of results) {
    t.records += r.records;
    t.skipped += r.skipped;
    t.bytesIn += r.bytesIn;
    if (t.skippedExamples.length < 10)
      t.skippedExamples.push(...r.skippedExamples.slice(0, 10 - t.skippedExamples.length));
    t.runKeys.push(r.runKey);
    if (typeof r.runBytes === "number") sizes.push(r.runBytes);
  }
  if (sizes.length === t.runKeys.length) t.runBytes = sizes;
  return t;
}

export async function planBuild(
  p: PlanPointer,
  table: string,
): Promise<PlanPointer & { records: number; skipped: number }> {
  const plan = await loadPlan(p.dataBucket, p.planKey);
  const { results } = await gatherPartitionResults(p);
  const t = sumPartition(results);
  const req = plan.request;
  if (t.skipped > 0 && req.badRecords === "fail") {
    throw new InputError(`${t.skipped} bad record(s) with --bad-records fail; first: ${t.skippedExamples[0] ?? "?"}`);
  }
  if (t.skipped > req.maxBadRecords) {
    throw new LimitError(
      `${t.skipped} bad records exceed the maximum of ${req.maxBadRecords} (--max-bad-records); first: ${t.skippedExamples.join("; ")}`,
      { limit: "maxBadRecords", max: req.maxBadRecords, actual: t.skipped },
    );
  }
  if (t.records === 0) {
    throw new InputError(`input ${req.input}: no records (${t.skipped} skipped); nothing to load`, {
      source: req.input,
    });
  }
  await putJson(p.dataBucket, p.runsKey, { runKeys: t.runKeys, ...(t.runBytes ? { runBytes: t.runBytes } : {}) });
  await transitionVersion(table, p.dataset, p.version, "PARTITIONED", {
    counts: { records: t.records, skipped: t.skipped },
  });
  return { ...p, records: t.records, skipped: t.skipped };
}

export function assertRequestMatchesPlan(plan: Plan, dataset: string, version: string): void {
  if (plan.request.dataset !== dataset || plan.request.version !== version) {
    throw new ConfigError(`plan is for ${plan.request.dataset}/${plan.request.version}, not ${dataset}/${version}`);
  }
}
