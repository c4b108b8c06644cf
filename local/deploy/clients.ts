/**
 * SDK clients for the local deployer and runner. Endpoints come from the standard environment
 * (AWS_ENDPOINT_URL_S3 / _DYNAMODB / _SQS), exactly like the handlers; path-style S3 for the loopback emulators.
 * Created lazily so a process can set the environment first.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";

export interface LocalClients {
  s3: S3Client;
  dynamodb: DynamoDBClient;
  sqs: SQSClient;
}

let cached: { key: string; clients: LocalClients } | undefined;

export function localRegion(): string {
  return process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1";
}

export function localClients(): LocalClients {
  const key = [
    process.env.AWS_ENDPOINT_URL_S3,
    process.env.AWS_ENDPOINT_URL_DYNAMODB,
    process.env.AWS_ENDPOINT_URL_SQS,
    localRegion(),
  ].join("|");
  if (cached?.key === key) return cached.clients;
  const region = localRegion();
  const clients: LocalClients = {
    s3: new S3Client({ region, forcePathStyle: true }),
    dynamodb: new DynamoDBClient({ region }),
    sqs: new SQSClient({ region }),
  };
  cached = { key, clients };
  return clients;
}
