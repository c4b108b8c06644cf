/**
 * Dataset items of the control table: pk DATASET#<d>, sk META — the dataset's last load config, its active and
 * previous version, and its fleet. Activation is one conditional update (compare-and-set on activeVersion), so two
 * concurrent activations cannot both win and the previous version is always the one that was really active.
 */
import type { LoadRequest } from "../pipeline/types.js";
import { ConflictError, NotFoundError } from "../errors.js";
import { keys } from "./keys.js";
import { getItem, putIfAbsent, updateIf } from "./table.js";
import { type VersionItem, getVersion, listVersions, transitionVersion } from "./versions.js";

/** the load settings kept on the dataset item (the request without its version) */
export type DatasetConfig = Omit<LoadRequest, "version">;

export interface DatasetItem {
  pk: string;
  sk: string;
  dataset: string;
  config?: DatasetConfig;
  activeVersion?: string;
  previousVersion?: string;
  fleet?: string;
  createdAt: string;
  updatedAt: string;
  /** epoch ms (same fields as core/control/fleet.ts DatasetActive) */
  activatedAt?: number;
  activeSeq?: number;
  activeIssuedAt?: number;
  activeToken?: string;
}

export async function getDataset(table: string, dataset: string): Promise<DatasetItem | undefined> {
  return (await getItem(table, keys.dataset(dataset))) as DatasetItem | undefined;
}

/** Create the dataset item if absent; record the latest config (and fleet). Never touches active/previous. */
export async function upsertDatasetConfig(table: string, config: DatasetConfig): Promise<void> {
  const now = new Date().toISOString();
  const item: DatasetItem = {
    ...keys.dataset(config.dataset),
    dataset: config.dataset,
    config,
    fleet: config.fleet,
    createdAt: now,
    updatedAt: now,
  };
  if (await putIfAbsent(table, item as unknown as Record<string, unknown>)) return;
  await updateIf({
    TableName: table,
    Key: keys.dataset(config.dataset),
    UpdateExpression: config.fleet
      ? "SET config = :c, updatedAt = :now, fleet = :f"
      : "SET config = :c, updatedAt = :now REMOVE fleet",
    ExpressionAttributeValues: config.fleet
      ? { ":c": config, ":now": now, ":f": config.fleet }
      : { ":c": config, ":now": now },
  });
}

/**
 * Make `version` the dataset's active version; the one active before becomes previousVersion. Compare-and-set:
 * succeeds only if activeVersion is still what was read. Activating the version that is already active is a no-op.
 * The version must be published (STAGED or LOADING); it becomes ACTIVE.
 */
export async function activateVersion(
  table: string,
  dataset: string,
  version: string,
  token?: string,
): Promise<{ activeVersion: string; previousVersion?: string; changed: boolean }> {
  const v = await getVersion(table, dataset, version);
  if (!v) throw new NotFoundError(`version ${dataset}/${version} is not registered`);
  for (let attempt = 0; attempt < 5; attempt++) {
    const ds = await getDataset(table, dataset);
    if (ds?.activeVersion === version) {
      if (v.status !== "ACTIVE") await transitionVersion(table, dataset, version, "ACTIVE");
      return { activeVersion: version, previousVersion: ds.previousVersion, changed: false };
    }
    if (!["STAGED", "LOADING", "ACTIVE"].includes(v.status)) {
      throw new ConflictError(
        `version ${dataset}/${version} is ${v.status}: only a published version can be activated`,
      );
    }
    const nowMs = Date.now();
    const prev = ds?.activeVersion;
    // same fields and invariants as core/control/fleet.ts cutover(): activeSeq counts every move of
    // activeVersion, activeIssuedAt never goes backwards, activeToken names who moved it
    const values: Record<string, unknown> = {
      ":v": version,
      ":now": nowMs,
      ":iso": new Date(nowMs).toISOString(),
      ":d": dataset,
      ":zero": 0,
      ":one": 1,
      ":tok": token ?? `activate@${nowMs}`,
    };
    let set =
      "SET activeVersion = :v, activeSeq = if_not_exists(activeSeq, :zero) + :one, activeIssuedAt = :now, activeToken = :tok, activatedAt = :now, updatedAt = :iso, dataset = :d, createdAt = if_not_exists(createdAt, :iso)";
    let cond = "(attribute_not_exists(activeIssuedAt) OR activeIssuedAt < :now)";
    if (prev) {
      set += ", previousVersion = :prev";
      cond += " AND activeVersion = :prev";
      values[":prev"] = prev;
    } else {
      cond += " AND attribute_not_exists(activeVersion)";
    }
    const out = await updateIf({
      TableName: table,
      Key: keys.dataset(dataset),
      UpdateExpression: set,
      ConditionExpression: cond,
      ExpressionAttributeValues: values,
    });
    if (out) {
      await transitionVersion(table, dataset, version, "ACTIVE");
      return { activeVersion: version, previousVersion: prev, changed: true };
    }
    // someone else activated in between: read again and retry the compare-and-set
  }
  throw new ConflictError(`could not activate ${dataset}/${version}: the active version keeps changing`);
}

/**
 * Retire published versions beyond `keep` (newest first by creation), never the active or the previous one.
 * Returns the versions retired. Their S3 objects stay until a lifecycle rule or `ferry` GC removes them.
 */
export async function retireOldVersions(table: string, dataset: string, keep: number): Promise<string[]> {
  const ds = await getDataset(table, dataset);
  const protectedVersions = new Set([ds?.activeVersion, ds?.previousVersion].filter(Boolean));
  const all = (await listVersions(table, dataset))
    .filter((v) => ["STAGED", "ACTIVE"].includes(v.status))
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const retired: string[] = [];
  let kept = 0;
  for (const v of all) {
    if (protectedVersions.has(v.version) || kept < keep) {
      kept++;
      continue;
    }
    await transitionVersion(table, dataset, v.version, "RETIRED");
    retired.push(v.version);
  }
  return retired;
}

export type { VersionItem };
