/**
 * Version items of the control table: pk DATASET#<d>, sk VERSION#<v>.
 *
 * Status moves forward only: PLANNED → PARTITIONED → BUILT → STAGED → LOADING → ACTIVE → RETIRED (steps may be
 * skipped, e.g. STAGED → ACTIVE without a fleet), or to FAILED from any non-terminal status. Every transition is one
 * conditional UpdateItem; repeating a transition that already happened is a no-op (tasks are retried). The one way
 * back is an explicit re-plan of a FAILED version (`replanFailedVersion`), which counts attempts.
 */
import type { LoadRequest } from "../pipeline/types.js";
import { ConflictError, NotFoundError } from "../errors.js";
import { type VersionStatus, keys } from "./keys.js";
import { type Item, getItem, putIfAbsent, queryAll, updateIf } from "./table.js";

export const STATUS_ORDER: readonly VersionStatus[] = [
  "PLANNED",
  "PARTITIONED",
  "BUILT",
  "STAGED",
  "LOADING",
  "ACTIVE",
  "RETIRED",
];
/** statuses from which FAILED may be entered */
export const NON_TERMINAL: readonly VersionStatus[] = ["PLANNED", "PARTITIONED", "BUILT", "STAGED", "LOADING"];
/** a version in one of these has a complete, immutable manifest */
export const PUBLISHED: readonly VersionStatus[] = ["STAGED", "LOADING", "ACTIVE", "RETIRED"];

export interface VersionCounts {
  records?: number;
  skipped?: number;
  duplicates?: number;
  entries?: number;
  files?: number;
  chunks?: number;
  buckets?: number;
  emptyShards?: number;
}

export interface VersionItem {
  pk: string;
  sk: string;
  dataset: string;
  version: string;
  status: VersionStatus;
  request: LoadRequest;
  /** sha256 of the canonical plan inputs: the same version planned twice must be the same plan */
  planHash: string;
  planKey: string;
  execution?: string;
  attempts: number;
  createdAt: string;
  updatedAt: string;
  /** ISO time each status was entered */
  timings: Partial<Record<VersionStatus, string>>;
  counts?: VersionCounts;
  inputBytes?: number;
  bytes?: number;
  manifestKey?: string;
  error?: { error: string; cause: string; at: string };
}

/** Statuses that may precede `to` (forward moves only). */
export function allowedPredecessors(to: VersionStatus): VersionStatus[] {
  if (to === "FAILED") return [...NON_TERMINAL];
  const i = STATUS_ORDER.indexOf(to);
  return STATUS_ORDER.slice(0, i) as VersionStatus[];
}

export function canTransition(from: VersionStatus, to: VersionStatus): boolean {
  return allowedPredecessors(to).includes(from);
}

export async function getVersion(table: string, dataset: string, version: string): Promise<VersionItem | undefined> {
  return (await getItem(table, keys.version(dataset, version))) as VersionItem | undefined;
}

export async function listVersions(table: string, dataset: string): Promise<VersionItem[]> {
  const items = await queryAll(table, keys.dataset(dataset).pk, keys.versionSkPrefix);
  return items as unknown as VersionItem[];
}

export interface RegisterVersionInput {
  request: LoadRequest;
  planHash: string;
  planKey: string;
  execution?: string;
  inputBytes?: number;
  counts?: VersionCounts;
}

export type RegisterOutcome =
  /** a new version item was written */
  | { outcome: "created"; item: VersionItem }
  /** the same plan was registered before and is still in flight: continue (reuse finished work) */
  | { outcome: "same-plan"; item: VersionItem }
  /** already published (STAGED or later): nothing to do */
  | { outcome: "already-done"; item: VersionItem }
  /** the version FAILED before: it was re-planned (attempts + 1) */
  | { outcome: "replanned"; item: VersionItem };

/**
 * Register a version as PLANNED with a conditional put. If the item exists: a different plan is a ConflictError
 * (versions are immutable), the same plan is either in flight (continue), published (no-op) or FAILED (re-planned).
 */
export async function registerVersion(table: string, input: RegisterVersionInput): Promise<RegisterOutcome> {
  const { dataset, version } = input.request;
  const now = new Date().toISOString();
  const item: VersionItem = {
    ...keys.version(dataset, version),
    dataset,
    version,
    status: "PLANNED",
    request: input.request,
    planHash: input.planHash,
    planKey: input.planKey,
    execution: input.execution,
    attempts: 1,
    createdAt: now,
    updatedAt: now,
    timings: { PLANNED: now },
    counts: input.counts ?? {},
    inputBytes: input.inputBytes,
  };
  if (await putIfAbsent(table, item as unknown as Item)) return { outcome: "created", item };
  const existing = await getVersion(table, dataset, version);
  if (!existing) throw new ConflictError(`version ${dataset}/${version} vanished while registering it; try again`);
  if (existing.planHash !== input.planHash) {
    if (PUBLISHED.includes(existing.status)) return { outcome: "already-done", item: existing };
    throw new ConflictError(
      `version ${dataset}/${version} was already planned with different settings or input (status ${existing.status}); ` +
        "versions are immutable: choose a new --version",
      { dataset, version, status: existing.status },
    );
  }
  if (PUBLISHED.includes(existing.status)) return { outcome: "already-done", item: existing };
  if (existing.status === "FAILED") {
    const item2 = await replanFailedVersion(table, dataset, version, input.execution);
    return { outcome: "replanned", item: item2 };
  }
  return { outcome: "same-plan", item: existing };
}

/** FAILED → PLANNED for a retry of the same plan (conditional on still being FAILED). */
export async function replanFailedVersion(
  table: string,
  dataset: string,
  version: string,
  execution?: string,
): Promise<VersionItem> {
  const now = new Date().toISOString();
  const out = await updateIf({
    TableName: table,
    Key: keys.version(dataset, version),
    UpdateExpression:
      "SET #s = :planned, updatedAt = :now, timings = :t, attempts = attempts + :one, #ex = :ex REMOVE #err",
    ConditionExpression: "#s = :failed",
    ExpressionAttributeNames: { "#s": "status", "#err": "error", "#ex": "execution" },
    ExpressionAttributeValues: {
      ":planned": "PLANNED",
      ":failed": "FAILED",
      ":now": now,
      ":t": { PLANNED: now },
      ":one": 1,
      ":ex": execution ?? null,
    },
  });
  if (out) return out as unknown as VersionItem;
  const cur = await getVersion(table, dataset, version);
  if (cur && cur.status !== "FAILED") return cur;
  throw new ConflictError(`version ${dataset}/${version} could not be re-planned`);
}

export interface TransitionExtra {
  counts?: VersionCounts;
  bytes?: number;
  manifestKey?: string;
  error?: { error: string; cause: string };
  execution?: string;
}

/**
 * Move a version to `to` with one conditional update (condition: the current status may precede `to`). If the
 * version is already at `to` the call is a no-op that returns the item. A backward move is a ConflictError.
 */
export async function transitionVersion(
  table: string,
  dataset: string,
  version: string,
  to: VersionStatus,
  extra: TransitionExtra = {},
): Promise<VersionItem> {
  const now = new Date().toISOString();
  const names: Record<string, string> = { "#s": "status", "#t": "timings", "#to": to };
  const values: Record<string, unknown> = { ":to": to, ":now": now };
  const sets = ["#s = :to", "updatedAt = :now", "#t.#to = :now"];
  const preds = allowedPredecessors(to);
  if (preds.length === 0) {
    // nothing precedes PLANNED: only registerVersion/replanFailedVersion write it
    const cur = await getVersion(table, dataset, version);
    if (cur?.status === to) return cur;
    throw new ConflictError(`version ${dataset}/${version} cannot move from ${cur?.status ?? "nowhere"} to ${to}`, {
      dataset,
      version,
      from: cur?.status,
      to,
    });
  }
  preds.forEach((p, i) => {
    values[`:p${i}`] = p;
  });
  if (extra.counts) {
    // merge counts field by field so earlier phases' counts stay
    for (const [k, v] of Object.entries(extra.counts)) {
      if (v === undefined) continue;
      names[`#c_${k}`] = k;
      values[`:c_${k}`] = v;
      sets.push(`counts.#c_${k} = :c_${k}`);
    }
  }
  if (extra.bytes !== undefined) {
    values[":bytes"] = extra.bytes;
    sets.push("bytes = :bytes");
  }
  if (extra.manifestKey) {
    values[":mk"] = extra.manifestKey;
    sets.push("manifestKey = :mk");
  }
  if (extra.execution) {
    names["#ex"] = "execution";
    values[":ex"] = extra.execution;
    sets.push("#ex = :ex");
  }
  if (extra.error) {
    names["#err"] = "error";
    values[":err"] = { ...extra.error, at: now };
    sets.push("#err = :err");
  }
  const condition = `attribute_exists(pk) AND #s IN (${preds.map((_, i) => `:p${i}`).join(", ")})`;
  const update = async () =>
    updateIf({
      TableName: table,
      Key: keys.version(dataset, version),
      UpdateExpression: `SET ${sets.join(", ")}`,
      ConditionExpression: condition,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    });
  let out: Item | undefined;
  try {
    out = await update();
  } catch (err) {
    // a version item written before `counts` existed: create the map, then retry once
    if ((err as Error).name === "ValidationException" && extra.counts) {
      await updateIf({
        TableName: table,
        Key: keys.version(dataset, version),
        UpdateExpression: "SET counts = if_not_exists(counts, :empty)",
        ExpressionAttributeValues: { ":empty": {} },
      });
      out = await update();
    } else throw err;
  }
  if (out) return out as unknown as VersionItem;
  const cur = await getVersion(table, dataset, version);
  if (!cur) throw new NotFoundError(`version ${dataset}/${version} is not registered in the control table`);
  if (cur.status === to) return cur;
  throw new ConflictError(`version ${dataset}/${version} cannot move from ${cur.status} to ${to}`, {
    dataset,
    version,
    from: cur.status,
    to,
  });
}

/** Record a version FAILED with its error, unless it is already terminal (then it is returned unchanged). */
export async function failVersion(
  table: string,
  dataset: string,
  version: string,
  error: { error: string; cause: string },
): Promise<VersionItem | undefined> {
  try {
    return await transitionVersion(table, dataset, version, "FAILED", { error });
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    if (err instanceof ConflictError) return getVersion(table, dataset, version);
    throw err;
  }
}
