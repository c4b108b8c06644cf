/**
 * BulkLoadPipeline: the data bucket, the control table, the bulk-load Lambdas and the state machine
 *
 *   Plan ─► AlreadyDone? ─► Partition (Distributed Map over chunks.jsonl) ─► PlanBuild
 *        ─► Build (Distributed Map over buckets.jsonl) ─► Publish ─► HasFleet?
 *             ├─ yes ─► Signal ─► WaitForHosts ─► Covered? ─► Cutover ─► Cleanup ─► Succeed
 *             │                       ▲── WaitPoll ◄┘ (not yet)
 *             └─ no ──► Activate ─► Succeed
 *   any failure ─► MarkFailed ─► Fail
 *
 * No business logic here: the handlers (functions/bulk-load/*) do the work; this file wires resources, grants
 * (prefix-scoped) and the state machine. Execution names (<dataset>-<version>) are chosen by whoever starts it.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import {
  Annotations,
  type CfnElement,
  CfnOutput,
  Duration,
  RemovalPolicy,
  Size,
  Stack,
  Validations,
} from "aws-cdk-lib";
import { AttributeType, BillingMode, Table, TableEncryption } from "aws-cdk-lib/aws-dynamodb";
import type { IGrantable } from "aws-cdk-lib/aws-iam";
import { Key } from "aws-cdk-lib/aws-kms";
import { Architecture, Code, LayerVersion, Runtime } from "aws-cdk-lib/aws-lambda";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import { BlockPublicAccess, Bucket, BucketEncryption, type IBucket, ObjectOwnership } from "aws-cdk-lib/aws-s3";
import {
  Choice,
  Condition,
  DefinitionBody,
  DistributedMap,
  Fail,
  JitterType,
  JsonPath,
  LogLevel,
  OutputType,
  ResultWriterV2,
  S3JsonLItemReader,
  StateMachine,
  StateMachineType,
  Succeed,
  type TaskStateBase,
  TaskInput,
  Transformation,
  Wait,
  WaitTime,
  WriterConfig,
} from "aws-cdk-lib/aws-stepfunctions";
import { LambdaInvoke } from "aws-cdk-lib/aws-stepfunctions-tasks";
import { Construct } from "constructs";
import { FerryFunction, REPO_ROOT } from "./ferry-function.js";

/** Memory and timeouts of every bulk-load function: one place. */
export const BULK_LOAD_FUNCTIONS = {
  // Plan parses the key samples of up to PIPELINE.sampleMaxChunks chunks (~0.1 CPU-s each at the cap): one full
  // vCPU (1,769 MB) and the 15-minute limit
  plan: { file: "bulk-load/plan.ts", memoryMb: 1769, timeout: Duration.minutes(15) },
  // Partition and Build: 3,008 MB gives two vCPUs, so the SST writer seals blocks on its worker thread. Both use
  // local disk: Partition spills sorted sub-runs past PIPELINE.partitionMemoryBytes (up to about its chunk's size),
  // Build merges more runs than PIPELINE.mergeFanIn in rounds through local files (about one bucket at a time, each
  // round's files deleted as the next reads them). Lambda's default /tmp is 512 MB: less than a 256 MiB bucket's two
  // rounds or the multi-GB chunks and buckets a 50 TB load uses (docs/pipeline.md), so both get the 10 GB maximum
  // (billed only past 512 MB, ~$0.56 for 1,000 tasks × 30 minutes).
  partition: { file: "bulk-load/partition.ts", memoryMb: 3008, timeout: Duration.minutes(15), tmpMb: 10240 },
  planBuild: { file: "bulk-load/plan-build.ts", memoryMb: 1024, timeout: Duration.minutes(5) },
  build: { file: "bulk-load/build.ts", memoryMb: 3008, timeout: Duration.minutes(15), tmpMb: 10240 },
  // Publish checks Build's verified results and HEADs each file (no re-read since Build verifies its own files)
  publish: { file: "bulk-load/publish.ts", memoryMb: 1024, timeout: Duration.minutes(15) },
  activate: { file: "bulk-load/activate.ts", memoryMb: 512, timeout: Duration.minutes(1) },
  markFailed: { file: "bulk-load/mark-failed.ts", memoryMb: 512, timeout: Duration.minutes(1) },
  signal: { file: "bulk-load/signal.ts", memoryMb: 512, timeout: Duration.minutes(1) },
  waitForHosts: { file: "bulk-load/wait-for-hosts.ts", memoryMb: 512, timeout: Duration.minutes(1) },
  cutover: { file: "bulk-load/cutover.ts", memoryMb: 512, timeout: Duration.minutes(1) },
  cleanup: { file: "bulk-load/cleanup.ts", memoryMb: 512, timeout: Duration.minutes(1) },
} as const;

export type BulkLoadFunctionName = keyof typeof BULK_LOAD_FUNCTIONS;

/**
 * Native codec packages core/sst loads at run time: kept out of the esbuild bundle and shipped in the
 * linux-arm64 layer that `npx tsx layers/codecs/build.ts` assembles (layers/codecs/build.ts CODEC_PACKAGES +
 * zstd-napi, which Lambda never loads: nodejs22.x has zstd in node:zlib).
 */
export const CODEC_EXTERNALS = ["snappy", "lz4-napi", "@node-rs/crc32", "@node-rs/xxhash", "zstd-napi"] as const;
export const CODEC_LAYER_DIR = path.join(REPO_ROOT, "layers", "codecs", "build");

/** Error names worth retrying (core/errors.ts TransientError and the Lambda service's own). */
export const TRANSIENT_ERRORS = [
  "TransientError",
  "Lambda.ServiceException",
  "Lambda.AWSLambdaException",
  "Lambda.SdkClientException",
  "Lambda.TooManyRequestsException",
];

export interface BulkLoadPipelineProps {
  /** SSE-S3 (default) or a customer-managed KMS key for the data bucket and the control table */
  readonly encryption?: "s3" | "kms";
  /** object versioning on the data bucket (default false: published versions are immutable by construction) */
  readonly versioned?: boolean;
  /** staging/ objects (runs, item lists, results) expire after this many days (default 7) */
  readonly stagingExpirationDays?: number;
  /** Distributed Map MaxConcurrency of Partition and Build (default 1000) */
  readonly mapMaxConcurrency?: number;
  /** seconds between WaitForHosts polls (default 5) */
  readonly waitPollSeconds?: number;
  /** buckets other than the data bucket that hold input (read by Plan and Partition) */
  readonly inputBuckets?: IBucket[];
  /** include the fleet branch (Signal → WaitForHosts → Cutover → Cleanup); default true */
  readonly fleet?: boolean;
  /** default RETAIN for the bucket and table; DESTROY for throwaway stacks */
  readonly removalPolicy?: RemovalPolicy;
}

export class BulkLoadPipeline extends Construct {
  readonly dataBucket: Bucket;
  readonly accessLogsBucket: Bucket;
  readonly controlTable: Table;
  readonly stateMachine: StateMachine;
  readonly functions: Record<BulkLoadFunctionName, FerryFunction>;

  constructor(scope: Construct, id: string, props: BulkLoadPipelineProps = {}) {
    super(scope, id);
    // ResultWriterV2 (WriterConfig: JSONL, COMPACT) needs this feature flag; set here, before any child exists
    this.node.setContext("@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2", true);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const kmsKey =
      props.encryption === "kms" ? new Key(this, "DataKey", { enableKeyRotation: true, removalPolicy }) : undefined;

    this.accessLogsBucket = new Bucket(this, "AccessLogs", {
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_PREFERRED,
      lifecycleRules: [{ expiration: Duration.days(90) }],
      removalPolicy,
      autoDeleteObjects: removalPolicy === RemovalPolicy.DESTROY,
    });
    this.dataBucket = new Bucket(this, "Data", {
      encryption: kmsKey ? BucketEncryption.KMS : BucketEncryption.S3_MANAGED,
      encryptionKey: kmsKey,
      bucketKeyEnabled: kmsKey ? true : undefined,
      enforceSSL: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      versioned: props.versioned ?? false,
      eventBridgeEnabled: true,
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: "data/",
      lifecycleRules: [
        { id: "expire-staging", prefix: "staging/", expiration: Duration.days(props.stagingExpirationDays ?? 7) },
        { id: "abort-multipart", abortIncompleteMultipartUploadAfter: Duration.days(2) },
      ],
      removalPolicy,
      autoDeleteObjects: removalPolicy === RemovalPolicy.DESTROY,
    });
    this.controlTable = new Table(this, "Control", {
      partitionKey: { name: "pk", type: AttributeType.STRING },
      sortKey: { name: "sk", type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: kmsKey ? TableEncryption.CUSTOMER_MANAGED : TableEncryption.AWS_MANAGED,
      encryptionKey: kmsKey,
      removalPolicy,
    });

    const environment = {
      FERRY_DATA_BUCKET: this.dataBucket.bucketName,
      FERRY_CONTROL_TABLE: this.controlTable.tableName,
      // The SDK's default (WHEN_SUPPORTED) computes a CRC32 in JavaScript over every uploaded part (~0.6 ns per byte
      // measured here: a few % of a load's CPU) and validates one over whole-object GETs. Ferry checks its data end to
      // end itself — CRC-32C per run segment on every read, Build's xxh3x2 re-read of every SST it wrote, the hosts'
      // sha256 — and TLS guards the transfer, so the functions run as the local stack and the benchmarks do.
      AWS_REQUEST_CHECKSUM_CALCULATION: "WHEN_REQUIRED",
      AWS_RESPONSE_CHECKSUM_VALIDATION: "WHEN_REQUIRED",
    };
    const codecLayer = existsSync(path.join(CODEC_LAYER_DIR, "nodejs"))
      ? new LayerVersion(this, "CodecLayer", {
          code: Code.fromAsset(CODEC_LAYER_DIR),
          compatibleRuntimes: [Runtime.NODEJS_22_X],
          compatibleArchitectures: [Architecture.ARM_64],
          description: "ferry: native codecs for core/sst (snappy, lz4, crc32c, xxhash), linux-arm64",
        })
      : undefined;
    if (!codecLayer) {
      Annotations.of(this).addWarningV2(
        "ferry:codec-layer-missing",
        "layers/codecs/build is missing: run `npx tsx layers/codecs/build.ts` before `cdk deploy` (the bulk-load functions load their native codecs from that layer)",
      );
    }
    const fns = {} as Record<BulkLoadFunctionName, FerryFunction>;
    for (const [name, spec] of Object.entries(BULK_LOAD_FUNCTIONS) as Array<
      [BulkLoadFunctionName, (typeof BULK_LOAD_FUNCTIONS)[BulkLoadFunctionName]]
    >) {
      if (props.fleet === false && ["signal", "waitForHosts", "cutover", "cleanup"].includes(name)) continue;
      fns[name] = new FerryFunction(this, `${name[0].toUpperCase()}${name.slice(1)}Fn`, {
        handlerFile: spec.file,
        memorySize: spec.memoryMb,
        timeout: spec.timeout,
        ...("tmpMb" in spec ? { ephemeralStorageSize: Size.mebibytes(spec.tmpMb) } : {}),
        environment,
        description: `ferry bulk load: ${name}`,
        layers: codecLayer ? [codecLayer] : undefined,
        bundling: { externalModules: ["@aws-sdk/*", ...CODEC_EXTERNALS] },
      });
    }
    this.functions = fns;
    this.grant(fns, props.inputBuckets ?? []);

    // ---------------------------------------------------------------------------------------------------------
    // the state machine

    /** input: a TaskInput object, or a JsonPath string (that part of the state is the payload) */
    const task = (
      fnName: BulkLoadFunctionName,
      stateId: string,
      input: TaskInput | string,
      resultPath: string | undefined,
    ) => {
      const t = new LambdaInvoke(this, stateId, {
        lambdaFunction: fns[fnName],
        ...(typeof input === "string" ? (input === "$" ? {} : { inputPath: input }) : { payload: input }),
        payloadResponseOnly: true,
        retryOnServiceExceptions: false,
        // "$" (replace the state) is the default: leave ResultPath out (aws-local-stepfunctions mishandles "$")
        resultPath: resultPath === "$" ? undefined : resultPath,
      });
      t.addRetry({
        errors: TRANSIENT_ERRORS,
        interval: Duration.seconds(1),
        backoffRate: 2,
        maxAttempts: 6,
        maxDelay: Duration.seconds(30),
        jitterStrategy: JitterType.FULL,
      });
      t.addRetry({ errors: ["States.Timeout"], interval: Duration.seconds(5), maxAttempts: 1 });
      return t;
    };

    const failed = new Fail(this, "Failed", { errorPath: "$.failure.error", causePath: "$.failure.cause" });
    // MarkFailed gets the failing state (with $.error from Catch) and the execution input: one of them names
    // the dataset and version whatever state failed
    const markFailed = task(
      "markFailed",
      "MarkFailed",
      TaskInput.fromObject({
        "state.$": "$",
        "executionInput.$": "$$.Execution.Input",
        execution: JsonPath.executionName,
      }),
      "$.failure",
    );
    markFailed.next(failed);
    const catchAll = <T extends TaskStateBase | DistributedMap>(s: T): T => {
      s.addCatch(markFailed, { errors: ["States.ALL"], resultPath: "$.error" });
      return s;
    };

    const plan = catchAll(
      task("plan", "Plan", TaskInput.fromObject({ "input.$": "$", execution: JsonPath.executionName }), "$"),
    );
    const done = new Succeed(this, "AlreadyPublished", { comment: "the version was already published: nothing to do" });
    const succeeded = new Succeed(this, "Succeeded");
    const maxConcurrency = props.mapMaxConcurrency ?? 1000;
    const resultWriter = (phase: string) =>
      new ResultWriterV2({
        bucket: this.dataBucket,
        prefix: `staging/_map-results/${phase}`,
        writerConfig: new WriterConfig({ outputType: OutputType.JSONL, transformation: Transformation.COMPACT }),
      });

    const partition = catchAll(
      new DistributedMap(this, "Partition", {
        itemReader: new S3JsonLItemReader({ bucket: this.dataBucket, key: JsonPath.stringAt("$.chunksKey") }),
        itemSelector: {
          chunk: JsonPath.objectAt("$$.Map.Item.Value"),
          dataBucket: JsonPath.stringAt("$.dataBucket"),
          planKey: JsonPath.stringAt("$.planKey"),
        },
        resultWriterV2: resultWriter("partition"),
        maxConcurrency,
        mapExecutionType: StateMachineType.STANDARD,
        resultPath: JsonPath.DISCARD,
        label: "Partition",
      }),
    );
    partition.itemProcessor(task("partition", "PartitionChunk", "$", "$"));

    const planBuild = catchAll(task("planBuild", "PlanBuild", "$", "$"));
    const build = catchAll(
      new DistributedMap(this, "Build", {
        itemReader: new S3JsonLItemReader({ bucket: this.dataBucket, key: JsonPath.stringAt("$.bucketsKey") }),
        itemSelector: {
          bucket: JsonPath.objectAt("$$.Map.Item.Value"),
          dataBucket: JsonPath.stringAt("$.dataBucket"),
          planKey: JsonPath.stringAt("$.planKey"),
          runsKey: JsonPath.stringAt("$.runsKey"),
        },
        resultWriterV2: resultWriter("build"),
        maxConcurrency,
        mapExecutionType: StateMachineType.STANDARD,
        resultPath: JsonPath.DISCARD,
        label: "Build",
      }),
    );
    build.itemProcessor(task("build", "BuildBucket", "$", "$"));

    const publish = catchAll(task("publish", "Publish", "$", "$"));
    const activate = catchAll(
      task(
        "activate",
        "Activate",
        TaskInput.fromObject({
          "dataset.$": "$.dataset",
          "version.$": "$.version",
          "keepVersions.$": "$.keepVersions",
          execution: JsonPath.executionName,
        }),
        "$.activation",
      ),
    );
    activate.next(succeeded);

    const hasFleet = new Choice(this, "HasFleet").otherwise(activate);
    if (props.fleet !== false) {
      const signal = catchAll(
        task(
          "signal",
          "Signal",
          TaskInput.fromObject({
            "dataset.$": "$.dataset",
            "version.$": "$.version",
            "fleet.$": "$.fleet",
            "bucket.$": "$.dataBucket",
            "manifestKey.$": "$.manifestKey",
            "shards.$": "$.shards",
            "minReplicas.$": "$.minReplicas",
            issuedAt: JsonPath.executionStartTime,
            execution: JsonPath.executionName,
          }),
          "$.signal",
        ),
      );
      const waitForHosts = catchAll(task("waitForHosts", "WaitForHosts", "$.signal", "$.signal"));
      const poll = new Wait(this, "WaitPoll", {
        time: WaitTime.duration(Duration.seconds(props.waitPollSeconds ?? 5)),
      });
      const cutover = catchAll(task("cutover", "Cutover", "$.signal", "$.cutover"));
      const cleanup = catchAll(
        task(
          "cleanup",
          "Cleanup",
          TaskInput.fromObject({ "dataset.$": "$.dataset", "keepVersions.$": "$.keepVersions" }),
          "$.cleanup",
        ),
      );
      signal.next(waitForHosts);
      waitForHosts.next(
        new Choice(this, "Covered").when(Condition.booleanEquals("$.signal.covered", true), cutover).otherwise(poll),
      );
      poll.next(waitForHosts);
      cutover.next(cleanup);
      cleanup.next(succeeded);
      hasFleet.when(Condition.booleanEquals("$.hasFleet", true), signal);
    }

    const definition = plan.next(
      new Choice(this, "AlreadyDone")
        .when(Condition.booleanEquals("$.alreadyDone", true), done)
        .otherwise(partition.next(planBuild).next(build).next(publish).next(hasFleet)),
    );

    const logGroup = new LogGroup(this, "StateMachineLogs", { retention: RetentionDays.ONE_MONTH, removalPolicy });
    this.stateMachine = new StateMachine(this, "StateMachine", {
      definitionBody: DefinitionBody.fromChainable(definition),
      stateMachineType: StateMachineType.STANDARD,
      tracingEnabled: true,
      logs: { destination: logGroup, level: LogLevel.ALL, includeExecutionData: true },
      comment: "ferry bulk load: plan, partition, build SSTs, publish, signal hosts, cut over",
    });

    new CfnOutput(this, "DataBucketName", { value: this.dataBucket.bucketName, key: "FerryDataBucket" });
    new CfnOutput(this, "ControlTableName", { value: this.controlTable.tableName, key: "FerryControlTable" });
    new CfnOutput(this, "StateMachineArn", {
      value: this.stateMachine.stateMachineArn,
      key: "FerryBulkLoadStateMachine",
    });

    this.acknowledge();
  }

  /** Least privilege: each function gets the prefixes it touches. */
  private grant(fns: Record<BulkLoadFunctionName, FerryFunction>, inputBuckets: IBucket[]): void {
    const b = this.dataBucket;
    const t = this.controlTable;
    const readInput = (g: IGrantable) => {
      b.grantRead(g, "input/*");
      for (const ib of inputBuckets) ib.grantRead(g);
    };
    // Plan: list/read input, read+write staging/, read+write the control table
    readInput(fns.plan);
    b.grantReadWrite(fns.plan, "staging/*");
    t.grantReadWriteData(fns.plan);
    // Partition: read input and the plan, write run objects and results
    readInput(fns.partition);
    b.grantReadWrite(fns.partition, "staging/*");
    // PlanBuild: read results, write runs.json; version status
    b.grantReadWrite(fns.planBuild, "staging/*");
    t.grantReadWriteData(fns.planBuild);
    // Build: read runs, write SSTs (and check earlier ones)
    b.grantReadWrite(fns.build, "staging/*");
    b.grantReadWrite(fns.build, "versions/*");
    // Publish: read results and SSTs, write the manifest; version status
    b.grantRead(fns.publish, "staging/*");
    b.grantReadWrite(fns.publish, "versions/*");
    t.grantReadWriteData(fns.publish);
    t.grantReadWriteData(fns.activate);
    t.grantReadWriteData(fns.markFailed);
    if (fns.signal) {
      b.grantRead(fns.signal, "versions/*");
      t.grantReadWriteData(fns.signal);
      t.grantReadData(fns.waitForHosts);
      t.grantReadWriteData(fns.cutover);
      t.grantReadWriteData(fns.cleanup);
    }
  }

  /** cdk-nag findings that are deliberate, acknowledged on the narrowest construct with the reason. */
  private acknowledge(): void {
    const stack = Stack.of(this);
    const lid = (c: Construct) => stack.resolve(stack.getLogicalId(c.node.defaultChild as CfnElement)) as string;
    const bucket = lid(this.dataBucket);
    const ack = (scope: Construct, id: string, reason: string) => Validations.of(scope).acknowledge({ id, reason });
    for (const fn of Object.values(this.functions)) {
      ack(
        fn,
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        "AWSLambdaBasicExecutionRole only allows writing the function's own CloudWatch logs.",
      );
      ack(
        fn,
        "AwsSolutions-IAM5[Resource::*]",
        "The only wildcard resource is xray:PutTraceSegments/PutTelemetryRecords (active tracing), which have no resource-level scoping.",
      );
      ack(
        fn,
        "AwsSolutions-L1",
        "nodejs22.x is the runtime ferry is built and tested for (FerryFunction default); upgrades are deliberate.",
      );
      for (const action of ["s3:Abort*", "s3:DeleteObject*", "s3:GetBucket*", "s3:GetObject*", "s3:List*"]) {
        ack(
          fn,
          `AwsSolutions-IAM5[Action::${action}]`,
          "Action wildcards come from Bucket.grantRead/grantReadWrite and are limited to the one key prefix the function uses.",
        );
      }
      for (const prefix of ["input", "staging", "versions"]) {
        ack(
          fn,
          `AwsSolutions-IAM5[Resource::<${bucket}.Arn>/${prefix}/*]`,
          `Object keys under ${prefix}/ are per dataset and version (known at run time): the grant is scoped to that prefix of the data bucket.`,
        );
      }
    }
    const sm = this.stateMachine;
    for (const fn of Object.values(this.functions)) {
      ack(
        sm,
        `AwsSolutions-IAM5[Resource::<${lid(fn)}.Arn>:*]`,
        "Step Functions LambdaInvoke may call any version/alias of this one function (CDK's grant).",
      );
    }
    ack(
      sm,
      `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::<${bucket}>/*]`,
      "The Distributed Maps' ItemReader/ResultWriter keys are JsonPath (per dataset and version); CDK grants them on the data bucket's objects. The item lists and results live under staging/.",
    );
    ack(
      sm,
      "AwsSolutions-IAM5[Resource::*]",
      "xray:PutTraceSegments/PutTelemetryRecords/GetSamplingRules (tracing) and CloudWatch Logs delivery actions have no resource-level scoping.",
    );
    // eventBridgeEnabled adds CDK's stack-level BucketNotificationsHandler custom resource
    for (const child of stack.node.children) {
      if (child.node.id.startsWith("BucketNotificationsHandler")) {
        ack(
          child,
          "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
          "CDK's BucketNotificationsHandler custom resource (turns on EventBridge notifications for the data bucket) only writes its own logs.",
        );
      }
    }
    const smRef = `{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"${lid(sm)}"}]}]}`;
    for (const suffix of [":*", "/Partition:*", "/Build:*"]) {
      ack(
        sm,
        `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:${smRef}${suffix}]`,
        "Distributed Map child executions of this state machine only (CDK's DistributedMapPolicy).",
      );
    }
  }
}
