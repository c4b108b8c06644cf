/**
 * DynamoDB helpers over the document client: single-item conditional writes (the only kind ferry uses: they scale
 * and every local stand-in supports them). A lost condition becomes ConflictError; throttling and 5xx become
 * TransientError (see ./errors.ts).
 */
import {
  DeleteCommand,
  type DeleteCommandInput,
  GetCommand,
  PutCommand,
  type PutCommandInput,
  QueryCommand,
  type QueryCommandInput,
  UpdateCommand,
  type UpdateCommandInput,
} from "@aws-sdk/lib-dynamodb";
import { ConflictError } from "../errors.js";
import { dynamo } from "./clients.js";
import { withRetries } from "./errors.js";

export type Item = Record<string, unknown>;

function keyText(key: Item | undefined): string {
  return key ? JSON.stringify(key) : "";
}

/** GetItem (strongly consistent unless told otherwise); undefined when absent. */
export async function getItem<T extends Item = Item>(
  table: string,
  key: Item,
  opts: { consistent?: boolean } = {},
): Promise<T | undefined> {
  const res = await withRetries(`GetItem ${table} ${keyText(key)}`, () =>
    dynamo().send(new GetCommand({ TableName: table, Key: key, ConsistentRead: opts.consistent ?? true })),
  );
  return res.Item as T | undefined;
}

/** PutItem; with a ConditionExpression a lost condition throws ConflictError (message names the table and key). */
export async function putItem(input: PutCommandInput): Promise<void> {
  const key = pickKey(input.Item as Item);
  await withRetries(`PutItem ${input.TableName} ${keyText(key)}`, () => dynamo().send(new PutCommand(input)));
}

/** PutItem only if no item with this key exists (attribute `keyAttr` absent). Returns false when one exists. */
export async function putIfNotExists(table: string, item: Item, keyAttr = "pk"): Promise<boolean> {
  try {
    await putItem({
      TableName: table,
      Item: item,
      ConditionExpression: "attribute_not_exists(#k)",
      ExpressionAttributeNames: { "#k": keyAttr },
    });
    return true;
  } catch (err) {
    if (err instanceof ConflictError) return false;
    throw err;
  }
}

/** UpdateItem; returns the new attributes (ALL_NEW unless ReturnValues says otherwise). Lost condition → ConflictError. */
export async function updateItem<T extends Item = Item>(input: UpdateCommandInput): Promise<T | undefined> {
  const res = await withRetries(`UpdateItem ${input.TableName} ${keyText(input.Key as Item)}`, () =>
    dynamo().send(new UpdateCommand({ ReturnValues: "ALL_NEW", ...input })),
  );
  return res.Attributes as T | undefined;
}

export async function deleteItem(input: DeleteCommandInput): Promise<void> {
  await withRetries(`DeleteItem ${input.TableName} ${keyText(input.Key as Item)}`, () =>
    dynamo().send(new DeleteCommand(input)),
  );
}

/** Every item of a Query (all pages). */
export async function queryAll<T extends Item = Item>(input: QueryCommandInput): Promise<T[]> {
  const out: T[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const res = await withRetries(`Query ${input.TableName}`, () =>
      dynamo().send(new QueryCommand({ ...input, ExclusiveStartKey: start })),
    );
    out.push(...((res.Items ?? []) as T[]));
    start = res.LastEvaluatedKey;
  } while (start);
  return out;
}

function pickKey(item: Item | undefined): Item | undefined {
  if (!item) return undefined;
  const k: Item = {};
  for (const a of ["pk", "sk", "id", "entity"]) if (a in item) k[a] = item[a];
  return Object.keys(k).length ? k : undefined;
}
