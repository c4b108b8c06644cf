/**
 * Runs in every test worker before its test files: points the AWS SDK environment (and FERRY_LOCAL_DIR, so
 * withLocalStack/findRunningStack use the run's stack) at the local stack test/global-setup.ts started.
 * SDK clients created through core/aws pick it up; a client built by hand must be created after this (it is).
 */
import { inject } from "vitest";
import { applyEnv } from "../local/stack/index.js";

const env = inject("ferryLocalEnv");
if (env && Object.keys(env).length > 0) applyEnv(env);
