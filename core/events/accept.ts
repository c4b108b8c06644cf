/**
 * Accept a batch of events from a producer: split the body (JSON array or JSONL), validate each event, send the
 * valid ones to the queue, report per event. The producer never waits for consumers: the answer comes as soon as
 * SQS holds the events.
 *
 * Status: 202 when every valid event is queued (invalid ones are listed as rejected — resending them cannot help);
 * 503 when some valid event could not be queued after retries (those are `failed`: resend them, duplicates are
 * harmless); 400 for an unusable body; 413 for too many events or bytes.
 */
import type { SQSClient } from "@aws-sdk/client-sqs";
import { isFerryError } from "../errors.js";
import { EVENTS } from "../limits.js";
import { type FerryEvent, parseEvent, splitBody } from "./model.js";
import { sendEvents } from "./queue.js";

export type EventResult =
  | { index: number; status: "accepted"; entity: string; id: string; messageId?: string }
  | { index: number; status: "rejected"; reason: string; line?: number }
  | { index: number; status: "failed"; entity: string; id: string; reason: string };

export interface AcceptResponse {
  statusCode: 202 | 400 | 413 | 503;
  accepted: number;
  rejected: number;
  failed: number;
  results: EventResult[];
  error?: string;
}

export async function acceptBatch(body: string, deps: { queueUrl: string; sqs?: SQSClient }): Promise<AcceptResponse> {
  const empty = (statusCode: 400 | 413, error: string): AcceptResponse => ({
    statusCode,
    accepted: 0,
    rejected: 0,
    failed: 0,
    results: [],
    error,
  });
  const bytes = Buffer.byteLength(body);
  if (bytes > EVENTS.maxRequestBytes) {
    return empty(413, `request body is ${bytes} bytes, at most ${EVENTS.maxRequestBytes} allowed`);
  }
  let items: ReturnType<typeof splitBody>;
  try {
    items = splitBody(body);
  } catch (err) {
    if (isFerryError(err)) return empty(400, err.message);
    throw err;
  }
  if (items.length > EVENTS.maxBatchEvents) {
    return empty(413, `${items.length} events in one request, at most ${EVENTS.maxBatchEvents} allowed`);
  }
  const results: EventResult[] = new Array(items.length);
  const valid: FerryEvent[] = [];
  const validIndex: number[] = [];
  for (const it of items) {
    if (it.error !== undefined) {
      results[it.index] = { index: it.index, status: "rejected", reason: it.error, line: it.line };
      continue;
    }
    const p = parseEvent(it.value);
    if (!p.ok) {
      const where = it.line !== undefined ? `line ${it.line}: ` : `event ${it.index}: `;
      results[it.index] = { index: it.index, status: "rejected", reason: where + p.reason, line: it.line };
      continue;
    }
    valid.push(p.event);
    validIndex.push(it.index);
  }
  const sent = valid.length ? await sendEvents(deps.queueUrl, valid, { client: deps.sqs }) : [];
  let accepted = 0;
  let failed = 0;
  sent.forEach((s, j) => {
    const index = validIndex[j]!;
    const e = valid[j]!;
    if (s.ok) {
      accepted++;
      results[index] = { index, status: "accepted", entity: e.entity, id: e.id, messageId: s.messageId };
    } else {
      failed++;
      results[index] = { index, status: "failed", entity: e.entity, id: e.id, reason: s.error ?? "not queued" };
    }
  });
  return {
    statusCode: failed > 0 ? 503 : 202,
    accepted,
    rejected: items.length - valid.length,
    failed,
    results,
  };
}
