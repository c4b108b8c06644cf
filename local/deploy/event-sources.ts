/**
 * Run a LocalDeployment's SQS event source mappings with local/event-source (the SQS→Lambda poller): each mapping
 * polls its queue with the template's BatchSize, batching window, MaximumConcurrency and ReportBatchItemFailures,
 * and invokes the function's handler in process through LocalDeployment.invoke.
 */
import type { SQSBatchResponse } from "aws-lambda";
import {
  type EventSourceMapping,
  type EventSourceMappingOptions,
  mappingOptionsFromCfn,
  startEventSourceMapping,
} from "../event-source/index.js";
import type { LocalDeployment } from "./deploy.js";

export interface RunningEventSources {
  mappings: { logicalId: string; functionLogicalId: string; mapping: EventSourceMapping }[];
  stop(): Promise<void>;
}

/** Start every enabled SQS event source mapping of the deployment (or only those whose logical id is listed). */
export function startEventSourceMappings(
  deployment: LocalDeployment,
  opts: { only?: string[]; overrides?: Partial<EventSourceMappingOptions> } = {},
): RunningEventSources {
  const mappings: RunningEventSources["mappings"] = [];
  for (const m of deployment.eventSourceMappings) {
    if (opts.only && !opts.only.includes(m.logicalId)) continue;
    const { enabled, ...fromCfn } = mappingOptionsFromCfn(m.properties);
    if (!enabled || !m.queueUrl) continue;
    const fn = deployment.functions[m.functionLogicalId];
    const mapping = startEventSourceMapping({
      ...fromCfn,
      queueUrl: m.queueUrl,
      queueArn: m.queueArn,
      functionName: fn?.name,
      functionTimeoutSeconds: fn?.timeoutSeconds,
      handler: async (event) => (await deployment.invoke(m.functionLogicalId, event)) as SQSBatchResponse | undefined,
      ...opts.overrides,
    });
    mappings.push({ logicalId: m.logicalId, functionLogicalId: m.functionLogicalId, mapping });
  }
  return {
    mappings,
    stop: async () => {
      await Promise.all(mappings.map((m) => m.mapping.stop()));
    },
  };
}
