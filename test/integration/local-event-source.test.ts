import { createHash } from "node:crypto";
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import type { SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { afterEach, describe, expect, it } from "vitest";
import { sendBatch, sqs } from "../../core/aws/index.js";
import {
  type EventSourceMapping,
  fifoBlockedIds,
  mappingOptionsFromCfn,
  startEventSourceMapping,
} from "../../local/event-source/index.js";

let n = 0;
const uniq = (p: string) => `${p}-${Date.now().toString(36)}-${n++}`;

async function makeQueue(opts: { fifo?: boolean; maxReceiveCount?: number; visibility?: number } = {}) {
  const suffix = opts.fifo ? ".fifo" : "";
  const fifoAttrs: Record<string, string> = opts.fifo ? { FifoQueue: "true", ContentBasedDeduplication: "true" } : {};
  const dlq = await sqs().send(new CreateQueueCommand({ QueueName: uniq("esm-dlq") + suffix, Attributes: fifoAttrs }));
  const dlqArn = (
    await sqs().send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ["QueueArn"] }))
  ).Attributes!.QueueArn!;
  const q = await sqs().send(
    new CreateQueueCommand({
      QueueName: uniq("esm-q") + suffix,
      Attributes: {
        ...fifoAttrs,
        VisibilityTimeout: String(opts.visibility ?? 2), // > a batch round trip even on a loaded machine
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: opts.maxReceiveCount ?? 3 }),
      },
    }),
  );
  return { url: q.QueueUrl!, dlqUrl: dlq.QueueUrl! };
}

async function drainQueue(url: string): Promise<{ id: string; body: string }[]> {
  const out: { id: string; body: string }[] = [];
  for (;;) {
    const r = await sqs().send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    );
    if (!r.Messages?.length) return out;
    for (const m of r.Messages) out.push({ id: m.MessageId!, body: m.Body! });
  }
}

const running: EventSourceMapping[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((m) => m.stop()));
});

const send = async (url: string, bodies: string[], extra: (i: number) => Record<string, unknown> = () => ({})) => {
  const r = await sendBatch(
    url,
    bodies.map((b, i) => ({ Id: `e${i}`, MessageBody: b, ...extra(i) })),
  );
  expect(r.failed).toEqual([]);
};

describe("SQS → Lambda event source emulation", () => {
  it("partial batch failures: only the reported records come back; every message applied exactly once", async () => {
    const { url, dlqUrl } = await makeQueue();
    const bodies = Array.from({ length: 30 }, (_, i) => (i % 4 === 0 ? `fail-once-${i}` : `ok-${i}`));
    await send(url, bodies, (i) =>
      i === 1 ? { MessageAttributes: { kind: { DataType: "String", StringValue: "special" } } } : {},
    );
    const applied = new Map<string, number>();
    const seen = new Map<string, number>();
    const records: SQSRecord[] = [];
    const m = startEventSourceMapping({
      queueUrl: url,
      batchSize: 10,
      maximumConcurrency: 2,
      reportBatchItemFailures: true,
      handler: async (event: SQSEvent): Promise<SQSBatchResponse> => {
        const batchItemFailures: { itemIdentifier: string }[] = [];
        for (const r of event.Records) {
          records.push(r);
          seen.set(r.messageId, (seen.get(r.messageId) ?? 0) + 1);
          if (r.body.startsWith("fail-once") && r.attributes.ApproximateReceiveCount === "1") {
            batchItemFailures.push({ itemIdentifier: r.messageId });
          } else applied.set(r.messageId, (applied.get(r.messageId) ?? 0) + 1);
        }
        return { batchItemFailures };
      },
    });
    running.push(m);
    await m.drained({ timeoutMs: 30_000 });
    const st = m.stats();
    const failOnce = bodies.filter((b) => b.startsWith("fail-once")).length;
    expect(failOnce).toBe(8);
    expect(applied.size).toBe(30);
    expect([...applied.values()].every((c) => c === 1)).toBe(true);
    expect(st.reportedFailures).toBe(failOnce);
    expect(st.returned).toBe(failOnce);
    expect(st.deleted).toBe(30);
    expect(st.received).toBe(30 + failOnce);
    expect([...seen.values()].filter((c) => c === 2).length).toBe(failOnce);
    expect(await drainQueue(dlqUrl)).toEqual([]);

    // the records look like Lambda's
    const r = records.find((x) => x.body === "ok-1")!;
    expect(r).toMatchObject({
      eventSource: "aws:sqs",
      awsRegion: "us-east-1",
      md5OfBody: createHash("md5").update("ok-1").digest("hex"),
      messageAttributes: { kind: { stringValue: "special", dataType: "String", stringListValues: [] } },
    });
    expect(r.eventSourceARN).toMatch(/^arn:aws:sqs:us-east-1:000000000000:esm-q-/);
    expect(r.receiptHandle).toBeTruthy();
    expect(r.attributes.ApproximateReceiveCount).toBe("1");
    expect(Number(r.attributes.SentTimestamp)).toBeGreaterThan(0);
    expect(Number(r.attributes.ApproximateFirstReceiveTimestamp)).toBeGreaterThan(0);
  });

  it("a record failing every time lands in the DLQ after maxReceiveCount; nothing else is lost", async () => {
    const { url, dlqUrl } = await makeQueue({ maxReceiveCount: 3 });
    await send(url, ["good-1", "poison", "good-2"]);
    const attempts = new Map<string, number>();
    const m = startEventSourceMapping({
      queueUrl: url,
      batchSize: 10,
      reportBatchItemFailures: true,
      handler: async (event) => {
        for (const r of event.Records) attempts.set(r.body, (attempts.get(r.body) ?? 0) + 1);
        return {
          batchItemFailures: event.Records.filter((r) => r.body === "poison").map((r) => ({
            itemIdentifier: r.messageId,
          })),
        };
      },
    });
    running.push(m);
    await m.drained({ timeoutMs: 30_000 });
    expect(attempts.get("poison")).toBe(3);
    expect(attempts.get("good-1")).toBe(1);
    expect(attempts.get("good-2")).toBe(1);
    const dead = await drainQueue(dlqUrl);
    expect(dead.map((d) => d.body)).toEqual(["poison"]);
    expect(m.stats().deleted).toBe(2);
  });

  it("without ReportBatchItemFailures a throw returns the whole batch; success deletes all", async () => {
    const { url, dlqUrl } = await makeQueue();
    const bodies = Array.from({ length: 20 }, (_, i) => `m-${i}`);
    await send(url, bodies);
    const applied = new Map<string, number>();
    let throws = 0;
    const m = startEventSourceMapping({
      queueUrl: url,
      batchSize: 5,
      maximumConcurrency: 2,
      reportBatchItemFailures: false,
      onInvocationError: () => {},
      handler: async (event) => {
        if (event.Records.some((r) => r.body === "m-7" && r.attributes.ApproximateReceiveCount === "1")) {
          throws++;
          throw new Error("boom");
        }
        for (const r of event.Records) applied.set(r.body, (applied.get(r.body) ?? 0) + 1);
        // ignored: the mapping does not report item failures
        return { batchItemFailures: [{ itemIdentifier: event.Records[0].messageId }] };
      },
    });
    running.push(m);
    await m.drained({ timeoutMs: 30_000 });
    const st = m.stats();
    expect(throws).toBe(1);
    expect(st.failedInvocations).toBe(1);
    expect(applied.size).toBe(20);
    expect([...applied.values()].every((c) => c === 1)).toBe(true);
    expect(st.deleted).toBe(20);
    expect(st.returned).toBeGreaterThanOrEqual(1);
    expect(st.returned).toBe(st.received - 20);
    expect(await drainQueue(dlqUrl)).toEqual([]);
  });

  it("maximum concurrency is never exceeded", async () => {
    const { url } = await makeQueue({ visibility: 30 });
    await send(
      url,
      Array.from({ length: 40 }, (_, i) => `c-${i}`),
    );
    let inFlight = 0;
    let maxSeen = 0;
    let total = 0;
    const m = startEventSourceMapping({
      queueUrl: url,
      batchSize: 2,
      maximumConcurrency: 3,
      handler: async (event) => {
        inFlight++;
        maxSeen = Math.max(maxSeen, inFlight);
        await new Promise((r) => setTimeout(r, 60));
        total += event.Records.length;
        inFlight--;
      },
    });
    running.push(m);
    await m.drained({ timeoutMs: 30_000 });
    expect(total).toBe(40);
    expect(maxSeen).toBe(3);
    expect(m.stats().maxInFlight).toBe(3);
  });

  it("batching window: batches larger than one receive, never above BatchSize", async () => {
    const { url } = await makeQueue({ visibility: 30 });
    await send(
      url,
      Array.from({ length: 45 }, (_, i) => `w-${i}`),
    );
    const sizes: number[] = [];
    const m = startEventSourceMapping({
      queueUrl: url,
      batchSize: 25,
      maximumBatchingWindowSeconds: 1,
      maximumConcurrency: 2,
      handler: async (event) => {
        sizes.push(event.Records.length);
      },
    });
    running.push(m);
    await m.drained({ timeoutMs: 30_000 });
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(45);
    expect(Math.max(...sizes)).toBeGreaterThan(10);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(25);
  });

  it("FIFO: per-group order kept through a failure; the other group is not held up", async () => {
    const { url } = await makeQueue({ fifo: true });
    const bodies: string[] = [];
    for (const g of ["A", "B"]) for (let i = 0; i < 5; i++) bodies.push(`${g}-${i}`);
    await send(url, bodies, (i) => ({ MessageGroupId: bodies[i][0] }));
    const appliedOrder: Record<string, string[]> = { A: [], B: [] };
    let failedOnce = false;
    let maxPerGroup = 0;
    const m = startEventSourceMapping({
      queueUrl: url,
      batchSize: 10,
      maximumConcurrency: 2,
      reportBatchItemFailures: true,
      handler: async (event) => {
        const batchItemFailures: { itemIdentifier: string }[] = [];
        const blocked = new Set<string>();
        for (const g of ["A", "B"])
          maxPerGroup = Math.max(maxPerGroup, event.Records.filter((r) => r.body[0] === g).length);
        for (const r of event.Records) {
          const g = r.attributes.MessageGroupId!;
          if (blocked.has(g)) continue; // (deliberately NOT reported: the emulator must hold them back)
          if (r.body === "A-2" && !failedOnce) {
            failedOnce = true;
            batchItemFailures.push({ itemIdentifier: r.messageId });
            blocked.add(g);
            continue;
          }
          appliedOrder[g].push(r.body);
        }
        return { batchItemFailures };
      },
    });
    running.push(m);
    await m.drained({ timeoutMs: 30_000 });
    expect(appliedOrder.A).toEqual(["A-0", "A-1", "A-2", "A-3", "A-4"]);
    expect(appliedOrder.B).toEqual(["B-0", "B-1", "B-2", "B-3", "B-4"]);
    // fauxqs 1.9.2 delivers one message per group per receive (SQS: several), so a batch never holds two of a group
    // and there is nothing to block here; fifoBlockedIds is checked on its own below
    expect(maxPerGroup).toBe(1);
    expect(m.stats().fifoBlocked).toBe(0);
  });

  it("FIFO rule: later records of a failed record's group are held back, other groups are not", () => {
    const recs = ["A1", "B1", "A2", "A3", "B2", "C1"].map((id) => ({ messageId: id, groupId: id[0] }));
    expect(fifoBlockedIds(recs, new Set(["A2"]))).toEqual(["A3"]);
    expect(fifoBlockedIds(recs, new Set(["A1", "B1"]))).toEqual(["A2", "A3", "B2"]);
    expect(fifoBlockedIds(recs, new Set(["C1"]))).toEqual([]);
    expect(fifoBlockedIds(recs, new Set())).toEqual([]);
  });

  it("a handler that exceeds the function timeout fails its batch", async () => {
    const { url } = await makeQueue();
    await send(url, ["slow"]);
    let calls = 0;
    const m = startEventSourceMapping({
      queueUrl: url,
      functionTimeoutSeconds: 0.3,
      onInvocationError: () => {},
      handler: async () => {
        calls++;
        if (calls === 1) await new Promise((r) => setTimeout(r, 600));
      },
    });
    running.push(m);
    await m.drained({ timeoutMs: 30_000 });
    // the second invocation's delete may still be in flight when the queue already looks empty (busy machines)
    for (let i = 0; i < 200 && m.stats().deleted < 1; i++) await new Promise((r) => setTimeout(r, 50));
    expect(calls).toBe(2);
    expect(m.stats()).toMatchObject({ timeouts: 1, failedInvocations: 1, deleted: 1 });
  });

  it("stop() hands back messages it holds for a batch that was not invoked yet", async () => {
    const { url } = await makeQueue({ visibility: 60 });
    await send(url, ["h-1", "h-2", "h-3"]);
    let invoked = 0;
    const m = startEventSourceMapping({
      queueUrl: url,
      batchSize: 100,
      maximumBatchingWindowSeconds: 30,
      handler: async () => {
        invoked++;
      },
    });
    for (let i = 0; i < 200 && m.stats().received < 3; i++) await new Promise((r) => setTimeout(r, 25));
    expect(m.stats().received).toBe(3);
    await m.stop();
    expect(invoked).toBe(0);
    const back = await drainQueue(url);
    expect(back.map((b) => b.body).sort()).toEqual(["h-1", "h-2", "h-3"]);
  });

  it("options from a CloudFormation AWS::Lambda::EventSourceMapping", () => {
    expect(
      mappingOptionsFromCfn({
        BatchSize: 100,
        MaximumBatchingWindowInSeconds: 1,
        ScalingConfig: { MaximumConcurrency: 10 },
        FunctionResponseTypes: ["ReportBatchItemFailures"],
        EventSourceArn: "arn:aws:sqs:us-east-1:000000000000:q",
      }),
    ).toEqual({
      batchSize: 100,
      maximumBatchingWindowSeconds: 1,
      maximumConcurrency: 10,
      reportBatchItemFailures: true,
      queueArn: "arn:aws:sqs:us-east-1:000000000000:q",
      enabled: true,
    });
    expect(mappingOptionsFromCfn({})).toMatchObject({
      batchSize: 10,
      maximumBatchingWindowSeconds: 0,
      reportBatchItemFailures: false,
    });
    expect(() => mappingOptionsFromCfn({ BatchSize: 50 })).toThrow(/requires MaximumBatchingWindowInSeconds/);
    expect(() => mappingOptionsFromCfn({ ScalingConfig: { MaximumConcurrency: 1 } })).toThrow(/2\.\.1000/);
  });
});
