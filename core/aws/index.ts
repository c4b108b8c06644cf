/** AWS helpers for core/: lazily created default-config clients, typed errors, S3/DynamoDB/SQS helpers. */
export * from "./clients.js";
export * from "./dynamo.js";
export * from "./errors.js";
export * from "./s3.js";
export * from "./sqs.js";
