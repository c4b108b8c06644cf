/**
 * The keyed-entity event model: schema, normalization, ordering, and the reference ("in-order, exactly-once")
 * model that the stored state must equal whatever the delivery order and duplication. See docs/events.md.
 *
 * An event is `{entity, id, time, type, payload}`. Its identity is `(entity, time, id)`: two deliveries with the
 * same identity are the same event. Per entity, the event with the greatest `(time, id)` is `latest`; every distinct
 * event is kept in the entity's history, viewed in `(time, id)` order.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { InputError } from "../errors.js";
import { EVENTS } from "../limits.js";

/** A normalized event: `time` is epoch milliseconds. */
export interface FerryEvent {
  entity: string;
  id: string;
  time: number;
  type: string;
  payload: unknown;
}

/** Largest accepted time: the last millisecond a JS Date can represent (fits the 16-digit sort key). */
export const MAX_EVENT_TIME = 8_640_000_000_000_000;

const utf8Bytes = (s: string) => Buffer.byteLength(s, "utf8");

/**
 * Event ids are printable ASCII (0x21-0x7E): they take part in the `(time, id)` order, and within ASCII the order
 * of JavaScript strings, of DynamoDB string comparisons (UTF-8 bytes) and of sort keys is the same.
 */
const ID_RE = /^[\x21-\x7e]+$/;

const timeSchema = z.union([
  z.number().int("must be an integer number of epoch milliseconds").min(0).max(MAX_EVENT_TIME),
  z
    .string()
    .min(1)
    .transform((s, ctx) => {
      // ISO-8601 only (a date, optionally with a time): Date.parse alone accepts too many shapes
      if (!/^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(s)) {
        ctx.addIssue({ code: "custom", message: `"${s}" is not epoch milliseconds or an ISO-8601 time` });
        return z.NEVER;
      }
      const ms = Date.parse(s);
      if (!Number.isFinite(ms) || ms < 0) {
        ctx.addIssue({ code: "custom", message: `"${s}" is not a valid ISO-8601 time at or after 1970` });
        return z.NEVER;
      }
      return ms;
    }),
]);

export const eventSchema = z
  .object({
    entity: z
      .string()
      .min(1, "must not be empty")
      .refine((s) => utf8Bytes(s) <= EVENTS.maxEntityKeyBytes, `must be at most ${EVENTS.maxEntityKeyBytes} bytes`),
    id: z
      .string()
      .min(1, "must not be empty")
      .refine((s) => utf8Bytes(s) <= EVENTS.maxEventIdBytes, `must be at most ${EVENTS.maxEventIdBytes} bytes`)
      .refine((s) => ID_RE.test(s), "must be printable ASCII without spaces"),
    time: timeSchema,
    type: z
      .string()
      .min(1, "must not be empty")
      .max(EVENTS.maxTypeChars, `must be at most ${EVENTS.maxTypeChars} characters`),
    payload: z
      .unknown()
      .optional()
      .transform((p) => (p === undefined ? null : p))
      .refine(
        (p) => utf8Bytes(JSON.stringify(p)) <= EVENTS.maxPayloadBytes,
        `must be at most ${EVENTS.maxPayloadBytes} bytes as JSON`,
      ),
  })
  .strict();

export type EventInput = z.input<typeof eventSchema>;

export type ParseResult = { ok: true; event: FerryEvent } | { ok: false; reason: string };

/** Validate one decoded JSON value as an event. Never throws. */
export function parseEvent(value: unknown): ParseResult {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { ok: false, reason: "an event must be a JSON object" };
  }
  const r = eventSchema.safeParse(value);
  if (!r.success) {
    const reason = r.error.issues
      .map((i) => `${i.path.length ? `field '${i.path.join(".")}'` : "event"}: ${i.message}`)
      .join("; ");
    return { ok: false, reason };
  }
  const event = r.data as FerryEvent;
  const bytes = utf8Bytes(serializeEvent(event));
  if (bytes > EVENTS.maxEventBytes) {
    return { ok: false, reason: `event is ${bytes} bytes as JSON, at most ${EVENTS.maxEventBytes} allowed` };
  }
  return { ok: true, event };
}

/** Validate a raw text (one SQS body, one JSONL line). Never throws. */
export function parseEventText(text: string): ParseResult {
  if (utf8Bytes(text) > EVENTS.maxEventBytes * 2) {
    return { ok: false, reason: `message is larger than ${EVENTS.maxEventBytes * 2} bytes` };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { ok: false, reason: `not valid JSON (${(e as Error).message})` };
  }
  return parseEvent(value);
}

/** The canonical JSON of an event (field order fixed): the SQS message body. */
export function serializeEvent(e: FerryEvent): string {
  return JSON.stringify({ entity: e.entity, id: e.id, time: e.time, type: e.type, payload: e.payload });
}

/** Items of a request body: a JSON array, one JSON object, or JSONL (one value per line; blank lines skipped). */
export interface BodyItem {
  /** 0-based position in the batch */
  index: number;
  /** 1-based line for JSONL bodies */
  line?: number;
  value?: unknown;
  /** set when the item could not be decoded */
  error?: string;
}

/** Split a request body into items. Throws InputError only when the body as a whole is unusable. */
export function splitBody(body: string, source = "request body"): BodyItem[] {
  const trimmed = body.trim();
  if (trimmed === "") throw new InputError(`${source}: empty body, expected a JSON array or JSON lines`);
  if (trimmed.startsWith("[")) {
    let arr: unknown;
    try {
      arr = JSON.parse(trimmed);
    } catch (e) {
      throw new InputError(`${source}: not a valid JSON array (${(e as Error).message})`, { source });
    }
    if (!Array.isArray(arr)) throw new InputError(`${source}: expected a JSON array`, { source });
    return arr.map((value, index) => ({ index, value }));
  }
  const items: BodyItem[] = [];
  const lines = body.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "") continue;
    const index = items.length;
    try {
      items.push({ index, line: i + 1, value: JSON.parse(line) });
    } catch (e) {
      items.push({ index, line: i + 1, error: `line ${i + 1}: not valid JSON (${(e as Error).message})` });
    }
  }
  return items;
}

/** `(time, id)` order. Ids are ASCII (see ID_RE), so JS string order equals DynamoDB's byte order. */
export function compareEvents(a: Pick<FerryEvent, "time" | "id">, b: Pick<FerryEvent, "time" | "id">): number {
  if (a.time !== b.time) return a.time < b.time ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Identity of an event: deliveries with the same identity are one event. */
export function eventIdentity(e: Pick<FerryEvent, "entity" | "time" | "id">): string {
  return `${e.entity}\u0000${e.time}\u0000${e.id}`;
}

/** Content digest (type + payload): an identical redelivery may rewrite `latest`, a conflicting one may not. */
export function contentDigest(e: Pick<FerryEvent, "type" | "payload">): string {
  return createHash("sha256")
    .update(JSON.stringify([e.type, e.payload]))
    .digest("base64url")
    .slice(0, 22);
}

/** Deduplication id for FIFO queues (≤ 128 chars). */
export function dedupId(e: Pick<FerryEvent, "entity" | "time" | "id">): string {
  return createHash("sha256").update(eventIdentity(e)).digest("hex");
}

export interface EntityState {
  entity: string;
  latest: FerryEvent | null;
  history: FerryEvent[];
}

/**
 * The reference model: apply the distinct events (first delivery of each identity wins its content) exactly once in
 * `(time, id)` order. The stored state after ANY delivery order with ANY duplication must equal this.
 */
export function expectedStates(events: Iterable<FerryEvent>): Map<string, EntityState> {
  const seen = new Map<string, FerryEvent>();
  for (const e of events) {
    const k = eventIdentity(e);
    if (!seen.has(k)) seen.set(k, e);
  }
  const byEntity = new Map<string, EntityState>();
  for (const e of seen.values()) {
    let s = byEntity.get(e.entity);
    if (!s) {
      s = { entity: e.entity, latest: null, history: [] };
      byEntity.set(e.entity, s);
    }
    s.history.push(e);
  }
  for (const s of byEntity.values()) {
    s.history.sort(compareEvents);
    s.latest = s.history[s.history.length - 1] ?? null;
  }
  return byEntity;
}

/** Differences between an expected and an actual state (empty = equal). */
export function diffState(expected: EntityState, actual: EntityState | null): string[] {
  const out: string[] = [];
  if (!actual) return [`entity ${expected.entity}: missing`];
  const same = (a: FerryEvent | null, b: FerryEvent | null) =>
    (a === null && b === null) || (a !== null && b !== null && serializeEvent(a) === serializeEvent(b));
  if (!same(expected.latest, actual.latest)) {
    out.push(
      `entity ${expected.entity}: latest is ${actual.latest ? `${actual.latest.time}/${actual.latest.id}` : "none"}, expected ${expected.latest ? `${expected.latest.time}/${expected.latest.id}` : "none"}`,
    );
  }
  const n = Math.max(expected.history.length, actual.history.length);
  for (let i = 0; i < n; i++) {
    const a = expected.history[i] ?? null;
    const b = actual.history[i] ?? null;
    if (!same(a, b)) {
      out.push(
        `entity ${expected.entity}: history[${i}] is ${b ? `${b.time}/${b.id}` : "none"}, expected ${a ? `${a.time}/${a.id}` : "none"} (${actual.history.length} vs ${expected.history.length} entries)`,
      );
      break;
    }
  }
  return out;
}
