// biome-ignore-all lint/suspicious/noExplicitAny: the synthesized template is untyped JSON, walked by path
/**
 * Template tests for BulkLoadPipeline and BulkLoadTriggers (aws-cdk-lib/assertions): the state machine's shape
 * (states, Distributed Maps with JSONL ItemReader + ResultWriter, retries on transient errors only, Catch →
 * MarkFailed everywhere), prefix-scoped IAM per function, bucket/table hardening, the trigger rules and their
 * input, and cdk-nag (AwsSolutions) clean.
 */
import { App, Stack, Validations } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { AwsSolutionsChecks } from "cdk-nag";
import { beforeAll, describe, expect, it } from "vitest";
import { requestFromTrigger } from "../../core/pipeline/config.js";
import { CODEC_PACKAGES, EXTERNAL_ONLY } from "../../layers/codecs/build.js";
import { existsSync } from "node:fs";
import path from "node:path";
import {
  BulkLoadPipeline,
  CODEC_EXTERNALS,
  CODEC_LAYER_DIR,
  TRANSIENT_ERRORS,
} from "../../infra/constructs/bulk-load-pipeline.js";
import { BulkLoadTriggers } from "../../infra/constructs/triggers.js";

let template: Template;
let asl: { StartAt: string; States: Record<string, Record<string, unknown>> };
let stack: Stack;
let pipeline: BulkLoadPipeline;

function joinDefinition(def: unknown): string {
  const parts = (def as { "Fn::Join": [string, unknown[]] })["Fn::Join"][1];
  return parts.map((p) => (typeof p === "string" ? p : "X")).join("");
}

beforeAll(() => {
  const app = new App({ context: { "aws:cdk:bundling-stacks": [] } });
  stack = new Stack(app, "T");
  pipeline = new BulkLoadPipeline(stack, "BulkLoad");
  new BulkLoadTriggers(stack, "Triggers", {
    stateMachine: pipeline.stateMachine,
    dataBucket: pipeline.dataBucket,
    datasets: [
      {
        dataset: "profiles",
        input: "s3://data/input/profiles/",
        format: "jsonl",
        key: ["id"],
        schedule: "rate(1 day)",
      },
      { dataset: "scores", input: "s3://data/input/scores/", format: "csv", key: ["id"], onMarker: true },
      {
        dataset: "external",
        input: "s3://someone-elses-bucket/x/",
        format: "csv",
        key: ["id"],
        schedule: "cron(0 2 * * ? *)",
      },
    ],
  });
  template = Template.fromStack(stack);
  const sms = template.findResources("AWS::StepFunctions::StateMachine");
  const [sm] = Object.values(sms);
  asl = JSON.parse(joinDefinition((sm as { Properties: { DefinitionString: unknown } }).Properties.DefinitionString));
}, 120_000);

describe("state machine shape", () => {
  it("has the designed states and transitions", () => {
    const s = asl.States;
    expect(asl.StartAt).toBe("Plan");
    expect(s.Plan.Next).toBe("AlreadyDone");
    expect(s.AlreadyDone.Type).toBe("Choice");
    expect((s.AlreadyDone.Choices as Array<Record<string, unknown>>)[0]).toMatchObject({
      Variable: "$.alreadyDone",
      BooleanEquals: true,
      Next: "AlreadyPublished",
    });
    expect(s.AlreadyDone.Default).toBe("Partition");
    expect(s.Partition.Next).toBe("PlanBuild");
    expect(s.PlanBuild.Next).toBe("Build");
    expect(s.Build.Next).toBe("Publish");
    expect(s.Publish.Next).toBe("HasFleet");
    expect(s.HasFleet.Default).toBe("Activate");
    expect((s.HasFleet.Choices as Array<Record<string, unknown>>)[0].Next).toBe("Signal");
    expect(s.Signal.Next).toBe("WaitForHosts");
    expect(s.WaitForHosts.Next).toBe("Covered");
    expect(s.Covered.Default).toBe("WaitPoll");
    expect(s.WaitPoll.Next).toBe("WaitForHosts");
    expect((s.Covered.Choices as Array<Record<string, unknown>>)[0].Next).toBe("Cutover");
    expect(s.Cutover.Next).toBe("Cleanup");
    expect(s.Cleanup.Next).toBe("Succeeded");
    expect(s.Activate.Next).toBe("Succeeded");
    expect(s.MarkFailed.Next).toBe("Failed");
    expect(s.Failed).toMatchObject({ Type: "Fail", ErrorPath: "$.failure.error", CausePath: "$.failure.cause" });
  });

  it("runs Partition and Build as Distributed Maps over JSONL item lists, results to S3", () => {
    for (const [name, keyPath] of [
      ["Partition", "$.chunksKey"],
      ["Build", "$.bucketsKey"],
    ] as const) {
      const m = asl.States[name] as Record<string, any>;
      expect(m.Type).toBe("Map");
      expect(m.ItemProcessor.ProcessorConfig.Mode).toBe("DISTRIBUTED");
      expect(m.ItemReader.ReaderConfig.InputType).toBe("JSONL");
      expect(m.ItemReader.Resource).toMatch(/states:::s3:getObject$/);
      expect(m.ItemReader.Parameters["Key.$"]).toBe(keyPath);
      expect(m.ResultWriter.WriterConfig).toEqual({ OutputType: "JSONL", Transformation: "COMPACT" });
      expect(m.ResultWriter.Parameters.Prefix).toMatch(/^staging\//);
      expect(m.MaxConcurrency).toBeGreaterThan(0);
      expect(m.ResultPath).toBeNull();
      expect(m.ItemSelector["dataBucket.$"]).toBe("$.dataBucket");
    }
  });

  it("retries transient errors only, and catches everything into MarkFailed", () => {
    const tasks: Array<[string, Record<string, any>]> = [];
    for (const [n, st] of Object.entries(asl.States)) {
      if (st.Type === "Task") tasks.push([n, st]);
      if (st.Type === "Map") {
        for (const [n2, s2] of Object.entries((st as any).ItemProcessor.States as Record<string, any>))
          tasks.push([n2, s2]);
      }
    }
    expect(tasks.length).toBe(11);
    for (const [n, t] of tasks) {
      const errs = (t.Retry as Array<{ ErrorEquals: string[] }>).flatMap((r) => r.ErrorEquals);
      expect(errs, n).not.toContain("States.ALL");
      expect(errs, n).toEqual(expect.arrayContaining(TRANSIENT_ERRORS));
      const backoff = (t.Retry as Array<{ ErrorEquals: string[]; BackoffRate?: number }>).find((r) =>
        r.ErrorEquals.includes("TransientError"),
      );
      expect(backoff?.BackoffRate, n).toBeGreaterThan(1);
    }
    for (const [n, st] of Object.entries(asl.States)) {
      if ((st.Type === "Task" || st.Type === "Map") && n !== "MarkFailed") {
        expect(st.Catch, n).toEqual([{ ErrorEquals: ["States.ALL"], ResultPath: "$.error", Next: "MarkFailed" }]);
      }
    }
    expect(asl.States.MarkFailed.Catch).toBeUndefined();
  });
});

describe("resources", () => {
  it("data bucket: encrypted, SSL only, no public access, staging/ expires, access logs, EventBridge on", () => {
    template.hasResourceProperties("AWS::S3::Bucket", {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } }],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([Match.objectLike({ Prefix: "staging/", ExpirationInDays: 7, Status: "Enabled" })]),
      },
      LoggingConfiguration: Match.objectLike({ LogFilePrefix: "data/" }),
    });
    template.hasResourceProperties("Custom::S3BucketNotifications", {
      NotificationConfiguration: { EventBridgeConfiguration: {} },
    });
    template.hasResourceProperties("AWS::S3::BucketPolicy", {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
        ]),
      },
    });
  });

  it("control table: pk/sk strings, on demand, PITR, encrypted", () => {
    template.hasResourceProperties("AWS::DynamoDB::Table", {
      KeySchema: [
        { AttributeName: "pk", KeyType: "HASH" },
        { AttributeName: "sk", KeyType: "RANGE" },
      ],
      AttributeDefinitions: [
        { AttributeName: "pk", AttributeType: "S" },
        { AttributeName: "sk", AttributeType: "S" },
      ],
      BillingMode: "PAY_PER_REQUEST",
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
    });
  });

  it("functions: nodejs22.x on arm64 with the bucket and table in their environment", () => {
    const fns = template.findResources("AWS::Lambda::Function", {
      Properties: { Description: Match.stringLikeRegexp("^ferry bulk load") },
    });
    expect(Object.keys(fns).length).toBe(11);
    for (const f of Object.values(fns) as Array<{ Properties: Record<string, any> }>) {
      expect(f.Properties.Runtime).toBe("nodejs22.x");
      expect(f.Properties.Architectures).toEqual(["arm64"]);
      expect(Object.keys(f.Properties.Environment.Variables)).toEqual(
        expect.arrayContaining(["FERRY_DATA_BUCKET", "FERRY_CONTROL_TABLE"]),
      );
      // ferry checks its own bytes end to end: no JS CRC32 over every S3 body (as on the local stack)
      expect(f.Properties.Environment.Variables.AWS_REQUEST_CHECKSUM_CALCULATION).toBe("WHEN_REQUIRED");
      expect(f.Properties.Environment.Variables.AWS_RESPONSE_CHECKSUM_VALIDATION).toBe("WHEN_REQUIRED");
    }
  });

  it("Partition and Build get 10 GB of local disk for spills and merge rounds; the others the default", () => {
    const fns = template.findResources("AWS::Lambda::Function", {
      Properties: { Description: Match.stringLikeRegexp("^ferry bulk load") },
    }) as Record<string, { Properties: Record<string, any> }>;
    const tmp = Object.fromEntries(
      Object.values(fns).map((f) => [
        String(f.Properties.Description).replace("ferry bulk load: ", ""),
        f.Properties.EphemeralStorage?.Size,
      ]),
    );
    expect(tmp.partition).toBe(10240);
    expect(tmp.build).toBe(10240);
    expect(tmp.plan).toBeUndefined();
    expect(tmp.publish).toBeUndefined();
  });
});

describe("native codecs", () => {
  it("are external to the bundles and come from the codec layer", () => {
    expect([...CODEC_EXTERNALS].sort()).toEqual([...CODEC_PACKAGES, ...EXTERNAL_ONLY].sort());
    const layers = template.findResources("AWS::Lambda::LayerVersion");
    if (existsSync(path.join(CODEC_LAYER_DIR, "nodejs"))) {
      expect(Object.keys(layers).length).toBe(1);
      const fns = template.findResources("AWS::Lambda::Function", {
        Properties: { Description: Match.stringLikeRegexp("^ferry bulk load") },
      });
      for (const f of Object.values(fns) as Array<{ Properties: { Layers?: unknown[] } }>) {
        expect(f.Properties.Layers?.length).toBe(1);
      }
    } else {
      expect(Object.keys(layers).length).toBe(0);
    }
  });
});

describe("IAM is prefix-scoped per function", () => {
  /** every S3 object resource (as a string like "<bucket>/staging/*") in the function's role policies */
  function s3Resources(fnId: string): string[] {
    const fn = pipeline.functions[fnId as keyof typeof pipeline.functions];
    const roleId = stack.resolve(stack.getLogicalId(fn.role?.node.defaultChild as never)) as string;
    const policies = template.findResources("AWS::IAM::Policy");
    const out: string[] = [];
    for (const pol of Object.values(policies) as Array<{ Properties: any }>) {
      if (!pol.Properties.Roles.some((r: { Ref: string }) => r.Ref === roleId)) continue;
      for (const st of pol.Properties.PolicyDocument.Statement) {
        const acts = ([] as string[]).concat(st.Action);
        if (!acts.some((a) => a.startsWith("s3:"))) continue;
        for (const r of [].concat(st.Resource)) {
          const j = (r as any)["Fn::Join"];
          if (j) out.push(j[1].map((x: unknown) => (typeof x === "string" ? x : "<b>")).join(""));
        }
      }
    }
    return out.filter((r) => r.includes("/"));
  }

  it("each function touches only its prefixes", () => {
    const expectOnly = (fn: string, allowed: string[]) => {
      const res = s3Resources(fn);
      expect(res.length, fn).toBeGreaterThan(0);
      for (const r of res)
        expect(
          allowed.some((a) => r.endsWith(`/${a}/*`)),
          `${fn}: ${r}`,
        ).toBe(true);
      for (const a of allowed)
        expect(
          res.some((r) => r.endsWith(`/${a}/*`)),
          `${fn} lacks ${a}`,
        ).toBe(true);
    };
    expectOnly("plan", ["input", "staging"]);
    expectOnly("partition", ["input", "staging"]);
    expectOnly("planBuild", ["staging"]);
    expectOnly("build", ["staging", "versions"]);
    expectOnly("publish", ["staging", "versions"]);
    expectOnly("signal", ["versions"]);
    expect(s3Resources("activate")).toEqual([]);
    expect(s3Resources("markFailed")).toEqual([]);
  });
});

describe("triggers", () => {
  it("a schedule rule per dataset with a schedule, starting the state machine with {dataset, config, trigger}", () => {
    const rules = template.findResources("AWS::Events::Rule", { Properties: { ScheduleExpression: "rate(1 day)" } });
    const [rule] = Object.values(rules) as any[];
    const target = rule.Properties.Targets[0];
    expect(target.Arn.Ref).toMatch(/StateMachine/);
    expect(target.RetryPolicy.MaximumRetryAttempts).toBe(4);
    expect(target.InputTransformer.InputPathsMap).toEqual({ time: "$.time" });
    const tpl = target.InputTransformer.InputTemplate;
    const text =
      typeof tpl === "string"
        ? tpl
        : (tpl["Fn::Join"][1] as unknown[]).map((x) => (typeof x === "string" ? x : "databucket")).join("");
    const input = JSON.parse(text.replace(/<time>/g, '"2026-11-22T02:00:00Z"'));
    expect(input.dataset).toBe("profiles");
    expect(input.trigger).toEqual({ kind: "schedule", time: "2026-11-22T02:00:00Z" });
    // s3://data/... became the data bucket's real name; schedule/marker are not part of the load config
    expect(input.config.input).toBe("s3://databucket/input/profiles/");
    expect(input.config.schedule).toBeUndefined();
    const req = requestFromTrigger(input);
    expect(req.version).toBe("20261122T020000Z");
    expect(req.input).toBe("s3://databucket/input/profiles/");
    template.hasResourceProperties("AWS::Events::Rule", { ScheduleExpression: "cron(0 2 * * ? *)" });
  });

  it("a marker rule on the data bucket's Object Created events for _SUCCESS under the input prefix", () => {
    const rules = template.findResources("AWS::Events::Rule", {
      Properties: { EventPattern: { "detail-type": ["Object Created"] } },
    });
    // profiles and scores have inputs in the data bucket; external is in another bucket (no marker rule)
    expect(Object.keys(rules).length).toBe(2);
    template.hasResourceProperties("AWS::Events::Rule", {
      EventPattern: {
        source: ["aws.s3"],
        "detail-type": ["Object Created"],
        detail: {
          bucket: { name: [{ Ref: Match.stringLikeRegexp("BulkLoadData") }] },
          object: { key: ["input/scores/_SUCCESS", { wildcard: "input/scores/*/_SUCCESS" }] },
        },
      },
      Targets: [
        Match.objectLike({
          InputTransformer: {
            InputPathsMap: {
              "detail-bucket-name": "$.detail.bucket.name",
              "detail-object-key": "$.detail.object.key",
              time: "$.time",
            },
            InputTemplate: Match.anyValue(),
          },
        }),
      ],
    });
  });

  it("the marker rule's input, with EventBridge's substitution done, makes Plan's request", () => {
    const rules = template.findResources("AWS::Events::Rule", {
      Properties: { EventPattern: { "detail-type": ["Object Created"] } },
    });
    const rule = Object.values(rules).find((r: any) =>
      JSON.stringify(r.Properties.EventPattern).includes("input/scores/"),
    ) as any;
    const tpl = rule.Properties.Targets[0].InputTransformer.InputTemplate;
    const text =
      typeof tpl === "string"
        ? tpl
        : (tpl["Fn::Join"][1] as unknown[]).map((x) => (typeof x === "string" ? x : "databucket")).join("");
    // what EventBridge does: replace <name> placeholders by the event's values (strings quoted by the template)
    const event = { time: "2026-11-22T02:15:00Z", bucket: "databucket", key: "input/scores/2026-11-21/_SUCCESS" };
    const input = JSON.parse(
      text
        .replace(/<time>/g, `"${event.time}"`)
        .replace(/<detail-bucket-name>/g, `"${event.bucket}"`)
        .replace(/<detail-object-key>/g, `"${event.key}"`),
    );
    expect(input.dataset).toBe("scores");
    expect(input.trigger).toEqual({ kind: "object-created", time: event.time, bucket: "databucket", key: event.key });
    const req = requestFromTrigger(input);
    expect(req.version).toBe("2026-11-21");
    expect(req.input).toBe("s3://databucket/input/scores/2026-11-21/");
    expect(req.format).toBe("csv");
  });
});

describe("cdk-nag", () => {
  it("AwsSolutions finds nothing unacknowledged in a stack with BulkLoadPipeline and triggers", () => {
    const app = new App({ context: { "aws:cdk:bundling-stacks": [] } });
    const s = new Stack(app, "Nag");
    const p = new BulkLoadPipeline(s, "BulkLoad");
    new BulkLoadTriggers(s, "Triggers", {
      stateMachine: p.stateMachine,
      dataBucket: p.dataBucket,
      datasets: [{ dataset: "d", input: "s3://data/input/d/", format: "jsonl", key: ["id"], schedule: "rate(1 hour)" }],
    });
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    expect(() => app.synth()).not.toThrow();
  }, 120_000);
});
