/**
 * The CDK app. `npx cdk synth` / `cdk deploy` run this file; the local runner (local/) builds the same app in
 * process with buildApp() and executes the synthesized state machines against the embedded stack.
 */
import { App, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import { FerryStack } from "./stacks/ferry-stack.js";

export interface BuildAppOptions {
  /** skip esbuild bundling (tests, local runner): the local runner calls the TypeScript handlers directly */
  skipBundling?: boolean;
  /** run cdk-nag AwsSolutions checks (default true) */
  nag?: boolean;
  outdir?: string;
}

export function buildApp(options: BuildAppOptions = {}): { app: App; stack: FerryStack } {
  const context: Record<string, unknown> = {};
  if (options.skipBundling) context["aws:cdk:bundling-stacks"] = [];
  const app = new App({ context, outdir: options.outdir });
  const stack = new FerryStack(app, process.env.FERRY_STACK_NAME ?? "Ferry", {
    description: "ferry: serverless bulk load (SST) and event ingestion",
  });
  if (options.nag !== false) Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return { app, stack };
}

const isEntry = process.argv[1] && /infra[\\/]app\.ts$/.test(process.argv[1]);
if (isEntry) {
  const { app } = buildApp();
  app.synth();
}
