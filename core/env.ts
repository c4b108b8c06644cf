/**
 * The environment variables ferry's functions read. Set by CDK on Lambda, by the local runner on the embedded
 * stack. Endpoints are NOT here: the AWS SDK reads AWS_ENDPOINT_URL_S3 / _DYNAMODB / _SQS itself.
 */
import { ConfigError } from "./errors.js";

export const ENV = {
  dataBucket: "FERRY_DATA_BUCKET",
  controlTable: "FERRY_CONTROL_TABLE",
  eventsTable: "FERRY_EVENTS_TABLE",
  eventsQueueUrl: "FERRY_EVENTS_QUEUE_URL",
  eventsDlqUrl: "FERRY_EVENTS_DLQ_URL",
  /** local runner only: fail this share (0..1) of task attempts with a TransientError, for idempotence tests */
  faultRate: "FERRY_FAULT_RATE",
} as const;

export function requireEnv(name: string): string {
  const v = process.env[name];
  if (!v) throw new ConfigError(`environment variable ${name} is not set`, { field: name });
  return v;
}
