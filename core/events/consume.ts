/**
 * Consume one queued event: decode, validate, apply. Messages that can never succeed (not JSON, schema violation,
 * oversize) are parked in the DLQ with the reason and count as `parked` — retrying them would only delay them to
 * the same end. Anything else that goes wrong throws (TransientError) so the record is reported as a batch item
 * failure and SQS delivers it again (after maxReceiveCount attempts SQS moves it to the DLQ itself).
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { SQSClient } from "@aws-sdk/client-sqs";
import { TransientError } from "../errors.js";
import { parseEventText } from "./model.js";
import { parkMessage } from "./queue.js";
import { type ApplyOutcome, applyEvent } from "./store.js";

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

export async function consumeMessage(msg: QueuedMessage, deps: ConsumeDeps): Promise<ConsumeResult> {
  const parsed = parseEventText(msg.body);
  if (!parsed.ok) {
    try {
      await parkMessage(
        deps.dlqUrl,
        { body: msg.body, messageId: msg.messageId, reason: parsed.reason },
        {
          client: deps.sqs,
        },
      );
    } catch (err) {
      throw new TransientError(
        `parking message ${msg.messageId} failed: ${(err as Error).message}`,
        {},
        { cause: err },
      );
    }
    return { outcome: "parked", reason: parsed.reason };
  }
  const outcome = await applyEvent(parsed.event, { table: deps.table, client: deps.dynamo });
  return { outcome, entity: parsed.event.entity };
}
