/**
 * SDK clients for the events area: the shared lazy clients of core/aws (endpoints and credentials from the standard
 * environment, re-created when it changes), so the same code runs on Lambda and on the embedded stack. Tests and
 * the CLI may inject clients through the `deps` arguments of the functions instead.
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { SQSClient } from "@aws-sdk/client-sqs";
import { dynamoRaw, sqs } from "../aws/clients.js";

export function eventsDynamo(): DynamoDBClient {
  return dynamoRaw();
}

export function eventsSqs(): SQSClient {
  return sqs();
}
