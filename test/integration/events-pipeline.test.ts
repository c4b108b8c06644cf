/**
 * Event ingestion end to end on the embedded stack: accept (local Function URL) → SQS (fauxqs) → consume (the
 * local event source mapping emulation, Powertools batch processing) → DynamoDB (dynalite). No mocks: failures are
 * injected by wrapping the real consume handler (records dropped before or after they are applied, whole
 * invocations failing), which is what a crashing Lambda does to the event source.
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type EventsTarget,
  type LocalAccept,
  percentile,
  postEvents,
  startLocalAccept,
  startLocalConsumer,
} from "../../cli/commands/events.js";
import { dynamoRaw } from "../../core/aws/clients.js";
import { diffState, expectedStates, type FerryEvent, serializeEvent } from "../../core/events/model.js";
import { listDlq, queueCounts, redriveDlq } from "../../core/events/queue.js";
import { ensureEventsResources } from "../../core/events/resources.js";
import { getEntityState } from "../../core/events/store.js";
import { mulberry32 } from "../../core/random.js";

type Handler = (e: SQSEvent, c: Context) => Promise<SQSBatchResponse>;

process.env.POWERTOOLS_METRICS_DISABLED = "true";
process.env.POWERTOOLS_LOG_LEVEL = "SILENT";

const uniq = () => `evp-${process.pid}-${Math.floor(Math.random() * 1e9)}`;

/**
 * Short visibility timeouts make retries quick; the conservation test needs one longer than any batch takes on a
 * loaded machine, else SQS (rightly) redelivers records still being processed and they count twice.
 */
async function target(
  opts: { fifo?: boolean; maxReceiveCount?: number; visibilityTimeoutSeconds?: number } = {},
): Promise<EventsTarget> {
  const r = await ensureEventsResources(uniq(), { visibilityTimeoutSeconds: 1, ...opts });
  return {
    ...r,
    esm: {
      batchSize: 10,
      maximumBatchingWindowSeconds: 0,
      maximumConcurrency: 3,
      reportBatchItemFailures: true,
      functionTimeoutSeconds: 30,
    },
  };
}

async function expectModelState(table: string, events: FerryEvent[]): Promise<void> {
  for (const [entity, want] of expectedStates(events)) {
    const got = await getEntityState(entity, { table, historyLimit: 100_000 });
    expect(diffState(want, got), entity).toEqual([]);
  }
}

describe("event ingestion pipeline", () => {
  it("property: any order, any duplication, random batches with random partial failures → in-order exactly-once state", async () => {
    // failures are injected at up to 40% per record per attempt: with the default maxReceiveCount (5) a record that
    // failed before being applied on 5 deliveries in a row (~1% at 40%) is dead-lettered — correct behaviour, covered
    // by the DLQ test below, but then the state lacks it. Here every record must eventually be applied.
    const t = await target({ maxReceiveCount: 1000 });
    const accept = await startLocalAccept(t.queueUrl);
    let rnd = mulberry32(1);
    let pFail = 0;
    const wrap =
      (h: Handler): Handler =>
      async (event, ctx) => {
        // some records "crash" before they are applied, the rest go to the real handler...
        const pre = event.Records.filter(() => rnd() < pFail);
        const preIds = new Set(pre.map((r) => r.messageId));
        const rest = event.Records.filter((r) => !preIds.has(r.messageId));
        const res = rest.length ? await h({ Records: rest }, ctx) : { batchItemFailures: [] };
        // ...and sometimes the whole invocation fails after applying (nothing deleted, all redelivered)
        if (rnd() < pFail / 3) throw new Error("injected: invocation crashed after applying");
        // ...or single records are reported failed although applied (a lost acknowledgement)
        const post = rest.filter(() => rnd() < pFail).map((r) => ({ itemIdentifier: r.messageId }));
        return {
          batchItemFailures: [...pre.map((r) => ({ itemIdentifier: r.messageId })), ...res.batchItemFailures, ...post],
        };
      };
    const consumer = await startLocalConsumer(t, { wrap, overrides: { receiveWaitSeconds: 1 } });
    let run = 0;
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.uniqueArray(
            fc.record({
              entity: fc.constantFrom("a", "b", "c"),
              time: fc.integer({ min: 0, max: 5 }),
              id: fc.constantFrom("x", "y", "z", "w"),
            }),
            { minLength: 1, maxLength: 20, selector: (e) => `${e.entity}/${e.time}/${e.id}` },
          ),
          fc.array(fc.nat(), { maxLength: 10 }),
          fc.integer(),
          fc.integer({ min: 0, max: 40 }),
          async (raw, dupIdx, seed, failPct) => {
            const prefix = `r${run++}-`;
            const events = raw.map((r) => ({
              entity: prefix + r.entity,
              id: r.id,
              time: 1_700_000_000_000 + r.time,
              type: "progress",
              payload: { n: r.time },
            }));
            rnd = mulberry32(seed);
            pFail = failPct / 100;
            const deliveries = [...events, ...dupIdx.map((i) => events[i % events.length]!)];
            for (let i = deliveries.length - 1; i > 0; i--) {
              const j = Math.floor(rnd() * (i + 1));
              [deliveries[i], deliveries[j]] = [deliveries[j]!, deliveries[i]!];
            }
            // several requests, so the queue receives them interleaved with consumption
            const sent = await postEvents(accept.url, deliveries.map(serializeEvent), { chunk: 7, concurrency: 2 });
            expect(sent.accepted).toBe(deliveries.length);
            await consumer.drained(60_000);
            expect(await queueCounts(t.dlqUrl), "nothing dead-lettered").toEqual({
              visible: 0,
              inFlight: 0,
              delayed: 0,
            });
            await expectModelState(t.table, events);
          },
        ),
        // no shrinking: a run takes seconds, so shrinking a failure would outlast the test's timeout and hide it
        { numRuns: Number(process.env.FERRY_EVENTS_E2E_RUNS ?? 10), endOnFailure: true },
      );
    } finally {
      await consumer.stop();
      await accept.close();
    }
    expect(consumer.counts.failedAttempts).toBeGreaterThanOrEqual(0);
  }, 600_000);

  describe("conservation, poison messages, DLQ and redrive", () => {
    let t: EventsTarget;
    let accept: LocalAccept;
    beforeAll(async () => {
      t = await target({ maxReceiveCount: 2, visibilityTimeoutSeconds: 5 });
      accept = await startLocalAccept(t.queueUrl);
    });
    afterAll(async () => {
      await accept?.close();
    });

    it("accepted = applied + duplicate + stale + parked (+ dead-lettered), poison parked with its reason, redrive applies once", async () => {
      const rnd = mulberry32(99);
      const events: FerryEvent[] = [];
      for (let i = 0; i < 30; i++) {
        const entity = i % 6 === 5 ? "doomed" : `ok-${i % 4}`;
        events.push({ entity, id: `e${i}`, time: 1000 + Math.floor(rnd() * 10), type: "t", payload: { i } });
      }
      const deliveries = [...events, ...events.slice(0, 8)].sort(() => rnd() - 0.5);
      const poison = [
        "{not json",
        JSON.stringify({ entity: "x", id: "p1", time: "tomorrow", type: "t" }),
        JSON.stringify({ id: "p2", time: 1, type: "t" }),
        JSON.stringify({ entity: "x", id: "p3", time: 1, type: "t", payload: "x".repeat(70_000) }),
      ];
      let broken = true;
      const wrap =
        (h: Handler): Handler =>
        async (event, ctx) => {
          // a transient fault that persists for one entity (e.g. a downstream outage): its records keep failing
          const bad = event.Records.filter((r) => broken && r.body.includes('"entity":"doomed"'));
          const badIds = new Set(bad.map((r) => r.messageId));
          const rest = event.Records.filter((r) => !badIds.has(r.messageId));
          const res = rest.length ? await h({ Records: rest }, ctx) : { batchItemFailures: [] };
          return {
            batchItemFailures: [...bad.map((r) => ({ itemIdentifier: r.messageId })), ...res.batchItemFailures],
          };
        };
      const consumer = await startLocalConsumer(t, { wrap });
      try {
        const sent = await postEvents(accept.url, [...deliveries.map(serializeEvent), "{broken line"], { chunk: 50 });
        expect(sent.rejected).toBe(1);
        expect(sent.rejects[0]!.reason).toMatch(/not valid JSON/);
        expect(sent.accepted).toBe(deliveries.length);
        const { sqs } = await import("../../core/aws/clients.js");
        const { SendMessageBatchCommand } = await import("@aws-sdk/client-sqs");
        await sqs().send(
          new SendMessageBatchCommand({
            QueueUrl: t.queueUrl,
            Entries: poison.map((b, i) => ({ Id: String(i), MessageBody: b })),
          }),
        );
        await consumer.drained(120_000);
        const doomedDeliveries = deliveries.filter((e) => e.entity === "doomed").length;
        const c = consumer.counts;
        expect(c.parked).toBe(poison.length);
        expect(c.applied + c.duplicate + c.stale + c.parked + doomedDeliveries).toBe(sent.accepted + poison.length);
        expect(await queueCounts(t.queueUrl)).toEqual({ visible: 0, inFlight: 0, delayed: 0 });

        const dlq = await listDlq(t.dlqUrl);
        expect(dlq).toHaveLength(poison.length + doomedDeliveries);
        const reasons = dlq.map((m) => m.reason);
        expect(reasons.filter((r) => /exceeded maxReceiveCount/.test(r))).toHaveLength(doomedDeliveries);
        expect(reasons).toEqual(
          expect.arrayContaining([
            expect.stringMatching(/not valid JSON/),
            expect.stringMatching(/field 'time'/),
            expect.stringMatching(/field 'entity'/),
            expect.stringMatching(/bytes/),
          ]),
        );
        // listing does not consume
        expect((await listDlq(t.dlqUrl)).length).toBe(dlq.length);

        // fix the fault, redrive: the doomed events apply once; poison is parked again
        broken = false;
        const before = { ...consumer.counts };
        const moved = await redriveDlq(t.dlqUrl, t.queueUrl);
        expect(moved).toEqual({ moved: dlq.length, failed: 0 });
        await consumer.drained(120_000);
        const after = consumer.counts;
        expect(after.parked - before.parked).toBe(poison.length);
        const doomedDistinct = events.filter((e) => e.entity === "doomed").length;
        expect(after.applied + after.stale - before.applied - before.stale).toBe(doomedDistinct);
        expect(after.duplicate - before.duplicate).toBe(doomedDeliveries - doomedDistinct);
        await expectModelState(t.table, events);
        const left = await listDlq(t.dlqUrl);
        expect(left.map((m) => m.reason).every((r) => !/exceeded maxReceiveCount/.test(r))).toBe(true);
        expect(left).toHaveLength(poison.length);
      } finally {
        await consumer.stop();
      }
    }, 300_000);
  });

  it("back pressure: a slow consumer leaves accept latency unchanged while the queue grows, then drains", async () => {
    const t = await target({ visibilityTimeoutSeconds: 10 }); // longer than a slowed batch takes
    const accept = await startLocalAccept(t.queueUrl);
    const mk = (k: number, n: number) =>
      Array.from({ length: n }, (_, i) =>
        serializeEvent({ entity: `bp-${i % 5}`, id: `k${k}-${i}`, time: 5000 + k * 100 + i, type: "t", payload: null }),
      );
    try {
      // accept latency with no consumer at all
      const idle: number[] = [];
      for (let k = 0; k < 8; k++) idle.push(...(await postEvents(accept.url, mk(k, 20))).latenciesMs);
      let slow = true;
      const wrap =
        (h: Handler): Handler =>
        async (event, ctx) => {
          if (slow) await new Promise((r) => setTimeout(r, 1500));
          return h(event, ctx);
        };
      const consumer = await startLocalConsumer(t, { wrap, overrides: { maximumConcurrency: 2 } });
      try {
        const busy: number[] = [];
        for (let k = 8; k < 16; k++) busy.push(...(await postEvents(accept.url, mk(k, 20))).latenciesMs);
        const depth = await queueCounts(t.queueUrl);
        process.stderr.write(
          `back pressure: accept p50 idle ${percentile(idle, 50).toFixed(1)} ms, with a slow consumer ${percentile(busy, 50).toFixed(1)} ms; queued ${depth.visible + depth.inFlight}\n`,
        );
        // the queue absorbed the burst: most events are still waiting
        expect(depth.visible + depth.inFlight).toBeGreaterThan(100);
        // producers do not feel the slow consumer (generous bound: the machine is shared and noisy)
        expect(percentile(busy, 50)).toBeLessThan(percentile(idle, 50) * 3 + 100);
        slow = false;
        await consumer.drained(120_000);
        expect(consumer.counts.applied + consumer.counts.stale + consumer.counts.duplicate).toBe(16 * 20);
        const all = Array.from({ length: 16 }, (_, k) => mk(k, 20))
          .flat()
          .map((l) => JSON.parse(l) as FerryEvent);
        await expectModelState(t.table, all);
      } finally {
        await consumer.stop();
      }
    } finally {
      await accept.close();
    }
  }, 300_000);

  it("FIFO: per-entity order (no stale), the failing entity's group is skipped, not the batch", async () => {
    const t = await target({ fifo: true, maxReceiveCount: 10 });
    const accept = await startLocalAccept(t.queueUrl);
    const events: FerryEvent[] = [];
    for (let i = 0; i < 24; i++) {
      events.push({
        entity: `g-${i % 4 === 0 ? "bad" : i % 4}`,
        id: `f${i}`,
        time: 100 + i,
        type: "t",
        payload: { i },
      });
    }
    // the table rejects g-bad's writes for a while (failure injection the emulator cannot produce)
    let badFailures = 0;
    const goodAppliedAt: number[] = [];
    let lastBadFailureAt = 0;
    const real = dynamoRaw();
    const flaky = {
      send: async (cmd: { input?: { Item?: { pk?: { S?: string } } } }) => {
        if (cmd.input?.Item?.pk?.S === "E#g-bad" && badFailures < 3) {
          badFailures++;
          lastBadFailureAt = Date.now();
          throw Object.assign(new Error("injected: throttled"), { name: "ThrottlingException" });
        }
        return real.send(cmd as never);
      },
    } as unknown as DynamoDBClient;
    const consumer = await startLocalConsumer(t, {
      deps: { dynamo: flaky },
      onResult: (r) => {
        if (r.outcome === "applied" && "entity" in r && r.entity !== "g-bad") goodAppliedAt.push(Date.now());
      },
    });
    try {
      const sent = await postEvents(accept.url, events.map(serializeEvent), { chunk: 24 });
      expect(sent.accepted).toBe(events.length);
      await consumer.drained(120_000);
      expect(badFailures).toBe(3);
      // other entities kept flowing while g-bad's group was failing
      expect(goodAppliedAt.filter((at) => at < lastBadFailureAt).length).toBeGreaterThan(0);
      // strict per-entity order: nothing stale, every event applied exactly once
      expect(consumer.counts.stale).toBe(0);
      expect(consumer.counts.duplicate).toBe(0);
      expect(consumer.counts.applied).toBe(events.length);
      await expectModelState(t.table, events);
    } finally {
      await consumer.stop();
      await accept.close();
    }
  }, 300_000);
});
