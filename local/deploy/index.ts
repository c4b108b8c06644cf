/** Public API of the local deployer. See docs/local-runner.md. */
export { localClients, localRegion } from "./clients.js";
export {
  type CfnTemplate,
  type DeployOptions,
  deployLocal,
  LOCAL_ACCOUNT_ID,
  LocalDeployment,
  type LocalEventSourceMapping,
  type LocalFunction,
  type LocalResource,
  type LocalStateMachine,
  synthesizeTemplate,
} from "./deploy.js";
export { type RunningEventSources, startEventSourceMappings } from "./event-sources.js";
