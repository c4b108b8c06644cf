/**
 * `npm run bench -- events [--events N] [--entities N] [--chunk N] [--dynamodb dynalite|dynamodb-local]`: event
 * ingestion end to end on the embedded stack — accept (local Function URL) → SQS → consume (local event source
 * mapping, Powertools batch) → DynamoDB — next to each emulator's own rate for the same work, measured in the same run
 * with the same SDK clients:
 *
 * - raw SQS: the same message bodies sent with SendMessageBatch (10 per call, as many calls in flight as the
 *   accept requests make), received by as many pollers as the consumer has (ReceiveMessage of 10 with the same
 *   attribute names) and deleted with DeleteMessageBatch, sending and receiving overlapped as in the pipeline;
 * - raw DynamoDB: the consumer's exact write plan (a history PutItem per event, one conditional `latest` PutItem per
 *   entity per batch of the consumer's batch size) for the same events, no SQS, the same socket concurrency.
 *
 * `ratio` = end-to-end events/s ÷ raw SQS messages/s (issue #6's figure, target 0.8); `ratioVsSlowerEmulator` divides
 * by the slower of raw SQS and raw DynamoDB instead. CPU per event of this process and of each emulator is reported
 * per phase (the machine has 2 cores: throughput follows CPU per event). Prints one JSON object as its last line.
 */
import {
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { readFileSync } from "node:fs";
import {
  generateEvents,
  percentile,
  postEvents,
  startLocalAccept,
  startLocalConsumer,
} from "../cli/commands/events.js";
import { sqs } from "../core/aws/clients.js";
import { compareEvents, expectedStates, type FerryEvent, serializeEvent } from "../core/events/model.js";
import { ensureEventsQueues, ensureEventsResources, ensureEventsTable } from "../core/events/resources.js";
import { getEntityState, recordHistory, storeStats, updateLatest } from "../core/events/store.js";
import { EVENTS } from "../core/limits.js";
import { mulberry32 as mulberry } from "../core/random.js";
import { type DynamoEngine, type LocalStack, resolveDynamoEngine, withLocalStack } from "../local/stack/index.js";

function arg(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
}

function strArg(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

const log = (s: string) => process.stderr.write(`${s}\n`);
const r2 = (x: number) => Math.round(x * 100) / 100;

/**
 * CPU time (ms) a process and its running children (DynamoDB Local's JVM under its emulator process) have used, from
 * /proc (NaN where there is none).
 */
function procCpuMs(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    let ms = (Number(f[11]) + Number(f[12])) * 10; // utime + stime in clock ticks of 10 ms
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim();
    for (const c of children ? children.split(" ") : []) ms += procCpuMs(Number(c)) || 0;
    return ms;
  } catch {
    return Number.NaN;
  }
}

interface CpuSnap {
  t: number;
  self: number;
  sqs: number;
  dynamodb: number;
}

function cpuSnap(stack: LocalStack): CpuSnap {
  const u = process.cpuUsage();
  return {
    t: performance.now(),
    self: (u.user + u.system) / 1000,
    sqs: procCpuMs(stack.emulators.sqs.pid),
    dynamodb: procCpuMs(stack.emulators.dynamodb.pid),
  };
}

/** CPU ms per item of this process (client: SDK, handlers) and of each emulator between two snapshots. */
function cpuPer(a: CpuSnap, b: CpuSnap, n: number) {
  const per = (x: number) => Math.round((x / n) * 1000) / 1000;
  return {
    clientMs: per(b.self - a.self),
    sqsEmulatorMs: per(b.sqs - a.sqs),
    dynamoEmulatorMs: per(b.dynamodb - a.dynamodb),
    totalMs: per(b.self - a.self + (b.sqs - a.sqs) + (b.dynamodb - a.dynamodb)),
  };
}

/**
 * The SQS emulator's raw rate for the pipeline's SQS work: send `bodies` (batches of 10, `sendConcurrency` calls in
 * flight) while `pollers` receive (10 at a time, all attributes, as the event source does) and delete (batches of 10).
 */
async function rawSqsRate(
  client: SQSClient,
  queueUrl: string,
  bodies: string[],
  sendConcurrency: number,
  pollers: number,
) {
  const n = bodies.length;
  const t0 = performance.now();
  let next = 0;
  let sentAt = 0;
  const sending = Promise.all(
    Array.from({ length: sendConcurrency }, async () => {
      while (next < n) {
        const start = next;
        next += EVENTS.sendBatchEntries;
        const chunk = bodies.slice(start, start + EVENTS.sendBatchEntries);
        await client.send(
          new SendMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: chunk.map((b, i) => ({ Id: String(i), MessageBody: b })),
          }),
        );
      }
    }),
  ).then(() => {
    sentAt = performance.now();
  });
  let got = 0;
  let deleted = 0;
  let doneAt = 0;
  const deadline = Date.now() + 300_000;
  const receiving = Promise.all(
    Array.from({ length: pollers }, async () => {
      while (got < n && Date.now() < deadline) {
        const r = await client.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: 1,
            MessageSystemAttributeNames: ["All"],
            MessageAttributeNames: ["All"],
          }),
        );
        const msgs = r.Messages ?? [];
        if (msgs.length === 0) continue;
        got += msgs.length;
        await client.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: msgs.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
          }),
        );
        deleted += msgs.length;
        // the rate ends with the last delete, not when the other pollers' long polls return
        if (deleted >= n && !doneAt) doneAt = performance.now();
      }
    }),
  );
  await Promise.all([sending, receiving]);
  const totalSec = ((doneAt || performance.now()) - t0) / 1000;
  return { msgsPerSec: n / totalSec, sendSec: (sentAt - t0) / 1000, totalSec, received: got };
}

/**
 * The DynamoDB emulator's raw rate for the consumer's write plan, without SQS: per batch of `batchSize` events a
 * history PutItem each and one `latest` PutItem per entity (its greatest event), `concurrency` batches at once.
 */
async function rawDynamoRate(table: string, events: FerryEvent[], batchSize: number, concurrency: number) {
  const w0 = storeStats.writeRequests;
  const batches: FerryEvent[][] = [];
  for (let i = 0; i < events.length; i += batchSize) batches.push(events.slice(i, i + batchSize));
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < batches.length) {
        const batch = batches[next++]!;
        const best = new Map<string, FerryEvent>();
        for (const e of batch) {
          const cur = best.get(e.entity);
          if (!cur || compareEvents(e, cur) > 0) best.set(e.entity, e);
        }
        await Promise.all([
          ...batch.map((e) => recordHistory(e, { table })),
          ...[...best.values()].map((e) => updateLatest(e, { table })),
        ]);
      }
    }),
  );
  const sec = (performance.now() - t0) / 1000;
  const writes = storeStats.writeRequests - w0;
  return { eventsPerSec: events.length / sec, writesPerSec: writes / sec, writesPerEvent: writes / events.length, sec };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length
    ? s.length % 2
      ? s[(s.length - 1) / 2]!
      : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
    : Number.NaN;
};

interface Round {
  rawSqs: Awaited<ReturnType<typeof rawSqsRate>>;
  rawSqsCpu: ReturnType<typeof cpuPer>;
  rawDynamo: Awaited<ReturnType<typeof rawDynamoRate>>;
  rawDynamoCpu: ReturnType<typeof cpuPer>;
  eventsPerSec: number;
  seconds: number;
  e2eCpu: ReturnType<typeof cpuPer>;
  writesPerEvent: number;
  latestSkippedPerEvent: number;
  acceptLatenciesMs: number[];
  counts: { applied: number; duplicate: number; stale: number; parked: number; failedAttempts: number };
  mismatches: number;
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const n = arg(args, "events", 2000);
  const entities = arg(args, "entities", Math.max(1, Math.ceil(n / 10)));
  const chunk = arg(args, "chunk", 100);
  const rounds = Math.max(1, arg(args, "rounds", 3));
  const engine = resolveDynamoEngine(strArg(args, "dynamodb") as DynamoEngine | undefined);
  process.env.POWERTOOLS_METRICS_DISABLED = "true";
  process.env.POWERTOOLS_LOG_LEVEL = "ERROR";
  return withLocalStack(
    async (stack) => {
      const name = `bench-events-${Date.now()}`;
      // --batch / --concurrency: try other event source settings (default: the construct's)
      const pollers = arg(args, "concurrency", EVENTS.consumerMaxConcurrency);
      const batchSize = arg(args, "batch", EVENTS.consumerBatchSize);
      // the pipeline's SendMessageBatch calls in flight: `sendConcurrency` per accept request, 4 requests at once
      const acceptConcurrency = 4;
      const sendConcurrency = Math.min(acceptConcurrency * EVENTS.sendConcurrency, Math.ceil(chunk / 10) * 4);
      const events = generateEvents(n, entities, mulberry(7));
      const bodies = events.map(serializeEvent);
      const avgBytes = Math.round(bodies.reduce((a, b) => a + b.length, 0) / n);
      log(
        `dynamodb stand-in: ${stack.emulators.dynamodb.emulator}; ${n} events of ${avgBytes} bytes, ${entities} entities, ${rounds} rounds`,
      );

      // warm up the SDK clients and the emulators (JIT) so no phase pays for it alone
      const warm = await ensureEventsQueues(`${name}-warm`);
      const warmEvents = generateEvents(300, 30, mulberry(3)).map((e) => ({ ...e, entity: `warm-${e.entity}` }));
      await rawSqsRate(sqs(), warm.queueUrl, warmEvents.map(serializeEvent), sendConcurrency, pollers);
      await ensureEventsTable(`${name}-warm`);
      await rawDynamoRate(`${name}-warm`, warmEvents, batchSize, pollers);

      // accept alone (what a producer sees when consumers run elsewhere, as on Lambda)
      const idleQueue = await ensureEventsQueues(`${name}-idle`);
      const idleAccept = await startLocalAccept(idleQueue.queueUrl);
      const idle = await postEvents(idleAccept.url, bodies.slice(0, Math.min(n, chunk * 10)), {
        chunk,
        concurrency: 1,
      });
      await idleAccept.close();
      log(
        `accept alone: p50 ${percentile(idle.latenciesMs, 50).toFixed(1)} ms, p99 ${percentile(idle.latenciesMs, 99).toFixed(1)} ms per ${chunk} events`,
      );

      const results: Round[] = [];
      for (let round = 1; round <= rounds; round++) {
        // baseline 1: SQS alone
        const raw = await ensureEventsQueues(`${name}-raw${round}`);
        let c0 = cpuSnap(stack);
        const rawSqs = await rawSqsRate(sqs(), raw.queueUrl, bodies, sendConcurrency, pollers);
        const rawSqsCpu = cpuPer(c0, cpuSnap(stack), n);
        log(
          `[${round}] raw SQS: ${rawSqs.msgsPerSec.toFixed(0)} msgs/s (sent in ${rawSqs.sendSec.toFixed(2)} s, all ${rawSqs.totalSec.toFixed(2)} s); CPU ms/msg ${JSON.stringify(rawSqsCpu)}`,
        );

        // baseline 2: DynamoDB alone (the consumer's write plan)
        const rawTable = `${name}-raw${round}`;
        await ensureEventsTable(rawTable);
        c0 = cpuSnap(stack);
        const rawDynamo = await rawDynamoRate(rawTable, events, batchSize, pollers);
        const rawDynamoCpu = cpuPer(c0, cpuSnap(stack), n);
        log(
          `[${round}] raw DynamoDB: ${rawDynamo.eventsPerSec.toFixed(0)} events/s, ${rawDynamo.writesPerSec.toFixed(0)} conditional PutItem/s (${rawDynamo.writesPerEvent.toFixed(2)} per event); CPU ms/event ${JSON.stringify(rawDynamoCpu)}`,
        );

        // ferry: accept → queue → consume → table
        const res = await ensureEventsResources(`${name}-${round}`);
        const target = {
          ...res,
          esm: {
            batchSize,
            maximumBatchingWindowSeconds: EVENTS.consumerBatchingWindowSeconds,
            maximumConcurrency: pollers,
            reportBatchItemFailures: true,
            functionTimeoutSeconds: EVENTS.consumerTimeoutSeconds,
          },
        };
        const accept = await startLocalAccept(res.queueUrl);
        const consumer = await startLocalConsumer(target);
        const writes0 = storeStats.writeRequests;
        const skipped0 = storeStats.latestSkipped;
        c0 = cpuSnap(stack);
        const t0 = performance.now();
        let sent: Awaited<ReturnType<typeof postEvents>>;
        try {
          sent = await postEvents(accept.url, bodies, { chunk, concurrency: acceptConcurrency });
          const deadline = Date.now() + 600_000;
          for (;;) {
            const c = consumer.counts;
            if (c.applied + c.duplicate + c.stale + c.parked >= sent.accepted || Date.now() > deadline) break;
            await new Promise((r) => setTimeout(r, 5));
          }
        } finally {
          await consumer.stop();
          await accept.close();
        }
        const sec = (performance.now() - t0) / 1000;
        const e2eCpu = cpuPer(c0, cpuSnap(stack), n);
        const writes = storeStats.writeRequests - writes0;
        const skipped = storeStats.latestSkipped - skipped0;
        // correctness is part of the figure: a fast wrong answer does not count
        let mismatches = 0;
        for (const [entity, want] of expectedStates(events)) {
          const got = await getEntityState(entity, { table: res.table, historyLimit: Number.MAX_SAFE_INTEGER });
          if (got.latest?.id !== want.latest?.id || got.history.length !== want.history.length) mismatches++;
        }
        log(
          `[${round}] end to end: ${(n / sec).toFixed(0)} events/s in ${sec.toFixed(2)} s, ${(writes / n).toFixed(2)} writes/event, ratio ${(n / sec / rawSqs.msgsPerSec).toFixed(2)}; CPU ms/event ${JSON.stringify(e2eCpu)}`,
        );
        results.push({
          rawSqs,
          rawSqsCpu,
          rawDynamo,
          rawDynamoCpu,
          eventsPerSec: n / sec,
          seconds: sec,
          e2eCpu,
          writesPerEvent: writes / n,
          latestSkippedPerEvent: skipped / n,
          acceptLatenciesMs: sent.latenciesMs,
          counts: { ...consumer.counts },
          mismatches,
        });
      }

      const med = (f: (r: Round) => number) => median(results.map(f));
      const eventsPerSec = med((r) => r.eventsPerSec);
      const sqsRate = med((r) => r.rawSqs.msgsPerSec);
      const ddbRate = med((r) => r.rawDynamo.eventsPerSec);
      const cpuMed = (f: (r: Round) => ReturnType<typeof cpuPer>) => ({
        clientMs: r2(med((r) => f(r).clientMs)),
        sqsEmulatorMs: r2(med((r) => f(r).sqsEmulatorMs)),
        dynamoEmulatorMs: r2(med((r) => f(r).dynamoEmulatorMs)),
        totalMs: r2(med((r) => f(r).totalMs)),
      });
      const lat = results.flatMap((r) => r.acceptLatenciesMs);
      const last = results[results.length - 1]!;
      return {
        bench: "events",
        dynamodb: stack.emulators.dynamodb.emulator,
        events: n,
        entities,
        eventBytes: avgBytes,
        rounds,
        // medians over the rounds; each round measures its baselines right before its end-to-end run
        eventsPerSec: Math.round(eventsPerSec),
        emulatorMsgsPerSec: Math.round(sqsRate),
        ratio: r2(med((r) => r.eventsPerSec / r.rawSqs.msgsPerSec)),
        ratios: results.map((r) => r2(r.eventsPerSec / r.rawSqs.msgsPerSec)),
        emulatorDynamoEventsPerSec: Math.round(ddbRate),
        emulatorDynamoWritesPerSec: Math.round(med((r) => r.rawDynamo.writesPerSec)),
        ratioVsSlowerEmulator: r2(med((r) => r.eventsPerSec / Math.min(r.rawSqs.msgsPerSec, r.rawDynamo.eventsPerSec))),
        // both emulators doing their part of the work one after the other (the pipeline overlaps them: > 1 is good)
        ratioVsEmulatorSerial: r2(
          med((r) => r.eventsPerSec * (1 / r.rawSqs.msgsPerSec + 1 / r.rawDynamo.eventsPerSec)),
        ),
        writesPerEvent: r2(med((r) => r.writesPerEvent)),
        // latest writes the consumer skipped because a greater event was known to be stored (no request needed)
        latestSkippedPerEvent: r2(med((r) => r.latestSkippedPerEvent)),
        cpuMsPerEvent: {
          endToEnd: cpuMed((r) => r.e2eCpu),
          rawSqs: cpuMed((r) => r.rawSqsCpu),
          rawDynamo: cpuMed((r) => r.rawDynamoCpu),
        },
        acceptP50Ms: Math.round(percentile(lat, 50) * 10) / 10,
        acceptP99Ms: Math.round(percentile(lat, 99) * 10) / 10,
        acceptP50MsNoConsumer: Math.round(percentile(idle.latenciesMs, 50) * 10) / 10,
        acceptP99MsNoConsumer: Math.round(percentile(idle.latenciesMs, 99) * 10) / 10,
        eventsPerAcceptRequest: chunk,
        seconds: r2(med((r) => r.seconds)),
        lastRound: last.counts,
        mismatches: results.reduce((a, r) => a + r.mismatches, 0),
        consumer: { batchSize, maxConcurrency: pollers },
      };
    },
    { dynamodb: engine },
  );
}
