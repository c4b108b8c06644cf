/** Public API of the local Step Functions runner. See docs/local-runner.md. */
export { type AslDefinition, extractDefinition, validateDefinition, walkStates } from "./asl.js";
export type { ExecutionRecord, ExecutionStatus } from "./executions.js";
export { type FaultConfig, faultConfigFromEnv } from "./faults.js";
export {
  type ExecutionHandle,
  type LocalRunnerOptions,
  LocalStepFunctions,
  type ProgressEvent,
  type StartExecutionInput,
  statesError,
} from "./runner.js";
