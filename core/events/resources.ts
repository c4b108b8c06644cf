/**
 * Create the events table and queues directly (tests, benchmarks, and the CLI's fallback on the embedded stack when
 * no synthesized deployment is used). Same shape as infra/constructs/event-ingestion.ts: table pk/sk (strings),
 * queue with a redrive policy to its DLQ. Idempotent.
 */
import { CreateTableCommand, DescribeTableCommand, ResourceInUseException } from "@aws-sdk/client-dynamodb";
import { CreateQueueCommand, GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import { EVENTS } from "../limits.js";
import { eventsDynamo, eventsSqs } from "./clients.js";

export interface EventsResources {
  table: string;
  queueUrl: string;
  dlqUrl: string;
}

export async function ensureEventsTable(table: string): Promise<void> {
  const client = eventsDynamo();
  try {
    await client.send(
      new CreateTableCommand({
        TableName: table,
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: [
          { AttributeName: "pk", AttributeType: "S" },
          { AttributeName: "sk", AttributeType: "S" },
        ],
        KeySchema: [
          { AttributeName: "pk", KeyType: "HASH" },
          { AttributeName: "sk", KeyType: "RANGE" },
        ],
      }),
    );
  } catch (err) {
    if (!(err instanceof ResourceInUseException) && (err as Error).name !== "ResourceInUseException") throw err;
  }
  for (let i = 0; i < 100; i++) {
    const d = await client.send(new DescribeTableCommand({ TableName: table }));
    if (d.Table?.TableStatus === "ACTIVE") return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function ensureEventsQueues(
  name: string,
  opts: { fifo?: boolean; maxReceiveCount?: number; visibilityTimeoutSeconds?: number } = {},
): Promise<{ queueUrl: string; dlqUrl: string }> {
  const client = eventsSqs();
  const suffix = opts.fifo ? ".fifo" : "";
  const fifoAttrs: Record<string, string> = opts.fifo ? { FifoQueue: "true" } : {};
  const dlq = await client.send(
    new CreateQueueCommand({
      QueueName: `${name}-dlq${suffix}`,
      Attributes: { ...fifoAttrs, MessageRetentionPeriod: String(EVENTS.dlqRetentionDays * 86400) },
    }),
  );
  const dlqArn = (
    await client.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl!, AttributeNames: ["QueueArn"] }))
  ).Attributes!.QueueArn!;
  const q = await client.send(
    new CreateQueueCommand({
      QueueName: `${name}${suffix}`,
      Attributes: {
        ...fifoAttrs,
        VisibilityTimeout: String(
          opts.visibilityTimeoutSeconds ?? EVENTS.consumerTimeoutSeconds * EVENTS.visibilityTimeoutFactor,
        ),
        RedrivePolicy: JSON.stringify({
          deadLetterTargetArn: dlqArn,
          maxReceiveCount: opts.maxReceiveCount ?? EVENTS.maxReceiveCount,
        }),
      },
    }),
  );
  return { queueUrl: q.QueueUrl!, dlqUrl: dlq.QueueUrl! };
}

export async function ensureEventsResources(
  name: string,
  opts: { fifo?: boolean; maxReceiveCount?: number; visibilityTimeoutSeconds?: number } = {},
): Promise<EventsResources> {
  await ensureEventsTable(`${name}-events`);
  const q = await ensureEventsQueues(name, opts);
  return { table: `${name}-events`, ...q };
}
