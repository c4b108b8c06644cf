/** SQS helpers: batched sends that retry the entries SQS refused, queue attributes, ARN ↔ URL. */
import {
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
} from "@aws-sdk/client-sqs";
import { ConfigError } from "../errors.js";
import { sqs } from "./clients.js";
import { withRetries } from "./errors.js";

/** SQS's limit of entries per SendMessageBatch */
export const SQS_BATCH_MAX = 10;

export interface SendFailure {
  id: string;
  code?: string;
  message?: string;
  senderFault: boolean;
}

/**
 * Sends `entries` in batches of 10. Entries SQS refused for a server-side reason are retried (up to `attempts`);
 * sender faults (bad entry) are returned, not retried. Ids must be unique within the call.
 */
export async function sendBatch(
  queueUrl: string,
  entries: SendMessageBatchRequestEntry[],
  opts: { attempts?: number } = {},
): Promise<{ sent: number; failed: SendFailure[] }> {
  const attempts = opts.attempts ?? 4;
  let sent = 0;
  const failed: SendFailure[] = [];
  for (let i = 0; i < entries.length; i += SQS_BATCH_MAX) {
    let batch = entries.slice(i, i + SQS_BATCH_MAX);
    for (let attempt = 1; batch.length > 0; attempt++) {
      const res = await withRetries(`SendMessageBatch ${queueUrl}`, () =>
        sqs().send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: batch })),
      );
      sent += res.Successful?.length ?? 0;
      const retry: SendMessageBatchRequestEntry[] = [];
      for (const f of res.Failed ?? []) {
        const entry = batch.find((e) => e.Id === f.Id);
        if (!f.SenderFault && entry && attempt < attempts) retry.push(entry);
        else failed.push({ id: f.Id!, code: f.Code, message: f.Message, senderFault: Boolean(f.SenderFault) });
      }
      batch = retry;
      if (retry.length) await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
    }
  }
  return { sent, failed };
}

export async function queueAttributes(queueUrl: string): Promise<Record<string, string>> {
  const res = await withRetries(`GetQueueAttributes ${queueUrl}`, () =>
    sqs().send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["All"] })),
  );
  return res.Attributes ?? {};
}

/** arn:aws:sqs:<region>:<account>:<name> → the queue's URL (asks SQS). */
export async function queueUrlFromArn(arn: string): Promise<string> {
  const parts = arn.split(":");
  if (parts.length < 6 || parts[2] !== "sqs") throw new ConfigError(`not an SQS queue ARN: ${arn}`);
  const res = await withRetries(`GetQueueUrl ${arn}`, () =>
    sqs().send(new GetQueueUrlCommand({ QueueName: parts[5], QueueOwnerAWSAccountId: parts[4] })),
  );
  return res.QueueUrl!;
}

/** Number of messages visible / in flight / delayed. */
export async function queueDepth(queueUrl: string): Promise<{ visible: number; inFlight: number; delayed: number }> {
  const a = await queueAttributes(queueUrl);
  return {
    visible: Number(a.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0),
    delayed: Number(a.ApproximateNumberOfMessagesDelayed ?? 0),
  };
}
