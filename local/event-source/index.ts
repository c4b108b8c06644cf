/**
 * Emulates the Lambda SQS event source mapping on the local stack: pollers long-poll the queue, gather batches
 * (BatchSize, MaximumBatchingWindowInSeconds), invoke the handler with an SQSEvent shaped like Lambda's, never run
 * more than MaximumConcurrency invocations at once, and delete what succeeded:
 *
 * - handler resolves, ReportBatchItemFailures off → every record deleted;
 * - handler resolves, ReportBatchItemFailures on → records listed in batchItemFailures stay (they come back after the
 *   queue's visibility timeout), the rest are deleted. An invalid response (an itemIdentifier that is empty or not in
 *   the batch) fails the whole batch, as Lambda does;
 * - handler throws or exceeds the function timeout → nothing deleted; the whole batch comes back after the
 *   visibility timeout.
 *
 * Poison messages reach the DLQ through the queue's own redrive policy: fauxqs 1.9.2 moves a message whose receive
 * count would exceed maxReceiveCount to the deadLetterTargetArn queue on receive (measured in
 * test/integration/local-event-source.test.ts), exactly like SQS, so the poller does nothing special.
 *
 * FIFO queues: records of one message group are handed over in order; when a record fails, the later records of its
 * group in the same batch are treated as failed too (Lambda requires the handler to report them; the emulator enforces
 * it and counts `fifoBlocked`), other groups are unaffected. Note: fauxqs 1.9.2 hands out at most ONE message per
 * group per ReceiveMessage and locks the group while it is in flight (real SQS returns several of a group at once), so
 * locally a batch holds at most one record per group and per-group order is kept by the queue itself.
 */
import { randomUUID } from "node:crypto";
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
} from "@aws-sdk/client-sqs";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { awsRegion, sqs } from "../../core/aws/clients.js";
import { ConfigError, TransientError } from "../../core/errors.js";
import { LOCAL_ESM } from "../../core/limits.js";

// biome-ignore lint/suspicious/noConfusingVoidType: handlers that return nothing (Promise<void>) must fit
export type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | undefined | void>;

export interface EventSourceMappingOptions {
  queueUrl: string;
  handler: SqsHandler;
  /** 1..10000 (Lambda default 10) */
  batchSize?: number;
  /** 0..300 (default 0) */
  maximumBatchingWindowSeconds?: number;
  /** 2..1000; undefined = LOCAL_ESM.defaultConcurrency pollers */
  maximumConcurrency?: number;
  reportBatchItemFailures?: boolean;
  /** an invocation that runs longer fails its whole batch (default LOCAL_ESM.functionTimeoutSeconds) */
  functionTimeoutSeconds?: number;
  /** for eventSourceARN (default: derived from the queue URL) */
  queueArn?: string;
  /** context.functionName (default "local-function") */
  functionName?: string;
  /** called for each failed invocation (default: one line on stderr) */
  onInvocationError?: (err: unknown, event: SQSEvent) => void;
  /** long-poll wait per ReceiveMessage (default LOCAL_ESM.receiveWaitSeconds); stop() waits for a running poll */
  receiveWaitSeconds?: number;
}

export interface EventSourceStats {
  receives: number;
  /** messages received (a redelivered message counts again) */
  received: number;
  invocations: number;
  /** invocations that threw or timed out */
  failedInvocations: number;
  timeouts: number;
  /** invocations whose batchItemFailures were invalid (whole batch failed) */
  invalidResponses: number;
  /** records reported in batchItemFailures */
  reportedFailures: number;
  /** FIFO records failed because an earlier record of their group failed in the same batch */
  fifoBlocked: number;
  /** records deleted after success */
  deleted: number;
  /** deletes SQS refused (receipt handle expired: the record will be redelivered) */
  deleteFailures: number;
  /** records left for redelivery (failed, reported, blocked, or their invocation failed) */
  returned: number;
  inFlight: number;
  maxInFlight: number;
  pollErrors: number;
  lastError?: string;
}

export interface EventSourceMapping {
  /**
   * stops polling (a running long poll is waited for, up to receiveWaitSeconds), makes held (received, not yet
   * invoked) messages visible again, waits for running invocations
   */
  stop(): Promise<void>;
  stats(): EventSourceStats;
  /**
   * Resolves once the queue has nothing visible, in flight or delayed, and no invocation runs (every message was
   * deleted or moved to the DLQ). Rejects after `timeoutMs` (default 60 s) with the stats in the message.
   */
  drained(opts?: { timeoutMs?: number }): Promise<void>;
}

/** The CloudFormation properties of an AWS::Lambda::EventSourceMapping that shape the poller. */
export interface CfnEventSourceMappingProperties {
  BatchSize?: number | string;
  MaximumBatchingWindowInSeconds?: number | string;
  ScalingConfig?: { MaximumConcurrency?: number | string };
  FunctionResponseTypes?: string[];
  Enabled?: boolean | string;
  EventSourceArn?: string;
}

/**
 * Options for startEventSourceMapping from a resolved AWS::Lambda::EventSourceMapping's Properties (add queueUrl and
 * handler). Validates the ranges Lambda enforces.
 */
export function mappingOptionsFromCfn(
  props: CfnEventSourceMappingProperties,
): Omit<EventSourceMappingOptions, "queueUrl" | "handler"> & { enabled: boolean } {
  const num = (v: unknown) => (v === undefined || v === null || v === "" ? undefined : Number(v));
  const opts = {
    batchSize: num(props.BatchSize) ?? 10,
    maximumBatchingWindowSeconds: num(props.MaximumBatchingWindowInSeconds) ?? 0,
    maximumConcurrency: num(props.ScalingConfig?.MaximumConcurrency),
    reportBatchItemFailures: (props.FunctionResponseTypes ?? []).includes("ReportBatchItemFailures"),
    queueArn: typeof props.EventSourceArn === "string" ? props.EventSourceArn : undefined,
    enabled: props.Enabled !== false && props.Enabled !== "false",
  };
  validate(opts);
  return opts;
}

function validate(
  o: Pick<EventSourceMappingOptions, "batchSize" | "maximumBatchingWindowSeconds" | "maximumConcurrency">,
) {
  const bs = o.batchSize ?? 10;
  const win = o.maximumBatchingWindowSeconds ?? 0;
  if (!Number.isInteger(bs) || bs < 1 || bs > 10_000) {
    throw new ConfigError(`event source mapping: BatchSize must be 1..10000 (got ${o.batchSize})`, {
      field: "BatchSize",
    });
  }
  if (!Number.isFinite(win) || win < 0 || win > 300) {
    throw new ConfigError(`event source mapping: MaximumBatchingWindowInSeconds must be 0..300 (got ${win})`, {
      field: "MaximumBatchingWindowInSeconds",
    });
  }
  if (bs > 10 && win < 1) {
    throw new ConfigError(
      `event source mapping: BatchSize ${bs} > 10 requires MaximumBatchingWindowInSeconds >= 1 (Lambda's rule)`,
      { field: "MaximumBatchingWindowInSeconds" },
    );
  }
  const mc = o.maximumConcurrency;
  if (mc !== undefined && (!Number.isInteger(mc) || mc < 2 || mc > 1000)) {
    throw new ConfigError(`event source mapping: ScalingConfig.MaximumConcurrency must be 2..1000 (got ${mc})`, {
      field: "ScalingConfig.MaximumConcurrency",
    });
  }
}

/** arn:aws:sqs:<region>:<account>:<name> from http(s)://host/<account>/<name> */
export function queueArnFromUrl(queueUrl: string, region = awsRegion()): string {
  const m = /^https?:\/\/[^/]+\/([^/]+)\/([^/?#]+)/.exec(queueUrl);
  if (!m) throw new ConfigError(`not an SQS queue URL: ${queueUrl}`, { field: "queueUrl" });
  return `arn:aws:sqs:${region}:${m[1]}:${m[2]}`;
}

/** The Lambda SQS record for a received message (attributes and messageAttributes as Lambda spells them). */
export function toSqsRecord(m: Message, eventSourceARN: string, region: string): SQSRecord {
  const attributes: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.Attributes ?? {})) if (v !== undefined) attributes[k] = String(v);
  const messageAttributes: SQSRecord["messageAttributes"] = {};
  for (const [k, v] of Object.entries(m.MessageAttributes ?? {})) {
    messageAttributes[k] = {
      stringValue: v.StringValue,
      binaryValue: v.BinaryValue ? Buffer.from(v.BinaryValue).toString("base64") : undefined,
      stringListValues: v.StringListValues ?? [],
      binaryListValues: (v.BinaryListValues ?? []).map((b) => Buffer.from(b).toString("base64")),
      dataType: v.DataType ?? "String",
    };
  }
  const record: SQSRecord = {
    messageId: m.MessageId!,
    receiptHandle: m.ReceiptHandle!,
    body: m.Body ?? "",
    attributes: attributes as unknown as SQSRecord["attributes"],
    messageAttributes,
    md5OfBody: m.MD5OfBody ?? "",
    eventSource: "aws:sqs",
    eventSourceARN,
    awsRegion: region,
  };
  if (m.MD5OfMessageAttributes)
    (record as SQSRecord & { md5OfMessageAttributes?: string }).md5OfMessageAttributes = m.MD5OfMessageAttributes;
  return record;
}

function makeContext(functionName: string, timeoutMs: number, region: string): Context {
  const deadline = Date.now() + timeoutMs;
  const requestId = randomUUID();
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:${region}:000000000000:function:${functionName}`,
    memoryLimitInMB: "1024",
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: `local/${requestId}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

/** Sleep until `ms` passed or `signal` aborted; the abort listener is removed when the timer fires (the poller's
 *  signal lives as long as the mapping: listeners left behind would pile up, one per sleep). */
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = () => {
      clearTimeout(t);
      resolve();
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });

/**
 * FIFO rule: the records (in batch order) after a failed record of the same message group must not be deleted either.
 * Returns the ids of those not already in `failed`.
 */
export function fifoBlockedIds(
  records: { messageId: string; groupId: string }[],
  failed: ReadonlySet<string>,
): string[] {
  const blockedGroups = new Set<string>();
  const out: string[] = [];
  for (const r of records) {
    if (failed.has(r.messageId)) blockedGroups.add(r.groupId);
    else if (blockedGroups.has(r.groupId)) out.push(r.messageId);
  }
  return out;
}

/** Starts polling `queueUrl` and invoking `handler`. */
export function startEventSourceMapping(opts: EventSourceMappingOptions): EventSourceMapping {
  validate(opts);
  const batchSize = opts.batchSize ?? 10;
  const windowMs = (opts.maximumBatchingWindowSeconds ?? 0) * 1000;
  const concurrency = opts.maximumConcurrency ?? LOCAL_ESM.defaultConcurrency;
  const timeoutMs = (opts.functionTimeoutSeconds ?? LOCAL_ESM.functionTimeoutSeconds) * 1000;
  const waitSeconds = opts.receiveWaitSeconds ?? LOCAL_ESM.receiveWaitSeconds;
  const region = awsRegion();
  const queueUrl = opts.queueUrl;
  const arn = opts.queueArn ?? queueArnFromUrl(queueUrl, region);
  const fifo = queueUrl.endsWith(".fifo");
  const functionName = opts.functionName ?? "local-function";
  const onError =
    opts.onInvocationError ??
    ((err: unknown, event: SQSEvent) =>
      process.stderr.write(
        `[event-source ${functionName}] batch of ${event.Records.length} failed: ${err instanceof Error ? err.message : String(err)}\n`,
      ));

  const s: EventSourceStats = {
    receives: 0,
    received: 0,
    invocations: 0,
    failedInvocations: 0,
    timeouts: 0,
    invalidResponses: 0,
    reportedFailures: 0,
    fifoBlocked: 0,
    deleted: 0,
    deleteFailures: 0,
    returned: 0,
    inFlight: 0,
    maxInFlight: 0,
    pollErrors: 0,
  };
  const abort = new AbortController();
  let stopping = false;
  /** messages received but not yet handed to an invocation (released on stop) */
  const held = new Set<Message>();
  /** invocations whose handler has settled but whose deletes have not answered yet (drained() waits for them) */
  let deleting = 0;
  /** invocations still running (a timed-out handler keeps its slot until it really settles) */
  const running = new Set<Promise<unknown>>();
  /** what each poller is doing and since when: drained()'s error shows a poller stuck in one step */
  const steps = Array.from({ length: concurrency }, () => ({ step: "start", since: Date.now() }));
  const at = (p: number, step: string) => {
    steps[p].step = step;
    steps[p].since = Date.now();
  };

  const receive = async (p: number, max: number, waitSec: number): Promise<Message[]> => {
    try {
      at(p, `receive (wait ${waitSec} s)`);
      s.receives++;
      const res = await sqs().send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: Math.min(10, max),
          WaitTimeSeconds: waitSec,
          MessageSystemAttributeNames: ["All"],
          MessageAttributeNames: ["All"],
        }),
        // no abortSignal: an aborted long poll stays alive inside the emulator (and SQS) and would take the messages
        // that arrive (or that stop() releases) while nobody reads its answer. stop() waits for it instead: keep
        // receiveWaitSeconds short.
      );
      const msgs = res.Messages ?? [];
      s.received += msgs.length;
      return msgs;
    } catch (err) {
      if (stopping) return [];
      s.pollErrors++;
      s.lastError = `ReceiveMessage ${queueUrl}: ${(err as Error).name}: ${(err as Error).message}`;
      await sleep(Math.min(2000, 100 * 2 ** Math.min(s.pollErrors, 5)), abort.signal);
      return [];
    }
  };

  /** one batch: up to batchSize messages, within the batching window after the first one */
  const gather = async (p: number): Promise<Message[]> => {
    const batch: Message[] = [];
    let windowEnds = Number.POSITIVE_INFINITY;
    while (!stopping && batch.length < batchSize) {
      const left = windowEnds - Date.now();
      if (batch.length > 0 && left <= 0) break;
      const waitSec = batch.length === 0 ? waitSeconds : Math.min(waitSeconds, Math.max(0, Math.floor(left / 1000)));
      const got = await receive(p, batchSize - batch.length, waitSec);
      at(p, "gather");
      for (const m of got) {
        held.add(m);
        batch.push(m);
      }
      if (batch.length > 0 && windowEnds === Number.POSITIVE_INFINITY) windowEnds = Date.now() + windowMs;
      if (batch.length > 0 && windowMs === 0) break; // no window: invoke with what one receive returned
      if (got.length === 0 && batch.length > 0) {
        const rest = windowEnds - Date.now();
        if (rest <= 0) break;
        if (waitSec === 0) await sleep(Math.min(rest, 50), abort.signal); // < 1 s left: short polls, not a spin
      }
    }
    return batch;
  };

  const deleteAll = async (msgs: Message[]) => {
    for (let i = 0; i < msgs.length; i += 10) {
      const chunk = msgs.slice(i, i + 10);
      try {
        const res = await sqs().send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: chunk.map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle! })),
          }),
        );
        s.deleted += res.Successful?.length ?? 0;
        s.deleteFailures += res.Failed?.length ?? 0;
        s.returned += res.Failed?.length ?? 0;
      } catch (err) {
        s.deleteFailures += chunk.length;
        s.returned += chunk.length;
        s.lastError = `DeleteMessageBatch ${queueUrl}: ${(err as Error).message}`;
      }
    }
  };

  /** which records stay (are not deleted) after the handler's response */
  const failedIds = (records: SQSRecord[], outcome: { ok: boolean; response?: unknown }): Set<string> | "all" => {
    if (!outcome.ok) return "all";
    if (!opts.reportBatchItemFailures) return new Set();
    const r = outcome.response as SQSBatchResponse | undefined | null;
    if (r === undefined || r === null) return new Set();
    const items = (r as { batchItemFailures?: unknown }).batchItemFailures;
    if (items === undefined || items === null) return new Set();
    if (!Array.isArray(items)) {
      s.invalidResponses++;
      return "all";
    }
    const ids = new Set(records.map((x) => x.messageId));
    const out = new Set<string>();
    for (const it of items) {
      const id = (it as { itemIdentifier?: unknown })?.itemIdentifier;
      if (typeof id !== "string" || id === "" || !ids.has(id)) {
        s.invalidResponses++;
        return "all";
      }
      out.add(id);
    }
    s.reportedFailures += out.size;
    return out;
  };

  const invoke = async (batch: Message[]) => {
    const records = batch.map((m) => toSqsRecord(m, arn, region));
    const event: SQSEvent = { Records: records };
    const ctx = makeContext(functionName, timeoutMs, region);
    s.invocations++;
    s.inFlight++;
    s.maxInFlight = Math.max(s.maxInFlight, s.inFlight);
    for (const m of batch) held.delete(m);
    let timer: NodeJS.Timeout | undefined;
    const run = (async () => opts.handler(event, ctx))();
    const tracked = run.then(
      () => undefined,
      () => undefined,
    );
    running.add(tracked);
    tracked.finally(() => {
      s.inFlight--;
      running.delete(tracked);
    });
    let outcome: { ok: boolean; response?: unknown };
    try {
      const response = await Promise.race([
        run,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            s.timeouts++;
            reject(new TransientError(`${functionName}: task timed out after ${timeoutMs / 1000} seconds`));
          }, timeoutMs);
        }),
      ]);
      outcome = { ok: true, response };
    } catch (err) {
      s.failedInvocations++;
      onError(err, event);
      outcome = { ok: false };
    } finally {
      clearTimeout(timer);
    }
    // a timed-out handler still holds its concurrency slot until it settles (Lambda would have killed it)
    await tracked;

    const failed = failedIds(records, outcome);
    if (failed === "all") {
      s.returned += batch.length;
      return;
    }
    if (fifo && failed.size > 0) {
      const blocked = fifoBlockedIds(
        batch.map((m) => ({ messageId: m.MessageId!, groupId: m.Attributes?.MessageGroupId ?? "" })),
        failed,
      );
      for (const id of blocked) failed.add(id);
      s.fifoBlocked += blocked.length;
    }
    s.returned += failed.size;
    deleting++;
    try {
      await deleteAll(batch.filter((m) => !failed.has(m.MessageId!)));
    } finally {
      deleting--;
    }
  };

  const poller = async (p: number) => {
    while (!stopping) {
      const batch = await gather(p);
      if (batch.length === 0) continue;
      if (stopping) break; // held messages are released below
      at(p, `invoke (${batch.length} records)`);
      await invoke(batch);
    }
    at(p, "stopped");
  };

  const pollers = Array.from({ length: concurrency }, (_, p) => poller(p));
  const allDone = Promise.all(pollers);

  const release = async () => {
    const msgs = [...held];
    held.clear();
    for (let i = 0; i < msgs.length; i += 10) {
      const chunk = msgs.slice(i, i + 10);
      await sqs()
        .send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: queueUrl,
            Entries: chunk.map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle!, VisibilityTimeout: 0 })),
          }),
        )
        .catch(() => {}); // not released: the message comes back after its visibility timeout
    }
  };

  let stopped: Promise<void> | undefined;
  return {
    stats: () => ({ ...s }),
    stop() {
      stopped ??= (async () => {
        stopping = true;
        abort.abort();
        await allDone;
        await release();
        await Promise.all([...running]);
      })();
      return stopped;
    },
    async drained(o = {}) {
      const until = Date.now() + (o.timeoutMs ?? 60_000);
      let queue = "not read (an invocation, held message or delete was outstanding)";
      for (;;) {
        if (running.size === 0 && held.size === 0 && s.inFlight === 0 && deleting === 0) {
          const res = await sqs().send(
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
          queue = `visible ${a.ApproximateNumberOfMessages ?? 0}, not visible ${a.ApproximateNumberOfMessagesNotVisible ?? 0}, delayed ${a.ApproximateNumberOfMessagesDelayed ?? 0}`;
          const left =
            Number(a.ApproximateNumberOfMessages ?? 0) +
            Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) +
            Number(a.ApproximateNumberOfMessagesDelayed ?? 0);
          // the queue may already show a delete whose answer (and stats) has not arrived: wait for it too
          if (left === 0 && running.size === 0 && held.size === 0 && deleting === 0) return;
        }
        if (Date.now() > until) {
          throw new TransientError(
            `event source ${functionName}: queue ${queueUrl} not drained within ${o.timeoutMs ?? 60_000} ms (queue: ${queue}; running ${running.size}, held ${held.size}, deleting ${deleting}; pollers: ${steps.map((x) => `${x.step} for ${Date.now() - x.since} ms`).join(", ")}; ${JSON.stringify(s)})`,
          );
        }
        await sleep(50);
      }
    },
  };
}
