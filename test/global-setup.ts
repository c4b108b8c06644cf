/**
 * vitest globalSetup: one embedded local stack (S3, DynamoDB, SQS on 127.0.0.1) per test run, in a temp state dir,
 * stopped after the run. Its SDK environment reaches the test workers two ways: `provide("ferryLocalEnv", env)`
 * (test/setup-env.ts applies it with inject) and process.env of this process (workers are forked after this runs).
 *
 * FERRY_TEST_NO_STACK=1 skips starting it (pure unit runs).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { type LocalStack, startLocalStack } from "../local/stack/index.js";

declare module "vitest" {
  export interface ProvidedContext {
    ferryLocalEnv: Record<string, string>;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.env.FERRY_TEST_NO_STACK === "1") {
    project.provide("ferryLocalEnv", {});
    return async () => {};
  }
  const stateDir = mkdtempSync(join(tmpdir(), "ferry-test-stack-"));
  let stack: LocalStack;
  const t0 = Date.now();
  try {
    stack = await startLocalStack({ stateDir });
  } catch (err) {
    rmSync(stateDir, { recursive: true, force: true });
    throw err;
  }
  if (process.env.FERRY_TEST_VERBOSE) {
    process.stderr.write(`local stack up in ${Date.now() - t0} ms: ${JSON.stringify(stack.endpoints)}\n`);
  }
  project.provide("ferryLocalEnv", stack.env);
  for (const [k, v] of Object.entries(stack.env)) process.env[k] = v;
  return async () => {
    await stack.stop();
    rmSync(stateDir, { recursive: true, force: true });
  };
}
