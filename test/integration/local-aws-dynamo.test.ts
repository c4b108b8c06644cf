import { CreateTableCommand } from "@aws-sdk/client-dynamodb";
import { CreateQueueCommand } from "@aws-sdk/client-sqs";
import { beforeAll, describe, expect, it } from "vitest";
import {
  dynamoRaw,
  getItem,
  putIfNotExists,
  putItem,
  queryAll,
  queueDepth,
  sendBatch,
  sqs,
  updateItem,
} from "../../core/aws/index.js";
import { ConflictError } from "../../core/errors.js";

const table = `aws-dyn-${Date.now().toString(36)}`;

beforeAll(async () => {
  await dynamoRaw().send(
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
});

describe("core/aws DynamoDB and SQS helpers on the local stack", () => {
  it("conditional writes: a lost condition is a ConflictError naming table and key", async () => {
    expect(await putIfNotExists(table, { pk: "A", sk: "1", v: 1 })).toBe(true);
    expect(await putIfNotExists(table, { pk: "A", sk: "1", v: 2 })).toBe(false);
    expect(await getItem(table, { pk: "A", sk: "1" })).toEqual({ pk: "A", sk: "1", v: 1 });
    const upd = await updateItem({
      TableName: table,
      Key: { pk: "A", sk: "1" },
      UpdateExpression: "SET v = :n",
      ConditionExpression: "v = :o",
      ExpressionAttributeValues: { ":n": 5, ":o": 1 },
    });
    expect(upd?.v).toBe(5);
    const lost = updateItem({
      TableName: table,
      Key: { pk: "A", sk: "1" },
      UpdateExpression: "SET v = :n",
      ConditionExpression: "v = :o",
      ExpressionAttributeValues: { ":n": 6, ":o": 1 },
    });
    await expect(lost).rejects.toBeInstanceOf(ConflictError);
    await expect(lost).rejects.toThrow(new RegExp(`UpdateItem ${table} .*"pk":"A"`));
    await expect(
      putItem({ TableName: table, Item: { pk: "A", sk: "1" }, ConditionExpression: "attribute_not_exists(pk)" }),
    ).rejects.toBeInstanceOf(ConflictError);
    expect(await getItem(table, { pk: "nope", sk: "x" })).toBeUndefined();
  });

  it("queryAll reads every page", async () => {
    const big = "x".repeat(60_000); // ~60 KB items: a 1 MB page holds ~16
    for (let i = 0; i < 40; i++)
      await putItem({ TableName: table, Item: { pk: "Q", sk: String(i).padStart(3, "0"), big } });
    const items = await queryAll({
      TableName: table,
      KeyConditionExpression: "pk = :p",
      ExpressionAttributeValues: { ":p": "Q" },
    });
    expect(items.length).toBe(40);
  });

  it("sendBatch sends in batches of 10 and reports sender faults", async () => {
    const { QueueUrl } = await sqs().send(new CreateQueueCommand({ QueueName: `aws-q-${Date.now().toString(36)}` }));
    const entries = Array.from({ length: 25 }, (_, i) => ({ Id: `m${i}`, MessageBody: `body ${i}` }));
    const r = await sendBatch(QueueUrl!, entries);
    expect(r).toEqual({ sent: 25, failed: [] });
    expect((await queueDepth(QueueUrl!)).visible).toBe(25);
  });
});
