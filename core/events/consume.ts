/**
 * Consume queued events: decode, validate, apply. Messages that can never succeed (not JSON, schema violation,
 * oversize) are parked in the DLQ with the reason and count as `parked` — retrying them would only delay them to
 * the same end. Anything else that goes wrong throws (TransientError) so the record is reported as a batch item
 * failure and SQS delivers it again (after maxReceiveCount attempts SQS moves it to the DLQ itself).
 *
 * A batch is applied with a plan (BatchApplyPlan): every event gets its own conditional history write, but the
 * `latest` write is made once per entity per batch, by the batch's greatest event of that entity — the others of
 * the entity are superseded within the batch and wait for that write (if it fails, they fail too and are retried
 * with it). Since `latest` is a max register, this is the same final state with fewer writes.
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { SQSClient } from "@aws-sdk/client-sqs";
import { TransientError } from "../errors.js";
import { compareEvents, contentDigest, type FerryEvent, type ParseResult, parseEventText } from "./model.js";
import { parkMessage } from "./queue.js";
import { eventsDynamo } from "./clients.js";
import { type ApplyOutcome, applyEvent, recordHistory, type StoreDeps, updateLatest } from "./store.js";

export type ConsumeOutcome = ApplyOutcome | "parked";

export interface QueuedMessage {
  messageId: string;
  body: string;
}

export interface ConsumeDeps {
  table: string;
  dlqUrl: string;
  dynamo?: DynamoDBClient;
  sqs?: SQSClient;
}

export interface ConsumeResult {
  outcome: ConsumeOutcome;
  entity?: string;
  reason?: string;
}

async function park(msg: QueuedMessage, reason: string, deps: ConsumeDeps): Promise<ConsumeResult> {
  try {
    await parkMessage(deps.dlqUrl, { body: msg.body, messageId: msg.messageId, reason }, { client: deps.sqs });
  } catch (err) {
    throw new TransientError(`parking message ${msg.messageId} failed: ${(err as Error).message}`, {}, { cause: err });
  }
  return { outcome: "parked", reason };
}

/** Consume one message on its own (two conditional writes for a valid event). */
export async function consumeMessage(msg: QueuedMessage, deps: ConsumeDeps): Promise<ConsumeResult> {
  const parsed = parseEventText(msg.body);
  if (!parsed.ok) return park(msg, parsed.reason, deps);
  const outcome = await applyEvent(parsed.event, { table: deps.table, client: deps.dynamo });
  return { outcome, entity: parsed.event.entity };
}

/**
 * A plan for one batch whose records are consumed concurrently (standard queues). Do not use it when records are
 * consumed one after another (FIFO): a superseded record waits for its entity's greatest record.
 */
export class BatchApplyPlan {
  private readonly parsed = new Map<string, ParseResult>();
  /** entity → messageId of the batch's greatest event of that entity */
  private readonly writer = new Map<string, string>();
  private readonly writerEvent = new Map<string, FerryEvent>();
  /** entity → the latest write of that entity's greatest event */
  private readonly latest = new Map<string, Promise<boolean>>();
  private readonly resolvers = new Map<string, { resolve: (v: boolean) => void; reject: (e: unknown) => void }>();
  /** one client for the whole batch (resolving the shared client per write costs an environment lookup each) */
  private readonly store: StoreDeps;

  constructor(
    msgs: QueuedMessage[],
    private readonly deps: ConsumeDeps,
  ) {
    this.store = { table: deps.table, client: deps.dynamo ?? eventsDynamo() };
    const best = new Map<string, { id: string; e: FerryEvent }>();
    for (const m of msgs) {
      const p = parseEventText(m.body);
      this.parsed.set(m.messageId, p);
      if (!p.ok) continue;
      const cur = best.get(p.event.entity);
      if (!cur || compareEvents(p.event, cur.e) > 0) best.set(p.event.entity, { id: m.messageId, e: p.event });
    }
    for (const [entity, b] of best) {
      this.writer.set(entity, b.id);
      this.writerEvent.set(entity, b.e);
      const promise = new Promise<boolean>((resolve, reject) => this.resolvers.set(entity, { resolve, reject }));
      promise.catch(() => {}); // observed by the waiting records; never an unhandled rejection
      this.latest.set(entity, promise);
    }
  }

  /** Latest writes per batch for these messages (for writesPerEvent accounting). */
  get entities(): number {
    return this.writer.size;
  }

  async consume(msg: QueuedMessage): Promise<ConsumeResult> {
    const parsed = this.parsed.get(msg.messageId) ?? parseEventText(msg.body);
    if (!parsed.ok) return park(msg, parsed.reason, this.deps);
    const e = parsed.event;
    const store = this.store;
    const h = contentDigest(e);
    if (this.writer.get(e.entity) !== msg.messageId) {
      // superseded within the batch: record history, then wait for the entity's greatest event to land.
      // A second delivery of that very event in the same batch is a duplicate without asking the table.
      const w = this.writerEvent.get(e.entity)!;
      const same = compareEvents(w, e) === 0 && contentDigest(w) === h;
      const fresh = same ? false : await recordHistory(e, store, h);
      const p = this.latest.get(e.entity);
      if (p) await p; // rejects when that write failed: this record fails too and is retried
      return { outcome: fresh ? "stale" : "duplicate", entity: e.entity };
    }
    const r = this.resolvers.get(e.entity)!;
    try {
      const fresh = await recordHistory(e, store, h);
      const wrote = await updateLatest(e, store, h);
      r.resolve(wrote);
      return { outcome: !fresh ? "duplicate" : wrote ? "applied" : "stale", entity: e.entity };
    } catch (err) {
      r.reject(err);
      throw err;
    }
  }
}
