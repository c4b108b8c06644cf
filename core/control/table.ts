/**
 * Access to the control table (one DynamoDB table, pk/sk strings; see core/control/keys.ts). A lazily created
 * DocumentClient with default config: the endpoint comes from AWS_ENDPOINT_URL_DYNAMODB on the local stack.
 * Single-item conditional writes only (no transactions). Throttling and network failures become TransientError so
 * the state machine's Retry can tell them apart from permanent failures.
 */
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  UpdateCommand,
  type UpdateCommandInput,
} from "@aws-sdk/lib-dynamodb";
import { dynamo } from "../aws/clients.js";
import { ENV, requireEnv } from "../env.js";
import { ConflictError, TransientError } from "../errors.js";

/** The shared DocumentClient (core/aws: re-created when the endpoint environment changes). */
export function controlClient(): DynamoDBDocumentClient {
  return dynamo();
}

/** Kept for callers that reset clients; core/aws re-creates them on environment changes by itself. */
export function resetControlClient(): void {}

export function controlTableName(explicit?: string): string {
  return explicit ?? requireEnv(ENV.controlTable);
}

const TRANSIENT_NAMES = new Set([
  "ProvisionedThroughputExceededException",
  "ThrottlingException",
  "RequestLimitExceeded",
  "InternalServerError",
  "ServiceUnavailable",
  "TimeoutError",
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
]);

export function isConditionFailed(err: unknown): boolean {
  return (err as { name?: string } | undefined)?.name === "ConditionalCheckFailedException";
}

/** Re-throw an SDK error as TransientError when it is worth retrying; otherwise unchanged. */
export function classifyAwsError(err: unknown, what: string): never {
  const e = err as { name?: string; code?: string; $retryable?: unknown; $metadata?: { httpStatusCode?: number } };
  const status = e?.$metadata?.httpStatusCode ?? 0;
  if (
    TRANSIENT_NAMES.has(e?.name ?? "") ||
    TRANSIENT_NAMES.has(e?.code ?? "") ||
    e?.$retryable ||
    status >= 500 ||
    status === 429
  ) {
    throw new TransientError(`${what}: ${(err as Error).message ?? String(err)}`, { cause: e?.name }, { cause: err });
  }
  throw err;
}

export type Item = Record<string, unknown>;

export async function getItem(table: string, key: { pk: string; sk: string }): Promise<Item | undefined> {
  try {
    const out = await controlClient().send(new GetCommand({ TableName: table, Key: key, ConsistentRead: true }));
    return out.Item;
  } catch (err) {
    return classifyAwsError(err, `control table ${table} get ${key.pk}/${key.sk}`);
  }
}

/** Put only if no item with this key exists. Returns false (no throw) when it already existed. */
export async function putIfAbsent(table: string, item: Item): Promise<boolean> {
  try {
    await controlClient().send(
      new PutCommand({ TableName: table, Item: item, ConditionExpression: "attribute_not_exists(pk)" }),
    );
    return true;
  } catch (err) {
    if (isConditionFailed(err)) return false;
    return classifyAwsError(err, `control table ${table} put ${String(item.pk)}/${String(item.sk)}`);
  }
}

/**
 * A conditional UpdateItem. Returns the new item, or undefined when the condition failed (the caller decides if
 * that is a conflict or "already done").
 */
export async function updateIf(input: Omit<UpdateCommandInput, "ReturnValues">): Promise<Item | undefined> {
  try {
    const out = await controlClient().send(new UpdateCommand({ ...input, ReturnValues: "ALL_NEW" }));
    return out.Attributes;
  } catch (err) {
    if (isConditionFailed(err)) return undefined;
    return classifyAwsError(err, `control table ${input.TableName} update`);
  }
}

/** Query all items of one partition (optionally with an sk prefix), following pagination. */
export async function queryAll(table: string, pk: string, skPrefix?: string): Promise<Item[]> {
  const items: Item[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const input: QueryCommandInput = {
      TableName: table,
      KeyConditionExpression: skPrefix ? "pk = :pk AND begins_with(sk, :sk)" : "pk = :pk",
      ExpressionAttributeValues: skPrefix ? { ":pk": pk, ":sk": skPrefix } : { ":pk": pk },
      ConsistentRead: true,
      ExclusiveStartKey: start,
    };
    try {
      const out = await controlClient().send(new QueryCommand(input));
      items.push(...(out.Items ?? []));
      start = out.LastEvaluatedKey;
    } catch (err) {
      return classifyAwsError(err, `control table ${table} query ${pk}`);
    }
  } while (start);
  return items;
}

export function conflict(message: string, details: Record<string, unknown> = {}): never {
  throw new ConflictError(message, details);
}
