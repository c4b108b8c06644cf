/**
 * Queue side of event ingestion: send validated events with SendMessageBatch (groups of ≤ 10 entries and ≤ 240 KiB,
 * partial failures retried with backoff), park poison messages in the DLQ with a reason, list and redrive the DLQ.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
  SendMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { createHash } from "node:crypto";
import { EVENTS } from "../limits.js";
import { eventsSqs } from "./clients.js";
import { dedupId, type FerryEvent, serializeEvent } from "./model.js";

export const REASON_ATTRIBUTE = "reason";
export const PARKED_AT_ATTRIBUTE = "parkedAt";
export const SOURCE_MESSAGE_ATTRIBUTE = "sourceMessageId";

export const isFifoQueue = (urlOrArn: string) => urlOrArn.endsWith(".fifo");

export interface SendResult {
  /** index of the event in the caller's list */
  index: number;
  ok: boolean;
  messageId?: string;
  error?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Send events to the queue. Every event gets a result; `ok: false` only after `sendAttempts` tries (the caller
 * reports it as failed so the producer retries — a later duplicate is harmless).
 */
export async function sendEvents(
  queueUrl: string,
  events: FerryEvent[],
  deps: { client?: SQSClient; attempts?: number; concurrency?: number } = {},
): Promise<SendResult[]> {
  const client = deps.client ?? eventsSqs();
  const fifo = isFifoQueue(queueUrl);
  const attempts = deps.attempts ?? EVENTS.sendAttempts;
  const results: SendResult[] = events.map((_, index) => ({ index, ok: false, error: "not sent" }));
  // group into batches by count and bytes
  const groups: { index: number; body: string }[][] = [];
  let cur: { index: number; body: string }[] = [];
  let curBytes = 0;
  events.forEach((e, index) => {
    const body = serializeEvent(e);
    const bytes = Buffer.byteLength(body);
    if (cur.length > 0 && (cur.length >= EVENTS.sendBatchEntries || curBytes + bytes > EVENTS.sendBatchBytes)) {
      groups.push(cur);
      cur = [];
      curBytes = 0;
    }
    cur.push({ index, body });
    curBytes += bytes;
  });
  if (cur.length) groups.push(cur);

  const sendGroup = async (group: { index: number; body: string }[]) => {
    let pending = group;
    for (let attempt = 1; attempt <= attempts && pending.length > 0; attempt++) {
      if (attempt > 1) await sleep(EVENTS.sendBackoffMs * 2 ** (attempt - 2) * (0.5 + Math.random()));
      const entries: SendMessageBatchRequestEntry[] = pending.map((p) => {
        const e = events[p.index]!;
        const entry: SendMessageBatchRequestEntry = { Id: String(p.index), MessageBody: p.body };
        if (fifo) {
          entry.MessageGroupId = groupIdFor(e.entity);
          entry.MessageDeduplicationId = dedupId(e);
        }
        return entry;
      });
      try {
        const res = await client.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
        for (const s of res.Successful ?? []) {
          const i = Number(s.Id);
          results[i] = { index: i, ok: true, messageId: s.MessageId };
        }
        const failed = new Map((res.Failed ?? []).map((f) => [Number(f.Id), f]));
        for (const [i, f] of failed) {
          results[i] = { index: i, ok: false, error: `${f.Code ?? "error"}: ${f.Message ?? ""}`.trim() };
        }
        // sender faults are not worth retrying (the request itself is wrong); everything else is
        pending = pending.filter((p) => {
          const f = failed.get(p.index);
          return f !== undefined && !f.SenderFault;
        });
      } catch (err) {
        for (const p of pending) results[p.index] = { index: p.index, ok: false, error: (err as Error).message };
      }
    }
  };

  const concurrency = Math.max(1, deps.concurrency ?? EVENTS.sendConcurrency);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, groups.length) }, async () => {
      while (next < groups.length) await sendGroup(groups[next++]!);
    }),
  );
  return results;
}

/** FIFO MessageGroupId (≤ 128 chars of a limited alphabet): the entity itself when it fits, else its hash. */
export function groupIdFor(entity: string): string {
  return /^[A-Za-z0-9!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]{1,128}$/.test(entity)
    ? entity
    : createHash("sha256").update(entity).digest("hex");
}

/** Send a message that can never succeed to the DLQ with the reason as a message attribute. */
export async function parkMessage(
  dlqUrl: string,
  msg: { body: string; messageId: string; reason: string },
  deps: { client?: SQSClient } = {},
): Promise<void> {
  const client = deps.client ?? eventsSqs();
  const fifo = isFifoQueue(dlqUrl);
  await client.send(
    new SendMessageCommand({
      QueueUrl: dlqUrl,
      MessageBody: msg.body === "" ? " " : msg.body,
      MessageAttributes: {
        [REASON_ATTRIBUTE]: { DataType: "String", StringValue: msg.reason.slice(0, 1000) },
        [PARKED_AT_ATTRIBUTE]: { DataType: "Number", StringValue: String(Date.now()) },
        [SOURCE_MESSAGE_ATTRIBUTE]: { DataType: "String", StringValue: msg.messageId },
      },
      ...(fifo ? { MessageGroupId: "parked", MessageDeduplicationId: msg.messageId.slice(0, 128) } : {}),
    }),
  );
}

export interface DlqMessage {
  messageId: string;
  reason: string;
  body: string;
  receiveCount: number;
  sentAt: string | null;
}

const NO_REASON = "exceeded maxReceiveCount (failed repeatedly, e.g. a transient error that persisted)";

async function drain(
  client: SQSClient,
  queueUrl: string,
  visibility: number,
  max: number,
  onBatch: (msgs: Message[]) => Promise<void>,
): Promise<number> {
  let seen = 0;
  let empty = 0;
  while (seen < max && empty < 2) {
    const res = await client.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        VisibilityTimeout: visibility,
        WaitTimeSeconds: empty === 0 ? 0 : 1,
        MessageAttributeNames: ["All"],
        MessageSystemAttributeNames: ["All"],
      }),
    );
    const msgs = res.Messages ?? [];
    if (msgs.length === 0) {
      empty++;
      continue;
    }
    empty = 0;
    seen += msgs.length;
    await onBatch(msgs);
  }
  return seen;
}

async function queueDepth(client: SQSClient, queueUrl: string): Promise<number> {
  const res = await client.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    }),
  );
  return Number(res.Attributes?.ApproximateNumberOfMessages ?? 0);
}

/** List the DLQ without consuming it: messages are received, then made visible again. */
export async function listDlq(dlqUrl: string, deps: { client?: SQSClient; max?: number } = {}): Promise<DlqMessage[]> {
  const client = deps.client ?? eventsSqs();
  const out = new Map<string, DlqMessage>();
  const handles: { Id: string; ReceiptHandle: string }[] = [];
  await drain(client, dlqUrl, 30, deps.max ?? 10_000, async (msgs) => {
    for (const m of msgs) {
      handles.push({ Id: String(handles.length), ReceiptHandle: m.ReceiptHandle! });
      if (out.has(m.MessageId!)) continue;
      const sent = m.Attributes?.SentTimestamp;
      out.set(m.MessageId!, {
        messageId: m.MessageId!,
        reason: m.MessageAttributes?.[REASON_ATTRIBUTE]?.StringValue ?? NO_REASON,
        body: m.Body ?? "",
        receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? 0),
        sentAt: sent ? new Date(Number(sent)).toISOString() : null,
      });
    }
  });
  for (let i = 0; i < handles.length; i += 10) {
    const batch = handles.slice(i, i + 10).map((h, j) => ({ ...h, Id: String(j), VisibilityTimeout: 0 }));
    await client.send(new ChangeMessageVisibilityBatchCommand({ QueueUrl: dlqUrl, Entries: batch }));
  }
  return [...out.values()];
}

export interface RedriveResult {
  moved: number;
  failed: number;
}

/**
 * Move the DLQ's messages back to the source queue: send, then delete from the DLQ (a crash in between yields a
 * duplicate, which the consumer counts and ignores). Moves at most the number present when it started, so messages
 * parked again meanwhile are not cycled.
 */
export async function redriveDlq(
  dlqUrl: string,
  queueUrl: string,
  deps: { client?: SQSClient } = {},
): Promise<RedriveResult> {
  const client = deps.client ?? eventsSqs();
  const fifo = isFifoQueue(queueUrl);
  const max = await queueDepth(client, dlqUrl);
  let moved = 0;
  let failed = 0;
  if (max === 0) return { moved, failed };
  await drain(client, dlqUrl, 60, max, async (msgs) => {
    const res = await client.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: msgs.map((m, i) => {
          const entry: SendMessageBatchRequestEntry = { Id: String(i), MessageBody: m.Body ?? "" };
          if (fifo) {
            let group = "redrive";
            try {
              group = groupIdFor(String(JSON.parse(m.Body ?? "").entity ?? "redrive"));
            } catch {}
            entry.MessageGroupId = group;
            entry.MessageDeduplicationId = createHash("sha256").update(`redrive:${m.MessageId}`).digest("hex");
          }
          return entry;
        }),
      }),
    );
    const ok = new Set((res.Successful ?? []).map((s) => Number(s.Id)));
    failed += msgs.length - ok.size;
    const del = msgs.filter((_, i) => ok.has(i)).map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! }));
    if (del.length) await client.send(new DeleteMessageBatchCommand({ QueueUrl: dlqUrl, Entries: del }));
    moved += del.length;
  });
  return { moved, failed };
}

/** Visible + in-flight messages of a queue (for draining checks). */
export async function queueCounts(
  queueUrl: string,
  deps: { client?: SQSClient } = {},
): Promise<{ visible: number; inFlight: number; delayed: number }> {
  const client = deps.client ?? eventsSqs();
  const res = await client.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
      ],
    }),
  );
  const a = res.Attributes ?? {};
  return {
    visible: Number(a.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0),
    delayed: Number(a.ApproximateNumberOfMessagesDelayed ?? 0),
  };
}
