/**
 * FerryFunction: NodejsFunction with ferry's defaults — nodejs22.x on arm64, ESM bundle, source maps, structured
 * JSON logs with a bounded log group retention, X-Ray tracing. Props are NodejsFunctionProps: anything can be
 * overridden. No business logic here.
 */
import { type CfnResource, Duration } from "aws-cdk-lib";
import { Architecture, LoggingFormat, Runtime, Tracing } from "aws-cdk-lib/aws-lambda";
import { NodejsFunction, type NodejsFunctionProps, OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import type { Construct } from "constructs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Absolute path of a handler file under functions/. */
export function functionEntry(relative: string): string {
  return path.join(REPO_ROOT, "functions", relative);
}

/** CloudFormation metadata keys read by the local runner (local/deploy). */
export const FERRY_ENTRY_METADATA = "ferry:entry";
export const FERRY_HANDLER_METADATA = "ferry:handler";

export interface FerryFunctionProps extends NodejsFunctionProps {
  /** path under functions/, e.g. "bulk-load/plan.ts", or an absolute path (test fixtures outside functions/) */
  readonly handlerFile: string;
}

export class FerryFunction extends NodejsFunction {
  constructor(scope: Construct, id: string, props: FerryFunctionProps) {
    const { handlerFile, ...rest } = props;
    const entry = rest.entry ?? (path.isAbsolute(handlerFile) ? handlerFile : functionEntry(handlerFile));
    const logGroup = new LogGroup(scope, `${id}Logs`, { retention: RetentionDays.ONE_MONTH });
    super(scope, id, {
      runtime: Runtime.NODEJS_22_X,
      architecture: Architecture.ARM_64,
      memorySize: 1024,
      timeout: Duration.minutes(1),
      tracing: Tracing.ACTIVE,
      loggingFormat: LoggingFormat.JSON,
      logGroup,
      handler: "handler",
      projectRoot: REPO_ROOT,
      depsLockFilePath: path.join(REPO_ROOT, "package-lock.json"),
      ...rest,
      bundling: {
        format: OutputFormat.ESM,
        target: "node22",
        sourceMap: true,
        minify: true,
        // ESM bundles need a require shim for CommonJS dependencies
        banner:
          "import { createRequire as __ferryCreateRequire } from 'module'; const require = __ferryCreateRequire(import.meta.url);",
        ...rest.bundling,
      },
      environment: {
        NODE_OPTIONS: "--enable-source-maps",
        ...rest.environment,
      },
      entry,
    });
    // the local runner (local/deploy) finds the TypeScript handler through this metadata
    (this.node.defaultChild as CfnResource).addMetadata(FERRY_ENTRY_METADATA, path.relative(REPO_ROOT, entry));
    (this.node.defaultChild as CfnResource).addMetadata(FERRY_HANDLER_METADATA, rest.handler ?? "handler");
  }
}
