/**
 * accept — Lambda Function URL (AWS_IAM auth): a batch of events (JSON array or JSONL) in, 202 + per-event results
 * out. Thin: decode the HTTP event, call core/events/accept, shape the response.
 */
import type { LambdaFunctionURLEvent, LambdaFunctionURLResult } from "aws-lambda";
import { acceptBatch } from "../../core/events/accept.js";
import { ENV, requireEnv } from "../../core/env.js";

export async function handler(event: LambdaFunctionURLEvent): Promise<LambdaFunctionURLResult> {
  const method = event.requestContext?.http?.method ?? "POST";
  if (method !== "POST") return json(405, { error: `method ${method} not allowed: POST a JSON array or JSON lines` });
  const raw = event.body ?? "";
  const body = event.isBase64Encoded ? Buffer.from(raw, "base64").toString("utf8") : raw;
  const res = await acceptBatch(body, { queueUrl: requireEnv(ENV.eventsQueueUrl) });
  const { statusCode, ...rest } = res;
  return json(statusCode, rest);
}

function json(statusCode: number, body: unknown): LambdaFunctionURLResult {
  return { statusCode, headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
}
