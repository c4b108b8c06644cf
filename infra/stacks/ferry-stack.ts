/**
 * The ferry stack: the bulk-load pipeline and event ingestion. Each part is a construct under infra/constructs/.
 */
import { Stack, type StackProps } from "aws-cdk-lib";
import type { Construct } from "constructs";
import { EventIngestion } from "../constructs/event-ingestion.js";

export interface FerryStackProps extends StackProps {}

export class FerryStack extends Stack {
  constructor(scope: Construct, id: string, props: FerryStackProps = {}) {
    super(scope, id, props);
    // constructs are added here as they land: BulkLoadPipeline, EventIngestion, triggers
    new EventIngestion(this, "Events");
  }
}
