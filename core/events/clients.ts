/**
 * Lazy SDK clients for the events area. Endpoints and credentials come from the standard environment
 * (AWS_ENDPOINT_URL_DYNAMODB / _SQS), so the same code runs on Lambda and on the embedded stack. Tests and the CLI
 * may inject clients through the `deps` arguments of the functions instead.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SQSClient } from "@aws-sdk/client-sqs";

let ddb: DynamoDBClient | undefined;
let sq: SQSClient | undefined;

export function eventsDynamo(): DynamoDBClient {
  ddb ??= new DynamoDBClient({ maxAttempts: 6 });
  return ddb;
}

export function eventsSqs(): SQSClient {
  sq ??= new SQSClient({ maxAttempts: 6 });
  return sq;
}

/** Forget cached clients (after the environment changed, e.g. a new local stack in the same process). */
export function resetEventsClients(): void {
  ddb?.destroy();
  sq?.destroy();
  ddb = undefined;
  sq = undefined;
}
