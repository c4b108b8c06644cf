/**
 * The fleet control plane over the control table (see DESIGN.md "control plane" and docs/hosts.md):
 * host registration and heartbeats, the per-dataset fleet directive (what to load, what to serve), host-load items,
 * the coverage check WaitForHosts polls, cutover, rollback, cleanup and withdraw.
 *
 * Single-item conditional writes only (no transactions). The invariants and how each write keeps them:
 * - A directive is never replaced by an older signal: Signal's write is conditional on the stored `issuedAt` being
 *   older than its own (or the same version: a retried Signal is a no-op).
 * - The dataset item is the source of truth for what is active. Every move of `activeVersion` (cutover, rollback)
 *   increments `activeSeq`; the directive copies `activeVersion` only with a higher `activeSeq`, so the directive
 *   can never go back to a stale active version whatever order the writes land in.
 * - Cutover is conditional on the expected current activeVersion (captured at Signal) AND on `activeIssuedAt` being
 *   older than the directive that staged this version: two executions can never both cut over, and an old version
 *   can never replace a newer one by accident. Rollback is the only deliberate backwards move.
 */
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { ConflictError, FerryError, NotFoundError, ValidationError } from "../errors.js";
import { HOST, PIPELINE } from "../limits.js";
import { retireOldVersions } from "./datasets.js";
import { type HostLoadState, keys } from "./keys.js";
import { classifyAwsError, controlClient, isConditionFailed, queryAll } from "./table.js";
import { transitionVersion } from "./versions.js";

// ---------------------------------------------------------------------------------------------------------------
// access: every function takes the control table name first (core/control/table.ts conventions)

/** send one command; throttling/network errors become TransientError, condition failures pass through */
// biome-ignore lint/suspicious/noExplicitAny: the SDK's command generics are not worth spelling out here
async function send(cmd: any, what = "control table request"): Promise<any> {
  try {
    return await controlClient().send(cmd);
  } catch (err) {
    if (isConditionFailed(err)) throw err;
    return classifyAwsError(err, what);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// items

export interface HostItem {
  fleet: string;
  hostId: string;
  shards: number[];
  endpoint: string;
  /** epoch ms */
  heartbeatAt: number;
  startedAt: number;
  /** per dataset: what the host serves and what it has loaded */
  datasets?: Record<string, { active?: string; loaded: string[] }>;
}

export interface Directive {
  fleet: string;
  dataset: string;
  /** the version hosts should load next; absent when none is in flight (never signalled, or withdrawn) */
  targetVersion?: string;
  manifestKey?: string;
  /** bucket of the manifest and SST files */
  bucket?: string;
  /** shard count of the target version */
  shards?: number;
  /** the version hosts should serve */
  activeVersion?: string;
  previousVersion?: string;
  /** dataset item's activeSeq this copy reflects */
  activeSeq?: number;
  /** epoch ms of the signal that wrote targetVersion */
  issuedAt: number;
  withdrawnVersion?: string;
  updatedAt: number;
}

export interface HostLoad {
  dataset: string;
  version: string;
  hostId: string;
  fleet: string;
  shards: number[];
  state: HostLoadState;
  progress: { filesDone: number; filesTotal: number; bytesDone: number; bytesTotal: number };
  error?: string;
  updatedAt: number;
}

export interface DatasetActive {
  dataset: string;
  activeVersion?: string;
  previousVersion?: string;
  activeSeq: number;
  /** issuedAt of the directive whose version is active (never lowered, not even by rollback) */
  activeIssuedAt: number;
  activeToken?: string;
  fleet?: string;
}

function stripKeys<T>(item: Record<string, unknown>): T {
  const { pk: _pk, sk: _sk, ...rest } = item;
  return rest as T;
}

// ---------------------------------------------------------------------------------------------------------------
// hosts

export async function registerHost(
  table: string,
  h: { fleet: string; hostId: string; shards: number[]; endpoint: string; now?: number },
): Promise<HostItem> {
  const now = h.now ?? Date.now();
  const item: HostItem = {
    fleet: h.fleet,
    hostId: h.hostId,
    shards: [...h.shards].sort((a, b) => a - b),
    endpoint: h.endpoint,
    heartbeatAt: now,
    startedAt: now,
    datasets: {},
  };
  await send(new PutCommand({ TableName: table, Item: { ...keys.host(h.fleet, h.hostId), ...item } }));
  return item;
}

/** Refresh heartbeatAt (and what the host serves). Recreates the item if it was deleted (e.g. after a deregister). */
export async function heartbeat(
  table: string,
  h: {
    fleet: string;
    hostId: string;
    shards: number[];
    endpoint: string;
    datasets?: HostItem["datasets"];
    now?: number;
  },
): Promise<void> {
  const now = h.now ?? Date.now();
  await send(
    new UpdateCommand({
      TableName: table,
      Key: keys.host(h.fleet, h.hostId),
      UpdateExpression:
        "SET heartbeatAt = :now, fleet = :f, hostId = :h, shards = :s, endpoint = :e, datasets = :d, startedAt = if_not_exists(startedAt, :now)",
      ExpressionAttributeValues: {
        ":now": now,
        ":f": h.fleet,
        ":h": h.hostId,
        ":s": [...h.shards].sort((a, b) => a - b),
        ":e": h.endpoint,
        ":d": h.datasets ?? {},
      },
    }),
  );
}

export async function deregisterHost(table: string, fleet: string, hostId: string): Promise<void> {
  await send(new DeleteCommand({ TableName: table, Key: keys.host(fleet, hostId) }));
}

/** Every registered host of a fleet; `live` = heartbeat fresher than HOST.heartbeatStaleMs. */
export async function listHosts(
  table: string,
  fleet: string,
  opts: { now?: number; staleMs?: number } = {},
): Promise<Array<HostItem & { live: boolean }>> {
  const now = opts.now ?? Date.now();
  const stale = opts.staleMs ?? HOST.heartbeatStaleMs;
  const items = await queryAll(table, `FLEET#${fleet}`, keys.hostSkPrefix);
  return items.map((i) => {
    const h = stripKeys<HostItem>(i);
    return { ...h, live: now - Number(h.heartbeatAt ?? 0) <= stale };
  });
}

// ---------------------------------------------------------------------------------------------------------------
// dataset item (the activeVersion part of it)

export async function getDatasetActive(table: string, dataset: string): Promise<DatasetActive | undefined> {
  const r = await send(new GetCommand({ TableName: table, Key: keys.dataset(dataset), ConsistentRead: true }));
  if (!r.Item) return undefined;
  const i = r.Item as Record<string, unknown>;
  return {
    dataset,
    activeVersion: i.activeVersion as string | undefined,
    previousVersion: i.previousVersion as string | undefined,
    activeSeq: Number(i.activeSeq ?? 0),
    activeIssuedAt: Number(i.activeIssuedAt ?? 0),
    activeToken: i.activeToken as string | undefined,
    fleet: i.fleet as string | undefined,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// directives

export async function getDirective(table: string, fleet: string, dataset: string): Promise<Directive | undefined> {
  const r = await send(new GetCommand({ TableName: table, Key: keys.directive(fleet, dataset), ConsistentRead: true }));
  return r.Item ? stripKeys<Directive>(r.Item as Record<string, unknown>) : undefined;
}

/** All directives of a fleet (consistent read): what hosts poll. */
export async function listDirectives(table: string, fleet: string): Promise<Directive[]> {
  const items = await queryAll(table, `FLEET#${fleet}`, keys.directiveSkPrefix);
  return items.map((i) => stripKeys<Directive>(i));
}

export interface SignalArgs {
  fleet: string;
  dataset: string;
  version: string;
  manifestKey: string;
  bucket: string;
  shards: number;
  /** epoch ms; pass the execution's start time so a retried Signal carries the same value */
  issuedAt?: number;
}

export interface SignalResult {
  directive: Directive;
  /** false when the directive already targeted this version (a retry) */
  written: boolean;
  /** the dataset's activeVersion when the signal was written: what Cutover expects to replace */
  expectedActiveVersion: string | null;
}

/**
 * Write the fleet directive for a new target version. Never replaces a directive with a newer issuedAt (a later load
 * of the same dataset) — that raises a ConflictError. Signalling the version the directive already targets is a no-op.
 * The directive's activeVersion is only initialised here (if_not_exists); cutover and rollback own it afterwards.
 */
export async function signal(table: string, a: SignalArgs): Promise<SignalResult> {
  const issuedAt = a.issuedAt ?? Date.now();
  const ds = await getDatasetActive(table, a.dataset);
  const expected = ds?.activeVersion ?? null;
  const now = Date.now();
  try {
    const r = await send(
      new UpdateCommand({
        TableName: table,
        Key: keys.directive(a.fleet, a.dataset),
        UpdateExpression:
          "SET fleet = :f, dataset = :d, targetVersion = :v, manifestKey = :m, #bucket = :b, shards = :s, issuedAt = :t, updatedAt = :now," +
          " activeSeq = if_not_exists(activeSeq, :seq)" +
          (ds?.activeVersion ? ", activeVersion = if_not_exists(activeVersion, :av)" : "") +
          (ds?.previousVersion ? ", previousVersion = if_not_exists(previousVersion, :pv)" : "") +
          " REMOVE withdrawnVersion",
        ConditionExpression: "attribute_not_exists(pk) OR issuedAt < :t",
        ExpressionAttributeNames: { "#bucket": "bucket" },
        ExpressionAttributeValues: {
          ":f": a.fleet,
          ":d": a.dataset,
          ":v": a.version,
          ":m": a.manifestKey,
          ":b": a.bucket,
          ":s": a.shards,
          ":t": issuedAt,
          ":now": now,
          ":seq": ds?.activeSeq ?? 0,
          ...(ds?.activeVersion ? { ":av": ds.activeVersion } : {}),
          ...(ds?.previousVersion ? { ":pv": ds.previousVersion } : {}),
        },
        ReturnValues: "ALL_NEW",
      }),
    );
    return {
      directive: stripKeys<Directive>(r.Attributes as Record<string, unknown>),
      written: true,
      expectedActiveVersion: expected,
    };
  } catch (err) {
    if (!isConditionFailed(err)) throw err;
    const cur = await getDirective(table, a.fleet, a.dataset);
    if (cur && cur.targetVersion === a.version) {
      return { directive: cur, written: false, expectedActiveVersion: expected };
    }
    throw new ConflictError(
      `fleet ${a.fleet} dataset ${a.dataset}: a newer directive exists (target ${cur?.targetVersion ?? "none"}, issued ${new Date(cur?.issuedAt ?? 0).toISOString()}); not replacing it with version ${a.version}`,
      { fleet: a.fleet, dataset: a.dataset, version: a.version, current: cur?.targetVersion },
    );
  }
}

/**
 * MarkFailed: withdraw the directive's target if it is still `version` (hosts then drop the partial version).
 * A directive that already targets another version is left alone. Returns whether it withdrew anything.
 */
export async function withdrawDirective(
  table: string,
  a: { fleet: string; dataset: string; version: string },
): Promise<boolean> {
  try {
    await send(
      new UpdateCommand({
        TableName: table,
        Key: keys.directive(a.fleet, a.dataset),
        UpdateExpression: "SET withdrawnVersion = :v, updatedAt = :now REMOVE targetVersion, manifestKey",
        ConditionExpression: "targetVersion = :v",
        ExpressionAttributeValues: { ":v": a.version, ":now": Date.now() },
      }),
    );
    return true;
  } catch (err) {
    if (isConditionFailed(err)) return false;
    throw err;
  }
}

/** Copy the dataset's active/previous version to the directive, only forwards (higher activeSeq). */
async function syncDirectiveActive(
  table: string,
  fleet: string,
  dataset: string,
  ds: { activeVersion?: string; previousVersion?: string; activeSeq: number },
): Promise<void> {
  let set = "SET activeVersion = :av, activeSeq = :seq, updatedAt = :now, fleet = :f, dataset = :d";
  const values: Record<string, unknown> = {
    ":av": ds.activeVersion,
    ":seq": ds.activeSeq,
    ":now": Date.now(),
    ":f": fleet,
    ":d": dataset,
  };
  let remove = "";
  if (ds.previousVersion) {
    set += ", previousVersion = :pv";
    values[":pv"] = ds.previousVersion;
  } else remove = " REMOVE previousVersion";
  try {
    await send(
      new UpdateCommand({
        TableName: table,
        Key: keys.directive(fleet, dataset),
        UpdateExpression: `${set}, issuedAt = if_not_exists(issuedAt, :zero)${remove}`,
        ConditionExpression: "attribute_not_exists(activeSeq) OR activeSeq < :seq",
        ExpressionAttributeValues: { ...values, ":zero": 0 },
      }),
    );
  } catch (err) {
    if (!isConditionFailed(err)) throw err; // a newer move already landed: nothing to do
  }
}

// ---------------------------------------------------------------------------------------------------------------
// host loads

export async function putHostLoad(table: string, l: Omit<HostLoad, "updatedAt"> & { now?: number }): Promise<void> {
  const { now, ...rest } = l;
  const item: HostLoad = { ...rest, updatedAt: now ?? Date.now() };
  if (item.error === undefined) delete item.error;
  await send(new PutCommand({ TableName: table, Item: { ...keys.hostLoad(l.dataset, l.version, l.hostId), ...item } }));
}

export async function listHostLoads(table: string, dataset: string, version: string): Promise<HostLoad[]> {
  const items = await queryAll(table, keys.hostLoadPk(dataset, version), keys.hostSkPrefix);
  return items.map((i) => stripKeys<HostLoad>(i));
}

// ---------------------------------------------------------------------------------------------------------------
// coverage

export interface ShardCoverage {
  shard: number;
  /** live hosts that own the shard and reported LOADED */
  loaded: string[];
  /** live hosts that own the shard */
  owners: string[];
}

export interface Coverage {
  covered: boolean;
  failed: Array<{ host: string; error: string }>;
  uncovered: number[];
  shards: ShardCoverage[];
}

/**
 * For each shard 0..shards-1: the live hosts (heartbeat fresh) that own it and reported LOADED for this version.
 * covered = every shard has at least minReplicas of them. Hosts that reported FAILED are listed in `failed`.
 */
export async function coverage(
  table: string,
  a: { fleet: string; dataset: string; version: string; shards: number; minReplicas?: number; now?: number },
): Promise<Coverage> {
  const min = Math.max(1, a.minReplicas ?? PIPELINE.minReplicas);
  const [hosts, loads] = await Promise.all([
    listHosts(table, a.fleet, { now: a.now }),
    listHostLoads(table, a.dataset, a.version),
  ]);
  const live = new Map(hosts.filter((h) => h.live).map((h) => [h.hostId, h]));
  const loadBy = new Map(loads.map((l) => [l.hostId, l]));
  const shards: ShardCoverage[] = [];
  for (let s = 0; s < a.shards; s++) shards.push({ shard: s, loaded: [], owners: [] });
  for (const h of live.values()) {
    const l = loadBy.get(h.hostId);
    const loadedShards = new Set(l?.state === "LOADED" ? (l.shards ?? []) : []);
    for (const s of h.shards ?? []) {
      if (s < 0 || s >= a.shards) continue;
      shards[s].owners.push(h.hostId);
      if (loadedShards.has(s)) shards[s].loaded.push(h.hostId);
    }
  }
  const uncovered = shards.filter((s) => s.loaded.length < min).map((s) => s.shard);
  const failed = loads
    .filter((l) => l.state === "FAILED")
    .map((l) => ({ host: l.hostId, error: l.error ?? "failed (no reason given)" }));
  return { covered: uncovered.length === 0, failed, uncovered, shards };
}

/** WaitForHosts gave up: the deadline passed or a host reported FAILED. The active version is untouched. */
export class HostsNotReadyError extends FerryError {
  constructor(message: string, details: { uncovered: number[]; failed: Array<{ host: string; error: string }> }) {
    super("VALIDATION", message, details);
  }
}

export interface WaitCheck extends Omit<Coverage, "shards"> {
  deadlinePassed: boolean;
}

/**
 * One WaitForHosts poll. Returns the coverage; throws HostsNotReadyError (naming the uncovered shards and failures)
 * when not covered and a host reported FAILED or the deadline (epoch ms) has passed.
 */
export async function checkHosts(
  table: string,
  a: { fleet: string; dataset: string; version: string; shards: number; minReplicas?: number; deadline: number },
): Promise<WaitCheck> {
  const now = Date.now();
  const c = await coverage(table, { ...a, now });
  const deadlinePassed = now >= a.deadline;
  if (!c.covered && (c.failed.length > 0 || deadlinePassed)) {
    const why = c.failed.length
      ? `host(s) failed to load: ${c.failed.map((f) => `${f.host}: ${f.error}`).join("; ")}`
      : `deadline ${new Date(a.deadline).toISOString()} passed`;
    throw new HostsNotReadyError(
      `dataset ${a.dataset} version ${a.version} on fleet ${a.fleet}: ${why}; uncovered shards: [${c.uncovered.join(", ")}] (need ${Math.max(1, a.minReplicas ?? PIPELINE.minReplicas)} LOADED live host(s) per shard); the active version keeps serving`,
      { uncovered: c.uncovered, failed: c.failed },
    );
  }
  return { covered: c.covered, failed: c.failed, uncovered: c.uncovered, deadlinePassed };
}

// ---------------------------------------------------------------------------------------------------------------
// cutover / rollback

export interface CutoverArgs {
  dataset: string;
  version: string;
  /** the dataset's activeVersion when the version was signalled (null: none was active) */
  expectedActiveVersion: string | null;
  /** issuedAt of the directive that staged this version (epoch ms); cutover never goes to an older one */
  issuedAt: number;
  /** identifies the execution: a retried cutover with the same token is a no-op, another token loses */
  token: string;
  /** fleet whose directive switches hosts; absent = no hosts (stage-and-activate) */
  fleet?: string;
}

export interface CutoverResult {
  dataset: string;
  activeVersion: string;
  previousVersion: string | null;
  activeSeq: number;
  /** false when this token had already cut over (a retry) */
  switched: boolean;
}

/**
 * Make `version` the dataset's active version: one conditional UpdateItem on the dataset item (expected current
 * activeVersion, and activeIssuedAt older than this directive), then the directive's activeVersion (forwards only),
 * then the version item's status ACTIVE (best effort: a version staged by hand may have no item).
 * Throws ConflictError when another cutover got there first or the dataset moved on.
 */
export async function cutover(table: string, a: CutoverArgs): Promise<CutoverResult> {
  if (a.fleet) {
    const d = await getDirective(table, a.fleet, a.dataset);
    if (d && d.targetVersion !== a.version && (d.issuedAt ?? 0) > a.issuedAt) {
      throw new ConflictError(
        `dataset ${a.dataset}: fleet ${a.fleet} was signalled a newer version (${d.targetVersion ?? "withdrawn"}); not cutting over to ${a.version}`,
        { dataset: a.dataset, version: a.version, target: d.targetVersion },
      );
    }
  }
  const now = Date.now();
  const values: Record<string, unknown> = {
    ":v": a.version,
    ":t": a.issuedAt,
    ":tok": a.token,
    ":one": 1,
    ":zero": 0,
    ":now": new Date(now).toISOString(),
  };
  let cond = "(attribute_not_exists(activeIssuedAt) OR activeIssuedAt < :t)";
  let set =
    "SET activeVersion = :v, activeSeq = if_not_exists(activeSeq, :zero) + :one, activeIssuedAt = :t, activeToken = :tok, activatedAt = :now";
  if (a.expectedActiveVersion) {
    cond += " AND activeVersion = :exp";
    values[":exp"] = a.expectedActiveVersion;
    set += ", previousVersion = :exp";
  } else {
    cond += " AND attribute_not_exists(activeVersion)";
  }
  if (a.fleet) {
    set += ", fleet = :f";
    values[":f"] = a.fleet;
  }
  let ds: DatasetActive;
  let switched = true;
  try {
    const r = await send(
      new UpdateCommand({
        TableName: table,
        Key: keys.dataset(a.dataset),
        UpdateExpression: set,
        ConditionExpression: cond,
        ExpressionAttributeValues: values,
        ReturnValues: "ALL_NEW",
      }),
    );
    const i = r.Attributes as Record<string, unknown>;
    ds = {
      dataset: a.dataset,
      activeVersion: i.activeVersion as string,
      previousVersion: i.previousVersion as string | undefined,
      activeSeq: Number(i.activeSeq),
      activeIssuedAt: Number(i.activeIssuedAt),
      activeToken: i.activeToken as string,
      fleet: i.fleet as string | undefined,
    };
  } catch (err) {
    if (!isConditionFailed(err)) throw err;
    const cur = await getDatasetActive(table, a.dataset);
    if (cur && cur.activeVersion === a.version && cur.activeToken === a.token) {
      ds = cur; // this very cutover already happened: a retry
      switched = false;
    } else {
      throw new ConflictError(
        `dataset ${a.dataset}: cutover to ${a.version} refused: active version is ${cur?.activeVersion ?? "none"} (expected ${a.expectedActiveVersion ?? "none"}), set by ${cur?.activeToken ?? "nobody"}; a concurrent or newer cutover won`,
        { dataset: a.dataset, version: a.version, active: cur?.activeVersion, expected: a.expectedActiveVersion },
      );
    }
  }
  if (a.fleet) await syncDirectiveActive(table, a.fleet, a.dataset, ds);
  if (switched) await markVersion(table, a.dataset, a.version, "ACTIVE");
  return {
    dataset: a.dataset,
    activeVersion: ds.activeVersion as string,
    previousVersion: ds.previousVersion ?? null,
    activeSeq: ds.activeSeq,
    switched,
  };
}

export interface RollbackResult {
  dataset: string;
  activeVersion: string;
  previousVersion: string;
  fleet: string | null;
}

/**
 * Swap activeVersion and previousVersion (conditional on both being what was read). The directive follows, so hosts
 * switch back (they keep the previous version's store for exactly this). activeIssuedAt is left as is: a rollback
 * does not re-open the door to older cutovers.
 */
export async function rollback(table: string, dataset: string): Promise<RollbackResult> {
  const cur = await getDatasetActive(table, dataset);
  if (!cur?.activeVersion) throw new NotFoundError(`dataset ${dataset} has no active version to roll back`);
  if (!cur.previousVersion) {
    throw new ValidationError(`dataset ${dataset}: no previous version to roll back to (active ${cur.activeVersion})`, {
      dataset,
    });
  }
  try {
    await send(
      new UpdateCommand({
        TableName: table,
        Key: keys.dataset(dataset),
        UpdateExpression:
          "SET activeVersion = :p, previousVersion = :a, activeSeq = if_not_exists(activeSeq, :zero) + :one, activeToken = :tok, activatedAt = :now",
        ConditionExpression:
          "activeVersion = :a AND previousVersion = :p AND (attribute_not_exists(activeSeq) OR activeSeq = :seq)",
        ExpressionAttributeValues: {
          ":a": cur.activeVersion,
          ":p": cur.previousVersion,
          ":seq": cur.activeSeq,
          ":one": 1,
          ":zero": 0,
          ":tok": `rollback@${Date.now()}`,
          ":now": new Date().toISOString(),
        },
      }),
    );
  } catch (err) {
    if (!isConditionFailed(err)) throw err;
    throw new ConflictError(`dataset ${dataset}: rollback raced another change of the active version; try again`, {
      dataset,
    });
  }
  const seq = cur.activeSeq + 1;
  if (cur.fleet) {
    await syncDirectiveActive(table, cur.fleet, dataset, {
      activeVersion: cur.previousVersion,
      previousVersion: cur.activeVersion,
      activeSeq: seq,
    });
  }
  await markVersion(table, dataset, cur.previousVersion, "ACTIVE");
  return { dataset, activeVersion: cur.previousVersion, previousVersion: cur.activeVersion, fleet: cur.fleet ?? null };
}

// ---------------------------------------------------------------------------------------------------------------
// versions (the version item belongs to core/control/versions.ts; fleet only moves its status)

/**
 * Move a version item to ACTIVE/RETIRED via versions.ts. A version staged by hand has no item (NotFoundError) and a
 * version that cannot take the status (e.g. FAILED meanwhile) is left as is: the dataset item is the truth for what
 * is served. Returns whether the status was set.
 */
export async function markVersion(
  table: string,
  dataset: string,
  version: string,
  to: "LOADING" | "ACTIVE" | "RETIRED",
): Promise<boolean> {
  try {
    await transitionVersion(table, dataset, version, to);
    return true;
  } catch (err) {
    if (err instanceof NotFoundError || err instanceof ConflictError) return false;
    throw err;
  }
}

export interface CleanupResult {
  dataset: string;
  retired: string[];
  keepVersions: number;
}

/**
 * Retire versions beyond keepVersions (datasets.ts retireOldVersions: newest first, never the active or previous
 * one). Hosts drop retired versions on their own: they keep only the directive's active, previous and target.
 */
export async function cleanup(table: string, a: { dataset: string; keepVersions?: number }): Promise<CleanupResult> {
  const keep = Math.max(2, a.keepVersions ?? PIPELINE.keepVersions);
  const retired = await retireOldVersions(table, a.dataset, keep);
  return { dataset: a.dataset, retired, keepVersions: keep };
}

// ---------------------------------------------------------------------------------------------------------------
// status / routing helpers

export interface FleetCoverage {
  dataset: string;
  fleet: string | null;
  activeVersion: string | null;
  targetVersion: string | null;
  /** per shard of the active version (or the target's when none is active): hosts that serve / loaded it */
  shards: Array<{ shard: number; hosts: Array<{ hostId: string; endpoint: string; live: boolean; active?: string }> }>;
  /** target version load coverage (absent when no load is in flight) */
  target?: Coverage;
}

/**
 * Per-shard host coverage of a dataset, for `ferry status`: which live hosts own each shard and which version they
 * serve, and the in-flight target's coverage.
 */
export async function fleetCoverage(table: string, dataset: string, fleetArg?: string): Promise<FleetCoverage> {
  const ds = await getDatasetActive(table, dataset);
  const fleet = fleetArg ?? ds?.fleet ?? null;
  const out: FleetCoverage = {
    dataset,
    fleet,
    activeVersion: ds?.activeVersion ?? null,
    targetVersion: null,
    shards: [],
  };
  if (!fleet) return out;
  const [dir, hosts] = await Promise.all([getDirective(table, fleet, dataset), listHosts(table, fleet)]);
  out.targetVersion = dir?.targetVersion ?? null;
  const shardCount = dir?.shards ?? Math.max(0, ...hosts.flatMap((h) => h.shards.map((s) => s + 1)));
  for (let s = 0; s < shardCount; s++) out.shards.push({ shard: s, hosts: [] });
  for (const h of hosts) {
    for (const s of h.shards) {
      if (s >= shardCount) continue;
      out.shards[s].hosts.push({
        hostId: h.hostId,
        endpoint: h.endpoint,
        live: h.live,
        active: h.datasets?.[dataset]?.active,
      });
    }
  }
  if (dir?.targetVersion && dir.targetVersion !== ds?.activeVersion && dir.shards) {
    out.target = await coverage(table, { fleet, dataset, version: dir.targetVersion, shards: dir.shards });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// state-machine steps (functions/bulk-load/{signal,wait-for-hosts,cutover,cleanup}.ts are thin wrappers)

/** What Signal returns and WaitForHosts / Cutover take (the state machine passes it on unchanged). */
export interface SignalOutput {
  dataset: string;
  version: string;
  /** null = no fleet: stage and activate (WaitForHosts is immediately covered) */
  fleet: string | null;
  bucket: string;
  manifestKey: string;
  shards: number;
  minReplicas: number;
  /** epoch ms of the directive */
  issuedAt: number;
  /** epoch ms after which WaitForHosts fails */
  deadline: number;
  expectedActiveVersion: string | null;
  /** cutover token: the execution name, else dataset-version@issuedAt */
  token: string;
}

export interface SignalInput {
  dataset: string;
  version: string;
  fleet?: string | null;
  bucket: string;
  /** default manifestKey(dataset, version) */
  manifestKey?: string;
  /** shard count; read from the manifest when absent */
  shards?: number;
  minReplicas?: number;
  waitForHostsSeconds?: number;
  /** epoch ms or ISO time ($$.Execution.StartTime): a retried Signal then writes the same directive */
  issuedAt?: number | string;
  /** $$.Execution.Name */
  execution?: string;
}

export function toEpochMs(v: number | string | undefined, field: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  const n = typeof v === "number" ? v : /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(n)) throw new ValidationError(`${field}: not a time: ${String(v)}`, { field });
  return n;
}

export async function signalStep(
  table: string,
  input: SignalInput,
  readShards: (bucket: string, dataset: string, version: string) => Promise<number>,
): Promise<SignalOutput> {
  const issuedAt = toEpochMs(input.issuedAt, "issuedAt") ?? Date.now();
  const mk = input.manifestKey ?? `versions/${input.dataset}/${input.version}/manifest.json`;
  const shards = input.shards ?? (await readShards(input.bucket, input.dataset, input.version));
  const minReplicas = Math.max(1, input.minReplicas ?? PIPELINE.minReplicas);
  const waitS = input.waitForHostsSeconds ?? PIPELINE.waitForHostsSeconds;
  let expected: string | null;
  if (input.fleet) {
    const r = await signal(table, {
      fleet: input.fleet,
      dataset: input.dataset,
      version: input.version,
      manifestKey: mk,
      bucket: input.bucket,
      shards,
      issuedAt,
    });
    expected = r.expectedActiveVersion;
    await markVersion(table, input.dataset, input.version, "LOADING");
  } else {
    expected = (await getDatasetActive(table, input.dataset))?.activeVersion ?? null;
  }
  return {
    dataset: input.dataset,
    version: input.version,
    fleet: input.fleet ?? null,
    bucket: input.bucket,
    manifestKey: mk,
    shards,
    minReplicas,
    issuedAt,
    deadline: issuedAt + waitS * 1000,
    expectedActiveVersion: expected,
    token: input.execution ?? `${input.dataset}-${input.version}@${issuedAt}`,
  };
}

export type WaitForHostsOutput = SignalOutput & WaitCheck;

/** One poll: no fleet → covered at once. Throws HostsNotReadyError on FAILED hosts or a passed deadline. */
export async function waitForHostsStep(table: string, input: SignalOutput): Promise<WaitForHostsOutput> {
  if (!input.fleet) return { ...input, covered: true, failed: [], uncovered: [], deadlinePassed: false };
  const c = await checkHosts(table, {
    fleet: input.fleet,
    dataset: input.dataset,
    version: input.version,
    shards: input.shards,
    minReplicas: input.minReplicas,
    deadline: input.deadline,
  });
  return { ...input, ...c };
}

export type CutoverOutput = SignalOutput & {
  activeVersion: string;
  previousVersion: string | null;
  switched: boolean;
};

export async function cutoverStep(table: string, input: SignalOutput): Promise<CutoverOutput> {
  const r = await cutover(table, {
    dataset: input.dataset,
    version: input.version,
    expectedActiveVersion: input.expectedActiveVersion,
    issuedAt: input.issuedAt,
    token: input.token,
    fleet: input.fleet ?? undefined,
  });
  return { ...input, activeVersion: r.activeVersion, previousVersion: r.previousVersion, switched: r.switched };
}
