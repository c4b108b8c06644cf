/** Test helpers for the fleet/host tests: a fresh control table and bucket per test file on the local stack. */
import { randomBytes } from "node:crypto";
import { CreateTableCommand, DeleteTableCommand } from "@aws-sdk/client-dynamodb";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { dynamoRaw, s3 } from "../../core/aws/clients.js";

export function uniq(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

export async function createControlTable(name = uniq("ferry-control")): Promise<string> {
  await dynamoRaw().send(
    new CreateTableCommand({
      TableName: name,
      AttributeDefinitions: [
        { AttributeName: "pk", AttributeType: "S" },
        { AttributeName: "sk", AttributeType: "S" },
      ],
      KeySchema: [
        { AttributeName: "pk", KeyType: "HASH" },
        { AttributeName: "sk", KeyType: "RANGE" },
      ],
      BillingMode: "PAY_PER_REQUEST",
    }),
  );
  return name;
}

export async function dropTable(name: string): Promise<void> {
  await dynamoRaw()
    .send(new DeleteTableCommand({ TableName: name }))
    .catch(() => {});
}

export async function createBucket(name = uniq("ferry-data")): Promise<string> {
  await s3().send(new CreateBucketCommand({ Bucket: name }));
  return name;
}
