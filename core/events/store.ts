/**
 * The events table: per entity one `latest` item and one history item per distinct event. Applying an event is two
 * single-item conditional writes, each idempotent and commutative, so the final state does not depend on delivery
 * order or duplication (docs/events.md "Apply rule"):
 *
 *   1. PutItem history `H#<time:16>#<id>` if attribute_not_exists(pk)        — a set insert
 *   2. PutItem latest  `L` if the stored (t, id) is smaller, or equal with the same content — a max register
 *
 * Outcome: `duplicate` when (1) found the item (the event was recorded before), else `applied` when (2) wrote,
 * else `stale` (recorded in history, older than the stored latest). Step (2) runs for duplicates too: a previous
 * attempt may have crashed between (1) and (2); the condition makes the repeat a no-op when it had landed.
 */
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
} from "@aws-sdk/client-dynamodb";
import { NotFoundError, TransientError } from "../errors.js";
import { EVENTS } from "../limits.js";
import { eventsDynamo } from "./clients.js";
import { compareEvents, contentDigest, type EntityState, type FerryEvent } from "./model.js";

export type ApplyOutcome = "applied" | "duplicate" | "stale";

export const EVENTS_PK = "pk";
export const EVENTS_SK = "sk";
export const LATEST_SK = "L";
export const HISTORY_PREFIX = "H#";

export const eventKeys = {
  pk: (entity: string) => `E#${entity}`,
  latest: (entity: string) => ({ pk: `E#${entity}`, sk: LATEST_SK }),
  history: (e: Pick<FerryEvent, "entity" | "time" | "id">) => ({
    pk: `E#${e.entity}`,
    sk: `${HISTORY_PREFIX}${String(e.time).padStart(16, "0")}#${e.id}`,
  }),
};

/** Counters of requests issued (for writesPerEvent); `latestSkipped`: latest writes the floor made unnecessary. */
export const storeStats = { writeRequests: 0, readRequests: 0, latestSkipped: 0 };

/**
 * The latest floor: per (table, entity) the (time, id) of an event this process has seen written as the entity's
 * `latest`. `latest` only grows (a max register), so the stored value is at least the floor, and a `latest` write of
 * an event that is not greater than the floor would fail its condition (or rewrite the very same event: a no-op) —
 * updateLatest answers `false` without a request. Learned only from writes that succeeded (a write whose outcome is
 * unknown teaches nothing), so skipping never loses an update. Bounded: the oldest entries are dropped first.
 */
const latestFloor = new Map<string, { time: number; id: string }>();

function floorKey(table: string, entity: string): string {
  return `${table}\u0000${entity}`;
}

function raiseFloor(table: string, e: FerryEvent): void {
  const k = floorKey(table, e.entity);
  const cur = latestFloor.get(k);
  if (cur && compareEvents(e, cur) <= 0) return;
  latestFloor.delete(k); // re-insert: most recently raised last
  latestFloor.set(k, { time: e.time, id: e.id });
  if (latestFloor.size > EVENTS.latestFloorEntries) latestFloor.delete(latestFloor.keys().next().value!);
}

/** Forget every floor (tests that rewrite a table behind the store's back). */
export function clearLatestFloor(): void {
  latestFloor.clear();
}

export interface StoreDeps {
  table: string;
  client?: DynamoDBClient;
}

function item(e: FerryEvent, key: { pk: string; sk: string }, h: string): Record<string, AttributeValue> {
  return {
    pk: { S: key.pk },
    sk: { S: key.sk },
    en: { S: e.entity },
    et: { N: String(e.time) },
    eid: { S: e.id },
    ty: { S: e.type },
    p: { S: JSON.stringify(e.payload) },
    h: { S: h },
  };
}

function fromItem(it: Record<string, AttributeValue>): FerryEvent {
  return {
    entity: it.en!.S!,
    id: it.eid!.S!,
    time: Number(it.et!.N!),
    type: it.ty!.S!,
    payload: JSON.parse(it.p!.S!),
  };
}

function isConditionFailed(err: unknown): boolean {
  return (
    err instanceof ConditionalCheckFailedException ||
    (err as { name?: string })?.name === "ConditionalCheckFailedException"
  );
}

function transient(what: string, err: unknown): TransientError {
  return new TransientError(
    `events table: ${what} failed: ${(err as Error)?.message ?? String(err)}`,
    {},
    { cause: err },
  );
}

/** Record an event in its entity's history (conditional put). Returns false when it was recorded before. */
export async function recordHistory(e: FerryEvent, deps: StoreDeps, h = contentDigest(e)): Promise<boolean> {
  const client = deps.client ?? eventsDynamo();
  storeStats.writeRequests++;
  try {
    await client.send(
      new PutItemCommand({
        TableName: deps.table,
        Item: item(e, eventKeys.history(e), h),
        ConditionExpression: "attribute_not_exists(pk)",
      }),
    );
    return true;
  } catch (err) {
    if (!isConditionFailed(err)) throw transient(`history write for ${e.entity}/${e.id}`, err);
    return false;
  }
}

/**
 * Make the event the entity's latest unless a greater (time, id) is stored (conditional put: a max register).
 * Re-writing the same event with the same content succeeds (idempotent repair after a crash). Returns whether it
 * wrote.
 */
export async function updateLatest(e: FerryEvent, deps: StoreDeps, h = contentDigest(e)): Promise<boolean> {
  const floor = latestFloor.get(floorKey(deps.table, e.entity));
  if (floor && compareEvents(e, floor) <= 0) {
    storeStats.latestSkipped++;
    return false;
  }
  const client = deps.client ?? eventsDynamo();
  storeStats.writeRequests++;
  try {
    await client.send(
      new PutItemCommand({
        TableName: deps.table,
        Item: item(e, eventKeys.latest(e.entity), h),
        ConditionExpression:
          "attribute_not_exists(pk) OR et < :t OR (et = :t AND eid < :id) OR (et = :t AND eid = :id AND h = :h)",
        ExpressionAttributeValues: { ":t": { N: String(e.time) }, ":id": { S: e.id }, ":h": { S: h } },
      }),
    );
    raiseFloor(deps.table, e);
    return true;
  } catch (err) {
    if (!isConditionFailed(err)) throw transient(`latest write for ${e.entity}/${e.id}`, err);
    return false;
  }
}

/** Apply one event (two conditional writes). Throws TransientError on anything but a failed condition. */
export async function applyEvent(e: FerryEvent, deps: StoreDeps): Promise<ApplyOutcome> {
  const h = contentDigest(e);
  const fresh = await recordHistory(e, deps, h);
  // always attempt latest, also for a duplicate: an earlier attempt may have stopped between the two writes
  const wrote = await updateLatest(e, deps, h);
  return !fresh ? "duplicate" : wrote ? "applied" : "stale";
}

/** The stored state of one entity: latest and the newest `historyLimit` history entries, oldest first. */
export async function getEntityState(
  entity: string,
  deps: StoreDeps & { historyLimit?: number },
): Promise<EntityState> {
  const client = deps.client ?? eventsDynamo();
  const limit = deps.historyLimit ?? EVENTS.historyLimit;
  storeStats.readRequests++;
  const latestRes = await client.send(
    new GetItemCommand({ TableName: deps.table, Key: marshalKey(eventKeys.latest(entity)), ConsistentRead: true }),
  );
  const history: FerryEvent[] = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    storeStats.readRequests++;
    const res = await client.send(
      new QueryCommand({
        TableName: deps.table,
        KeyConditionExpression: "pk = :pk AND begins_with(sk, :h)",
        ExpressionAttributeValues: { ":pk": { S: eventKeys.pk(entity) }, ":h": { S: HISTORY_PREFIX } },
        ScanIndexForward: false,
        ConsistentRead: true,
        Limit: Math.min(1000, limit - history.length),
        ExclusiveStartKey: start,
      }),
    );
    for (const it of res.Items ?? []) history.push(fromItem(it));
    start = res.LastEvaluatedKey;
  } while (start && history.length < limit);
  history.reverse();
  const latest = latestRes.Item ? fromItem(latestRes.Item) : null;
  if (!latest && history.length === 0) throw new NotFoundError(`entity ${entity}: not found`, { key: entity });
  return { entity, latest, history };
}

function marshalKey(k: { pk: string; sk: string }): Record<string, AttributeValue> {
  return { pk: { S: k.pk }, sk: { S: k.sk } };
}
