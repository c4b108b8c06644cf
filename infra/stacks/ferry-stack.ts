/**
 * The ferry stack: the bulk-load pipeline and event ingestion. Each part is a construct under infra/constructs/.
 */
import { Stack, type StackProps } from "aws-cdk-lib";
import type { Construct } from "constructs";
import { BulkLoadPipeline } from "../constructs/bulk-load-pipeline.js";
import { EventIngestion } from "../constructs/event-ingestion.js";
import { BulkLoadTriggers, type TriggerDatasetConfig } from "../constructs/triggers.js";

export interface FerryStackProps extends StackProps {
  /** dataset configs with triggers (schedule / marker); default: context `ferry:datasets` (a JSON array) */
  datasets?: TriggerDatasetConfig[];
}

export class FerryStack extends Stack {
  constructor(scope: Construct, id: string, props: FerryStackProps = {}) {
    super(scope, id, props);
    // constructs are added here as they land: BulkLoadPipeline, EventIngestion, triggers
    new EventIngestion(this, "Events");
    const bulkLoad = new BulkLoadPipeline(this, "BulkLoad");
    const datasets = props.datasets ?? parseDatasets(this.node.tryGetContext("ferry:datasets"));
    if (datasets.length > 0) {
      new BulkLoadTriggers(this, "Triggers", {
        stateMachine: bulkLoad.stateMachine,
        dataBucket: bulkLoad.dataBucket,
        datasets,
      });
    }
  }
}

function parseDatasets(ctx: unknown): TriggerDatasetConfig[] {
  if (ctx === undefined || ctx === null) return [];
  const v = typeof ctx === "string" ? JSON.parse(ctx) : ctx;
  if (!Array.isArray(v)) throw new Error("context ferry:datasets must be a JSON array of dataset configs");
  return v as TriggerDatasetConfig[];
}
