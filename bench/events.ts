/**
 * `npm run bench -- events [--events N] [--entities N] [--chunk N]`: event ingestion end to end on the embedded
 * stack — accept (local Function URL) → SQS → consume (local event source mapping, Powertools batch) → DynamoDB —
 * next to the SQS emulator's own raw rate measured in the same run (SendMessageBatch + ReceiveMessage +
 * DeleteMessageBatch of the same number of messages, same concurrency). Prints
 * {"bench":"events","eventsPerSec","emulatorMsgsPerSec","ratio","writesPerEvent","acceptP99Ms",...}.
 */
import {
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import {
  generateEvents,
  percentile,
  postEvents,
  startLocalAccept,
  startLocalConsumer,
} from "../cli/commands/events.js";
import { PutItemCommand } from "@aws-sdk/client-dynamodb";
import { dynamoRaw, sqs } from "../core/aws/clients.js";
import { expectedStates, serializeEvent } from "../core/events/model.js";
import { ensureEventsQueues, ensureEventsResources } from "../core/events/resources.js";
import { getEntityState, storeStats } from "../core/events/store.js";
import { EVENTS } from "../core/limits.js";
import { withLocalStack } from "../local/stack/index.js";
import { mulberry32 as mulberry } from "../core/random.js";

function arg(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
}

const log = (s: string) => process.stderr.write(`${s}\n`);

/** The emulator's raw rate: send, receive and delete `n` messages of `bytes` bytes. */
async function rawSqsRate(client: SQSClient, queueUrl: string, n: number, bytes: number, concurrency: number) {
  const body = "x".repeat(bytes);
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < n) {
        const start = next;
        next += 10;
        const count = Math.min(10, n - start);
        await client.send(
          new SendMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: Array.from({ length: count }, (_, i) => ({ Id: String(i), MessageBody: body })),
          }),
        );
      }
    }),
  );
  const sendSec = (performance.now() - t0) / 1000;
  let got = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      let empty = 0;
      while (got < n && empty < 3) {
        const r = await client.send(
          new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
        );
        const msgs = r.Messages ?? [];
        if (msgs.length === 0) {
          empty++;
          continue;
        }
        empty = 0;
        got += msgs.length;
        await client.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: msgs.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
          }),
        );
      }
    }),
  );
  const totalSec = (performance.now() - t0) / 1000;
  return { msgsPerSec: n / totalSec, sendSec, totalSec, received: got };
}

/** The DynamoDB emulator's raw rate of single conditional PutItems (what the consumer issues) at `concurrency`. */
async function rawDynamoRate(table: string, n: number, concurrency: number) {
  const client = dynamoRaw();
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        await client.send(
          new PutItemCommand({
            TableName: table,
            Item: { pk: { S: `raw-${i % 100}` }, sk: { S: `s${i}` }, p: { S: "x".repeat(100) } },
            ConditionExpression: "attribute_not_exists(pk)",
          }),
        );
      }
    }),
  );
  return n / ((performance.now() - t0) / 1000);
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const n = arg(args, "events", 2000);
  const entities = arg(args, "entities", Math.max(1, Math.ceil(n / 10)));
  const chunk = arg(args, "chunk", 100);
  process.env.POWERTOOLS_METRICS_DISABLED = "true";
  process.env.POWERTOOLS_LOG_LEVEL = "ERROR";
  return withLocalStack(async () => {
    const name = `bench-events-${Date.now()}`;
    const concurrency = EVENTS.consumerMaxConcurrency;

    // baseline: the emulator alone, same message size and consumer concurrency
    const events = generateEvents(n, entities, mulberry(7));
    const avgBytes = Math.round(events.reduce((a, e) => a + serializeEvent(e).length, 0) / n);
    const raw = await ensureEventsQueues(`${name}-raw`);
    log(`baseline: ${n} raw messages of ${avgBytes} bytes through the SQS emulator`);
    const base = await rawSqsRate(sqs(), raw.queueUrl, n, avgBytes, concurrency);
    log(
      `baseline: ${base.msgsPerSec.toFixed(0)} msgs/s (send ${base.sendSec.toFixed(2)} s, all ${base.totalSec.toFixed(2)} s)`,
    );

    // accept alone (what a producer sees when consumers run elsewhere, as on Lambda)
    const idleQueue = await ensureEventsQueues(`${name}-idle`);
    const idleAccept = await startLocalAccept(idleQueue.queueUrl);
    const idleLines = events.slice(0, Math.min(n, chunk * 10)).map(serializeEvent);
    const idle = await postEvents(idleAccept.url, idleLines, { chunk, concurrency: 1 });
    await idleAccept.close();
    log(
      `accept alone: p50 ${percentile(idle.latenciesMs, 50).toFixed(1)} ms, p99 ${percentile(idle.latenciesMs, 99).toFixed(1)} ms per ${chunk} events`,
    );

    // ferry: accept → queue → consume → table
    const res = await ensureEventsResources(name);
    const ddbWritesPerSec = await rawDynamoRate(res.table, Math.min(1000, n), 32);
    log(`baseline: ${ddbWritesPerSec.toFixed(0)} conditional PutItem/s on the DynamoDB emulator`);
    const target = {
      ...res,
      esm: {
        batchSize: EVENTS.consumerBatchSize,
        maximumBatchingWindowSeconds: EVENTS.consumerBatchingWindowSeconds,
        maximumConcurrency: concurrency,
        reportBatchItemFailures: true,
        functionTimeoutSeconds: EVENTS.consumerTimeoutSeconds,
      },
    };
    const accept = await startLocalAccept(res.queueUrl);
    const consumer = await startLocalConsumer(target);
    const writes0 = storeStats.writeRequests;
    const t0 = performance.now();
    let sent: Awaited<ReturnType<typeof postEvents>>;
    try {
      sent = await postEvents(accept.url, events.map(serializeEvent), { chunk, concurrency: 4 });
      const acceptSec = (performance.now() - t0) / 1000;
      log(`accepted ${sent.accepted} in ${acceptSec.toFixed(2)} s (${sent.requests} requests)`);
      const deadline = Date.now() + 600_000;
      for (;;) {
        const c = consumer.counts;
        if (c.applied + c.duplicate + c.stale + c.parked >= sent.accepted || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      await consumer.stop();
      await accept.close();
    }
    const sec = (performance.now() - t0) / 1000;
    const writes = storeStats.writeRequests - writes0;
    const c = consumer.counts;
    // correctness is part of the figure: a fast wrong answer does not count
    let mismatches = 0;
    for (const [entity, want] of expectedStates(events)) {
      const got = await getEntityState(entity, { table: res.table, historyLimit: Number.MAX_SAFE_INTEGER });
      if (got.latest?.id !== want.latest?.id || got.history.length !== want.history.length) mismatches++;
    }
    const eventsPerSec = n / sec;
    return {
      bench: "events",
      events: n,
      entities,
      eventsPerSec: Math.round(eventsPerSec),
      emulatorMsgsPerSec: Math.round(base.msgsPerSec),
      ratio: Math.round((eventsPerSec / base.msgsPerSec) * 100) / 100,
      writesPerEvent: Math.round((writes / n) * 100) / 100,
      // the emulators' own cost of the same work done serially: one SQS round trip (send, receive, delete) plus
      // writesPerEvent conditional PutItems per event (> 1: the pipeline overlaps SQS and DynamoDB work)
      emulatorDynamoWritesPerSec: Math.round(ddbWritesPerSec),
      emulatorSerialEventsPerSec: Math.round(1 / (1 / base.msgsPerSec + writes / n / ddbWritesPerSec)),
      ratioVsEmulatorSerial:
        Math.round(eventsPerSec * (1 / base.msgsPerSec + writes / n / ddbWritesPerSec) * 100) / 100,
      acceptP50Ms: Math.round(percentile(sent.latenciesMs, 50) * 10) / 10,
      acceptP99Ms: Math.round(percentile(sent.latenciesMs, 99) * 10) / 10,
      acceptP50MsNoConsumer: Math.round(percentile(idle.latenciesMs, 50) * 10) / 10,
      acceptP99MsNoConsumer: Math.round(percentile(idle.latenciesMs, 99) * 10) / 10,
      eventsPerAcceptRequest: chunk,
      seconds: Math.round(sec * 100) / 100,
      applied: c.applied,
      duplicate: c.duplicate,
      stale: c.stale,
      parked: c.parked,
      failedAttempts: c.failedAttempts,
      mismatches,
      consumer: { batchSize: EVENTS.consumerBatchSize, maxConcurrency: concurrency },
    };
  });
}
