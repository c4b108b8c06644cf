/**
 * The local deployer against the local stack: the fixture CDK stack's buckets, tables (GSI, billing), queues (FIFO,
 * visibility, redrive to the DLQ) are created with deterministic names, idempotently; functions get their handler
 * entry and resolved environment; state machine ASL is extracted with local names; event source mappings are listed;
 * invoke() runs a handler in process with its environment.
 */
import { DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import { HeadBucketCommand } from "@aws-sdk/client-s3";
import { GetQueueAttributesCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalDeployment, localClients, startEventSourceMappings } from "../../local/deploy/index.js";
import { deployFixture } from "../fixtures/sfn/deploy-fixture.js";
import { ensureLocalStack } from "../fixtures/sfn/local-stack.js";

const prefix = `dep${Date.now().toString(36)}-`;
let stop: () => Promise<void>;
let d: LocalDeployment;

beforeAll(async () => {
  stop = await ensureLocalStack();
  d = await deployFixture(prefix);
}, 300_000);
afterAll(async () => stop?.());

describe("deployLocal", () => {
  it("creates buckets, tables and queues with deterministic local names", async () => {
    const { s3, dynamodb, sqs } = localClients();
    const bucket = d.resources.Data666C94C7;
    expect(bucket?.name).toBe(`${prefix}sfnfixture-data666c94c7`);
    await s3.send(new HeadBucketCommand({ Bucket: bucket?.name }));

    const table = d.resources.Control42E771B2;
    expect(table?.name).toBe(`${prefix}SfnFixture-Control42E771B2`);
    const t = await dynamodb.send(new DescribeTableCommand({ TableName: table?.name }));
    expect(t.Table?.KeySchema).toEqual([
      { AttributeName: "pk", KeyType: "HASH" },
      { AttributeName: "sk", KeyType: "RANGE" },
    ]);
    expect(t.Table?.GlobalSecondaryIndexes?.map((g) => g.IndexName)).toEqual(["byStatus"]);

    const queue = d.resources.EventsD32975C2;
    const dlq = d.resources.EventsDlqACDA5DFF;
    expect(queue?.name.endsWith(".fifo")).toBe(true);
    const qa = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queue?.url, AttributeNames: ["All"] }));
    expect(qa.Attributes?.FifoQueue).toBe("true");
    expect(qa.Attributes?.VisibilityTimeout).toBe("45");
    const redrive = JSON.parse(qa.Attributes?.RedrivePolicy ?? "{}");
    expect(redrive.deadLetterTargetArn).toBe(dlq?.arn);
    expect(Number(redrive.maxReceiveCount)).toBe(3);
  });

  it("is idempotent: a second deploy reuses the same resources", async () => {
    const again = await deployFixture(prefix);
    expect(Object.fromEntries(Object.entries(again.resources).map(([k, v]) => [k, v.url ?? v.name]))).toEqual(
      Object.fromEntries(Object.entries(d.resources).map(([k, v]) => [k, v.url ?? v.name])),
    );
  });

  it("resolves each function's handler entry and environment", () => {
    const poll = d.functions.PollFnC646FF16;
    expect(poll?.entry).toMatch(/test\/fixtures\/sfn\/handlers\/poll\.ts$/);
    expect(poll?.handlerName).toBe("handler");
    expect(poll?.env.FERRY_DATA_BUCKET).toBe(d.resources.Data666C94C7?.name);
    expect(poll?.env.FERRY_CONTROL_TABLE).toBe(d.resources.Control42E771B2?.name);
    expect(d.functions.ConsumeFn4D14D3EF?.env.FERRY_EVENTS_QUEUE_URL).toBe(d.resources.Plain295EB121?.url);
    // a plain lambda.Function has no local handler
    expect(d.functions.OrphanFnC093471D?.entry).toBeUndefined();
    expect(d.envConflicts).toEqual([]);
    expect(process.env.FERRY_DATA_BUCKET).toBe(d.resources.Data666C94C7?.name);
  });

  it("extracts each state machine's ASL with local names and fake function ARNs", () => {
    const sm = d.stateMachine("fixture-distributed");
    expect(sm.name).toBe(`${prefix}fixture-distributed`);
    expect(d.stateMachine(sm.arn)).toBe(sm);
    const map = sm.asl.States.ProcessObjects;
    expect(map?.ItemReader.Resource).toBe("arn:aws:states:::s3:listObjectsV2");
    expect(map?.ItemReader.Parameters.Bucket).toBe(d.resources.Data666C94C7?.name);
    const task = map?.ItemProcessor.States.ProcessBatch;
    expect(task?.Parameters.FunctionName).toBe(d.functions.ProcessBatchFn42C4BC7C?.arn);
    expect(d.findFunction(`${task?.Parameters.FunctionName}:$LATEST`)?.logicalId).toBe("ProcessBatchFn42C4BC7C");
  });

  it("lists SQS event source mappings with their settings", () => {
    expect(d.eventSourceMappings).toHaveLength(1);
    const m = d.eventSourceMappings[0];
    expect(m).toMatchObject({
      functionLogicalId: "ConsumeFn4D14D3EF",
      queueLogicalId: "Plain295EB121",
      queueUrl: d.resources.Plain295EB121?.url,
      queueArn: d.resources.Plain295EB121?.arn,
      batchSize: 10,
      maximumBatchingWindowSeconds: 1,
      maximumConcurrency: 2,
      reportBatchItemFailures: true,
      enabled: true,
    });
  });

  it("invokes a handler in process with its environment; errors keep their name", async () => {
    process.env.FERRY_DATA_BUCKET = "clobbered";
    const out = (await d.invoke("PollFnC646FF16", { attempt: 1, target: 2 })) as Record<string, unknown>;
    expect(out).toEqual({ attempt: 2, target: 2, done: true, bucketEnv: d.resources.Data666C94C7?.name });
    await expect(d.invoke("MaybeFailFn3D76B6C8", { id: 3, fail: true })).rejects.toMatchObject({ name: "InputError" });
    await expect(d.invoke("OrphanFnC093471D", {})).rejects.toThrow(/OrphanFnC093471D has no local handler/);
  });

  it("runs the event source mappings: messages reach the handler and are deleted", async () => {
    const running = startEventSourceMappings(d);
    try {
      expect(running.mappings.map((m) => m.functionLogicalId)).toEqual(["ConsumeFn4D14D3EF"]);
      const { sqs } = localClients();
      for (let i = 0; i < 3; i++) {
        await sqs.send(new SendMessageCommand({ QueueUrl: d.resources.Plain295EB121?.url, MessageBody: `m${i}` }));
      }
      const mapping = running.mappings[0]?.mapping;
      await mapping?.drained({ timeoutMs: 30_000 });
      expect(mapping?.stats().deleted).toBe(3);
      expect(mapping?.stats().failedInvocations).toBe(0);
    } finally {
      await running.stop();
    }
  }, 60_000);
});
