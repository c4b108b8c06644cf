/**
 * Lazily created AWS SDK v3 clients with default configuration: region, credentials and endpoints come from the
 * standard environment (AWS_REGION, AWS_ENDPOINT_URL_S3 / _DYNAMODB / _SQS, ...), so the same code talks to AWS in
 * Lambda and to the embedded local stack on a laptop. A client is re-created when the environment it was built from
 * changes (tests and `withLocalStack` set the env after modules are loaded), so never cache the returned client in a
 * module-level variable: call `s3()` / `dynamo()` / `sqs()` where you use it (the call is cheap).
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { LeanHttpHandler } from "./lean-http.js";

/** the env vars a client's configuration depends on */
const CONFIG_VARS = [
  "AWS_REGION",
  "AWS_DEFAULT_REGION",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_PROFILE",
  "AWS_ENDPOINT_URL",
  "AWS_REQUEST_CHECKSUM_CALCULATION",
  "AWS_RESPONSE_CHECKSUM_VALIDATION",
  "FERRY_S3_HTTP",
] as const;

function envKey(endpointVar: string): string {
  let k = process.env[endpointVar] ?? "";
  for (const v of CONFIG_VARS) k += `|${process.env[v] ?? ""}`;
  return k;
}

function lazy<T extends { destroy(): void }>(endpointVar: string, make: () => T): () => T {
  let client: T | undefined;
  let key = "";
  return () => {
    const k = envKey(endpointVar);
    if (!client || k !== key) {
      // the old client may still have requests in flight: let it be garbage collected instead of destroying it
      client = make();
      key = k;
    }
    return client;
  };
}

/**
 * S3 client (path-style addressing happens automatically for an IP endpoint such as http://127.0.0.1:PORT). GETs go
 * through LeanHttpHandler (core/aws/lean-http.ts: bodies read into reused buffers) unless FERRY_S3_HTTP=node.
 * No `Expect: 100-continue`: the SDK sends it for bodies of 2 MiB and more and then sends the request on a one-off
 * connection without keep-alive — on AWS a TCP + TLS handshake for every 8 MiB multipart part. The price: a PUT that
 * S3 refuses (credentials, a wrong region) sends its body before the error comes back.
 */
export const s3 = lazy(
  "AWS_ENDPOINT_URL_S3",
  () =>
    new S3Client({
      expectContinueHeader: false,
      ...(process.env.FERRY_S3_HTTP === "node" ? {} : { requestHandler: new LeanHttpHandler() }),
    }),
);

/** Low-level DynamoDB client. */
export const dynamoRaw = lazy("AWS_ENDPOINT_URL_DYNAMODB", () => new DynamoDBClient({}));

/** DynamoDB document client: plain JS values in and out; undefined attributes are dropped. */
export const dynamo = lazy("AWS_ENDPOINT_URL_DYNAMODB", () =>
  DynamoDBDocumentClient.from(new DynamoDBClient({}), {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: true },
  }),
);

export const sqs = lazy("AWS_ENDPOINT_URL_SQS", () => new SQSClient({}));

/** The region clients use (AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1). */
export function awsRegion(): string {
  return process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || "us-east-1";
}
