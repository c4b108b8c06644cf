/**
 * "Deploy" a CDK app onto the embedded local stack: synthesize it in process (bundling skipped, cdk-nag off), read
 * the stack's template, create its S3 buckets, DynamoDB tables and SQS queues on the emulators (deterministic local
 * names derived from the logical ids; idempotent: a second deploy reuses what exists), resolve every Lambda
 * function's handler source (FerryFunction's `ferry:entry` metadata) and environment, extract every state machine's
 * ASL, and list the SQS event source mappings. The result, a LocalDeployment, can invoke any function in process.
 */
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  type GlobalSecondaryIndex,
} from "@aws-sdk/client-dynamodb";
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  SetQueueAttributesCommand,
} from "@aws-sdk/client-sqs";
import type { App, Stack } from "aws-cdk-lib";
import { ConfigError, NotFoundError } from "../../core/errors.js";
import { FERRY_ENTRY_METADATA, FERRY_HANDLER_METADATA, REPO_ROOT } from "../../infra/constructs/ferry-function.js";
import { type AslDefinition, extractDefinition, validateDefinition } from "../sfn/asl.js";
import { resolveStateDir } from "../stack/index.js";
import { localClients, localRegion } from "./clients.js";
import { type RefResolver, resolveIntrinsics } from "./intrinsics.js";

export const LOCAL_ACCOUNT_ID = "000000000000";

export interface CfnResourceDef {
  Type: string;
  Properties?: Record<string, unknown>;
  Metadata?: Record<string, unknown>;
  DependsOn?: string | string[];
}
export interface CfnTemplate {
  Resources: Record<string, CfnResourceDef>;
}

export interface LocalResource {
  logicalId: string;
  type: string;
  /** bucket / table / queue / function / state machine name on the local stack */
  name: string;
  arn: string;
  /** SQS queue URL */
  url?: string;
}

export interface LocalFunction {
  logicalId: string;
  name: string;
  arn: string;
  /** absolute path of the TypeScript handler module; undefined = no local handler (not a FerryFunction) */
  entry?: string;
  /** exported function name, e.g. "handler" */
  handlerName: string;
  /** resolved Environment.Variables (local bucket names, table names, queue URLs, state machine ARNs) */
  env: Record<string, string>;
  timeoutSeconds: number;
}

export interface LocalStateMachine {
  logicalId: string;
  /** local name (namePrefix applied) */
  name: string;
  /** StateMachineName as declared in the template (or the logical id) */
  declaredName: string;
  arn: string;
  asl: AslDefinition;
}

export interface LocalEventSourceMapping {
  logicalId: string;
  functionLogicalId: string;
  queueLogicalId?: string;
  queueArn: string;
  queueUrl?: string;
  batchSize: number;
  maximumBatchingWindowSeconds: number;
  /** ScalingConfig.MaximumConcurrency (undefined = unbounded) */
  maximumConcurrency?: number;
  reportBatchItemFailures: boolean;
  enabled: boolean;
  /** the mapping's resolved CloudFormation Properties (for local/event-source mappingOptionsFromCfn) */
  properties: Record<string, unknown>;
}

export interface DeployOptions {
  /** an App holding the stack to deploy (default: infra/app.ts buildApp, bundling skipped, nag off) */
  app?: App;
  /** the stack to deploy when the app holds several (default: the app's only stack / FerryStack) */
  stack?: Stack;
  /** an already synthesized template (skips synthesis) */
  template?: CfnTemplate;
  /** stack name used in local names (default: the stack's name) */
  stackName?: string;
  /** prepended to every local name, to isolate tests from each other (default "") */
  namePrefix?: string;
  /** put the union of the functions' FERRY_* variables into process.env at deploy time (default true) */
  applyEnv?: boolean;
  /** create resources on the emulators (default true); false = only resolve (names, ASL, functions) */
  create?: boolean;
  /**
   * default app only: cache its synthesized template in this directory, keyed by a hash of infra/, core/, cdk.json
   * and FERRY_STACK_NAME (default <local stack state dir>/synth; false = always synthesize)
   */
  cacheDir?: string | false;
}

/** Environment variables invoke() never copies from a function into process.env. */
const RESERVED_ENV = /^(AWS_|_|NODE_OPTIONS$|LAMBDA_)/;

/** Synthesize an App in process and return its stack's template. */
export async function synthesizeTemplate(opts: Pick<DeployOptions, "app" | "stack" | "cacheDir"> = {}): Promise<{
  template: CfnTemplate;
  stackName: string;
}> {
  if (!opts.app && opts.cacheDir !== false) {
    const dir = opts.cacheDir ?? path.join(resolveStateDir(), "synth");
    const file = path.join(dir, `ferry-template-${sourceHash()}.json`);
    if (existsSync(file)) return JSON.parse(readFileSync(file, "utf8"));
    const out = await synthesizeTemplate({ ...opts, cacheDir: false });
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${file}.${process.pid}.tmp`, JSON.stringify(out));
    renameSync(`${file}.${process.pid}.tmp`, file);
    return out;
  }
  let app = opts.app;
  let stack = opts.stack;
  let outdir: string | undefined;
  if (!app) {
    outdir = mkdtempSync(path.join(os.tmpdir(), "ferry-synth-"));
    const { buildApp } = await import("../../infra/app.js");
    const built = buildApp({ skipBundling: true, nag: false, outdir });
    app = built.app;
    stack = built.stack;
  }
  try {
    const assembly = app.synth();
    const stacks = assembly.stacks;
    const artifact = stack ? assembly.getStackByName(stack.stackName) : stacks.length === 1 ? stacks[0] : undefined;
    if (!artifact) {
      throw new ConfigError(
        `the app has ${stacks.length} stacks (${stacks.map((s) => s.stackName).join(", ")}): pass options.stack`,
      );
    }
    return { template: artifact.template as CfnTemplate, stackName: artifact.stackName };
  } finally {
    if (outdir) rmSync(outdir, { recursive: true, force: true });
  }
}

/** Hash of what the default app's template depends on: infra/ and core/ sources, cdk.json, FERRY_STACK_NAME. */
function sourceHash(): string {
  const h = createHash("sha256");
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(ts|json)$/.test(e.name)) h.update(p).update(readFileSync(p));
    }
  };
  walk(path.join(REPO_ROOT, "infra"));
  walk(path.join(REPO_ROOT, "core"));
  const cdkJson = path.join(REPO_ROOT, "cdk.json");
  if (existsSync(cdkJson)) h.update(readFileSync(cdkJson));
  h.update(process.env.FERRY_STACK_NAME ?? "");
  return h.digest("hex").slice(0, 16);
}

function localName(prefix: string, stackName: string, logicalId: string, max: number, lower: boolean): string {
  let n = `${prefix}${stackName}-${logicalId}`;
  if (lower) n = n.toLowerCase().replace(/[^a-z0-9-]/g, "-");
  else n = n.replace(/[^A-Za-z0-9_.-]/g, "-");
  return n.slice(0, max).replace(/-+$/, "");
}

function literal(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

export class LocalDeployment {
  readonly resources: Record<string, LocalResource> = {};
  readonly functions: Record<string, LocalFunction> = {};
  readonly stateMachines: Record<string, LocalStateMachine> = {};
  readonly eventSourceMappings: LocalEventSourceMapping[] = [];
  /** union of the functions' non-reserved environment variables */
  readonly env: Record<string, string> = {};
  /** variables two functions set to different values: invoke() sets them per call (see docs/local-runner.md) */
  readonly envConflicts: string[] = [];
  private readonly handlers = new Map<string, (event: unknown, context: unknown) => Promise<unknown>>();

  constructor(
    readonly stackName: string,
    readonly namePrefix: string,
    readonly region: string,
    readonly template: CfnTemplate,
  ) {}

  readonly accountId = LOCAL_ACCOUNT_ID;

  /** A state machine by logical id, declared name, local name or ARN. */
  stateMachine(ref: string): LocalStateMachine {
    const sm =
      this.stateMachines[ref] ??
      Object.values(this.stateMachines).find((s) => s.declaredName === ref || s.name === ref || s.arn === ref);
    if (!sm) {
      throw new NotFoundError(
        `no state machine "${ref}" in stack ${this.stackName} (have: ${Object.values(this.stateMachines)
          .map((s) => `${s.logicalId}/${s.declaredName}`)
          .join(", ")})`,
      );
    }
    return sm;
  }

  /** A function by logical id, local name or (fake) ARN, with or without a version/alias qualifier. */
  findFunction(ref: string): LocalFunction | undefined {
    if (this.functions[ref]) return this.functions[ref];
    const unq = ref.replace(/^(arn:[^:]+:lambda:[^:]*:[^:]*:function:[^:]+):.*$/, "$1");
    return Object.values(this.functions).find((f) => f.arn === unq || f.name === unq);
  }

  /** Put the union of the functions' variables into process.env (conflicting ones are left to invoke()). */
  applyEnv(): void {
    for (const [k, v] of Object.entries(this.env)) if (!this.envConflicts.includes(k)) process.env[k] = v;
  }

  /** Load a function's handler (dynamic import of its TypeScript entry; tsx/vitest compile it). */
  async loadHandler(ref: string): Promise<(event: unknown, context: unknown) => Promise<unknown>> {
    const fn = this.findFunction(ref);
    if (!fn) throw new NotFoundError(`no function "${ref}" in stack ${this.stackName}`);
    const cached = this.handlers.get(fn.logicalId);
    if (cached) return cached;
    if (!fn.entry) {
      throw new ConfigError(
        `function ${fn.logicalId} has no local handler: it is not a FerryFunction (no "${FERRY_ENTRY_METADATA}" metadata)`,
        { field: fn.logicalId },
      );
    }
    const mod = (await import(fn.entry)) as Record<string, unknown>;
    const h = mod[fn.handlerName];
    if (typeof h !== "function") {
      throw new ConfigError(`function ${fn.logicalId}: ${fn.entry} does not export a function "${fn.handlerName}"`, {
        field: fn.logicalId,
      });
    }
    const wrapped = async (event: unknown, context: unknown) =>
      (h as (e: unknown, c: unknown) => unknown)(event, context);
    this.handlers.set(fn.logicalId, wrapped);
    return wrapped;
  }

  /**
   * Invoke a function in process like Lambda would: the payload and the result go through JSON, the function's
   * environment is applied to process.env for the call, a Lambda-like context is passed. Errors propagate with
   * their `name` (what Step Functions matches).
   */
  async invoke(ref: string, payload: unknown): Promise<unknown> {
    const fn = this.findFunction(ref);
    if (!fn) throw new NotFoundError(`no function "${ref}" in stack ${this.stackName}`);
    const handler = await this.loadHandler(fn.logicalId);
    for (const [k, v] of Object.entries(fn.env)) if (!RESERVED_ENV.test(k)) process.env[k] = v;
    const deadline = Date.now() + fn.timeoutSeconds * 1000;
    const context = {
      functionName: fn.name,
      functionVersion: "$LATEST",
      invokedFunctionArn: fn.arn,
      memoryLimitInMB: "1024",
      awsRequestId: crypto.randomUUID(),
      logGroupName: `/aws/lambda/${fn.name}`,
      logStreamName: "local",
      callbackWaitsForEmptyEventLoop: true,
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
      done: () => {},
      fail: () => {},
      succeed: () => {},
    };
    const event = payload === undefined ? null : JSON.parse(JSON.stringify(payload));
    const result = await handler(event, context);
    return result === undefined ? null : JSON.parse(JSON.stringify(result));
  }
}

/** Deploy a CDK app (default: the ferry app) onto the local stack. */
export async function deployLocal(opts: DeployOptions = {}): Promise<LocalDeployment> {
  let template = opts.template;
  let stackName = opts.stackName;
  if (!template) {
    const synth = await synthesizeTemplate(opts);
    template = synth.template;
    stackName ??= synth.stackName;
  }
  const deployment = new LocalDeployment(stackName ?? "Local", opts.namePrefix ?? "", localRegion(), template);
  await createResources(deployment, opts.create !== false);
  resolveFunctionsAndMachines(deployment);
  if (opts.applyEnv !== false) deployment.applyEnv();
  return deployment;
}

async function createResources(d: LocalDeployment, create: boolean): Promise<void> {
  const { s3, dynamodb, sqs } = localClients();
  const entries = Object.entries(d.template.Resources);
  const refsSoFar = makeRefs(d);
  // buckets
  for (const [id, r] of entries) {
    if (r.Type !== "AWS::S3::Bucket") continue;
    const name = literal(r.Properties?.BucketName) ?? localName(d.namePrefix, d.stackName, id, 63, true);
    if (create) {
      try {
        await s3.send(new CreateBucketCommand({ Bucket: name }));
      } catch (e) {
        const n = (e as { name?: string }).name;
        if (n !== "BucketAlreadyOwnedByYou" && n !== "BucketAlreadyExists") throw e;
      }
    }
    d.resources[id] = { logicalId: id, type: r.Type, name, arn: `arn:aws:s3:::${name}` };
  }
  // tables
  for (const [id, r] of entries) {
    if (r.Type !== "AWS::DynamoDB::Table" && r.Type !== "AWS::DynamoDB::GlobalTable") continue;
    const p = (resolveIntrinsics(r.Properties ?? {}, refsSoFar, id) ?? {}) as Record<string, unknown>;
    const name = literal(p.TableName) ?? localName(d.namePrefix, d.stackName, id, 255, false);
    if (create) await createTable(dynamodb, name, p, id);
    d.resources[id] = {
      logicalId: id,
      type: r.Type,
      name,
      arn: `arn:aws:dynamodb:${d.region}:${d.accountId}:table/${name}`,
    };
  }
  // queues: create all, then set redrive policies (a DLQ may be declared after its source queue)
  const queues = entries.filter(([, r]) => r.Type === "AWS::SQS::Queue");
  for (const [id, r] of queues) {
    const p = r.Properties ?? {};
    const fifo = p.FifoQueue === true || p.FifoQueue === "true";
    let name = literal(p.QueueName) ?? localName(d.namePrefix, d.stackName, id, fifo ? 75 : 80, false);
    if (fifo && !name.endsWith(".fifo")) name = `${name}.fifo`;
    const attributes: Record<string, string> = {};
    for (const k of [
      "VisibilityTimeout",
      "MessageRetentionPeriod",
      "DelaySeconds",
      "ReceiveMessageWaitTimeSeconds",
      "MaximumMessageSize",
      "ContentBasedDeduplication",
      "DeduplicationScope",
      "FifoThroughputLimit",
    ]) {
      if (p[k] !== undefined) attributes[k] = String(p[k]);
    }
    if (fifo) attributes.FifoQueue = "true";
    let url: string;
    let arn: string;
    if (create) {
      try {
        url = (await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }))).QueueUrl as string;
      } catch (e) {
        const n = (e as { name?: string }).name ?? "";
        if (!/QueueNameExists|QueueAlreadyExists/.test(n)) throw e;
        url = (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl as string;
        const { FifoQueue: _f, ...mutable } = attributes;
        if (Object.keys(mutable).length)
          await sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: mutable }));
      }
      const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] }));
      arn = attrs.Attributes?.QueueArn ?? `arn:aws:sqs:${d.region}:${d.accountId}:${name}`;
    } else {
      url = `${process.env.AWS_ENDPOINT_URL_SQS ?? "http://127.0.0.1"}/${d.accountId}/${name}`;
      arn = `arn:aws:sqs:${d.region}:${d.accountId}:${name}`;
    }
    d.resources[id] = { logicalId: id, type: r.Type, name, arn, url };
  }
  for (const [id, r] of queues) {
    const rp = r.Properties?.RedrivePolicy;
    if (rp === undefined || !create) continue;
    const policy = resolveIntrinsics(typeof rp === "string" ? JSON.parse(rp) : rp, makeRefs(d), `${id}.RedrivePolicy`);
    await sqs.send(
      new SetQueueAttributesCommand({
        QueueUrl: d.resources[id]?.url,
        Attributes: { RedrivePolicy: JSON.stringify(policy) },
      }),
    );
  }
  // names only: functions and state machines (their ARNs are referenced by env vars and definitions)
  for (const [id, r] of entries) {
    if (r.Type === "AWS::Lambda::Function") {
      const name = literal(r.Properties?.FunctionName) ?? localName(d.namePrefix, d.stackName, id, 64, false);
      d.resources[id] = {
        logicalId: id,
        type: r.Type,
        name,
        arn: `arn:aws:lambda:${d.region}:${d.accountId}:function:${name}`,
      };
    }
    if (r.Type === "AWS::StepFunctions::StateMachine") {
      const declared = literal(r.Properties?.StateMachineName);
      const name = declared
        ? `${d.namePrefix}${declared}`.slice(0, 80)
        : localName(d.namePrefix, d.stackName, id, 80, false);
      d.resources[id] = {
        logicalId: id,
        type: r.Type,
        name,
        arn: `arn:aws:states:${d.region}:${d.accountId}:stateMachine:${name}`,
      };
    }
  }
}

async function createTable(
  dynamodb: ReturnType<typeof localClients>["dynamodb"],
  name: string,
  p: Record<string, unknown>,
  id: string,
): Promise<void> {
  const provisioned = p.BillingMode !== "PAY_PER_REQUEST";
  const throughput = { ReadCapacityUnits: 5, WriteCapacityUnits: 5 };
  const input: CreateTableCommandInput = {
    TableName: name,
    KeySchema: p.KeySchema as CreateTableCommandInput["KeySchema"],
    AttributeDefinitions: p.AttributeDefinitions as CreateTableCommandInput["AttributeDefinitions"],
    BillingMode: provisioned ? "PROVISIONED" : "PAY_PER_REQUEST",
  };
  if (!input.KeySchema || !input.AttributeDefinitions) {
    throw new ConfigError(`table ${id}: KeySchema and AttributeDefinitions are required`, { field: id });
  }
  if (provisioned) input.ProvisionedThroughput = (p.ProvisionedThroughput as typeof throughput) ?? throughput;
  const gsis = p.GlobalSecondaryIndexes as GlobalSecondaryIndex[] | undefined;
  if (gsis?.length) {
    input.GlobalSecondaryIndexes = gsis.map((g) => ({
      IndexName: g.IndexName,
      KeySchema: g.KeySchema,
      Projection: g.Projection,
      ...(provisioned ? { ProvisionedThroughput: g.ProvisionedThroughput ?? throughput } : {}),
    }));
  }
  const lsis = p.LocalSecondaryIndexes as CreateTableCommandInput["LocalSecondaryIndexes"];
  if (lsis?.length) input.LocalSecondaryIndexes = lsis;
  try {
    await dynamodb.send(new CreateTableCommand(input));
  } catch (e) {
    if ((e as { name?: string }).name !== "ResourceInUseException") throw e;
  }
  for (let i = 0; i < 200; i++) {
    const t = await dynamodb.send(new DescribeTableCommand({ TableName: name }));
    if (t.Table?.TableStatus === "ACTIVE") return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new ConfigError(`table ${name} did not become ACTIVE on the local stack`, { field: id });
}

function makeRefs(d: LocalDeployment): RefResolver {
  const pseudo: Record<string, string> = {
    "AWS::Partition": "aws",
    "AWS::Region": d.region,
    "AWS::AccountId": d.accountId,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": d.stackName,
    "AWS::StackId": `arn:aws:cloudformation:${d.region}:${d.accountId}:stack/${d.stackName}/local`,
  };
  return {
    ref(id) {
      if (id in pseudo) return pseudo[id];
      const r = d.resources[id];
      const t = d.template.Resources[id]?.Type;
      if (!t) return undefined;
      if (!r) return localName(d.namePrefix, d.stackName, id, 255, false);
      if (t === "AWS::SQS::Queue") return r.url;
      if (t === "AWS::StepFunctions::StateMachine") return r.arn;
      return r.name;
    },
    getAtt(id, attr) {
      const r = d.resources[id];
      const t = d.template.Resources[id]?.Type;
      if (!t) return undefined;
      if (!r) {
        if (attr === "Arn") return `arn:aws:local:${d.region}:${d.accountId}:${t.replace(/::/g, "-")}/${id}`;
        return `${id}.${attr}`;
      }
      switch (attr) {
        case "Arn":
          return r.arn;
        case "QueueUrl":
          return r.url;
        case "QueueName":
        case "Name":
          return r.name;
        case "StreamArn":
          return `${r.arn}/stream/local`;
        case "DomainName":
          return `${r.name}.s3.amazonaws.com`;
        case "RegionalDomainName":
          return `${r.name}.s3.${d.region}.amazonaws.com`;
        default:
          return `${r.name}.${attr}`;
      }
    },
  };
}

function resolveFunctionsAndMachines(d: LocalDeployment): void {
  const refs = makeRefs(d);
  const seen = new Map<string, string>();
  for (const [id, r] of Object.entries(d.template.Resources)) {
    if (r.Type !== "AWS::Lambda::Function") continue;
    const res = d.resources[id] as LocalResource;
    const vars = (r.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ?? {};
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(vars)) {
      const val = resolveIntrinsics(v, refs, `${id}.Environment.Variables.${k}`);
      if (val !== undefined) env[k] = String(val);
      if (val === undefined || RESERVED_ENV.test(k)) continue;
      const prev = seen.get(k);
      if (prev === undefined) {
        seen.set(k, String(val));
        d.env[k] = String(val);
      } else if (prev !== String(val) && !d.envConflicts.includes(k)) d.envConflicts.push(k);
    }
    const entryRel = literal(r.Metadata?.[FERRY_ENTRY_METADATA]);
    const handlerProp = literal(r.Properties?.Handler) ?? "index.handler";
    d.functions[id] = {
      logicalId: id,
      name: res.name,
      arn: res.arn,
      entry: entryRel ? path.resolve(REPO_ROOT, entryRel) : undefined,
      handlerName: literal(r.Metadata?.[FERRY_HANDLER_METADATA]) ?? handlerProp.slice(handlerProp.lastIndexOf(".") + 1),
      env,
      timeoutSeconds: Number(r.Properties?.Timeout ?? 3),
    };
  }
  for (const k of d.envConflicts) delete d.env[k];
  for (const [id, r] of Object.entries(d.template.Resources)) {
    if (r.Type !== "AWS::StepFunctions::StateMachine") continue;
    const res = d.resources[id] as LocalResource;
    const asl = extractDefinition(id, r.Properties ?? {}, refs);
    validateDefinition(id, asl);
    d.stateMachines[id] = {
      logicalId: id,
      name: res.name,
      declaredName: literal(r.Properties?.StateMachineName) ?? id,
      arn: res.arn,
      asl,
    };
  }
  for (const [id, r] of Object.entries(d.template.Resources)) {
    if (r.Type !== "AWS::Lambda::EventSourceMapping") continue;
    const p = (resolveIntrinsics(r.Properties ?? {}, refs, id) ?? {}) as Record<string, unknown>;
    const fn = d.findFunction(String(p.FunctionName));
    const rawSource = r.Properties?.EventSourceArn as { "Fn::GetAtt"?: [string, string] } | undefined;
    const queueLogicalId = rawSource?.["Fn::GetAtt"]?.[0];
    const queue = queueLogicalId ? d.resources[queueLogicalId] : undefined;
    if (!fn)
      throw new ConfigError(`event source mapping ${id}: function ${String(p.FunctionName)} not in the stack`, {
        field: id,
      });
    if (!String(p.EventSourceArn).startsWith("arn:aws:sqs:") && queue?.type !== "AWS::SQS::Queue") continue; // SQS only
    d.eventSourceMappings.push({
      logicalId: id,
      functionLogicalId: fn.logicalId,
      queueLogicalId,
      queueArn: String(p.EventSourceArn),
      queueUrl: queue?.url,
      batchSize: Number(p.BatchSize ?? 10),
      maximumBatchingWindowSeconds: Number(p.MaximumBatchingWindowInSeconds ?? 0),
      maximumConcurrency: (p.ScalingConfig as { MaximumConcurrency?: number } | undefined)?.MaximumConcurrency,
      reportBatchItemFailures: ((p.FunctionResponseTypes as string[] | undefined) ?? []).includes(
        "ReportBatchItemFailures",
      ),
      enabled: p.Enabled !== false && p.Enabled !== "false",
      properties: p,
    });
  }
}
