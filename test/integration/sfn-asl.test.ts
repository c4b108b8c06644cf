/**
 * The runner on hand-written templates (no CDK synthesis): inline Map failure propagation to the Map's Catch,
 * ToleratedFailureCount, a Map inside a Parallel, JSON-array and CSV ItemReaders, ItemBatcher byte limits,
 * ResultWriter WriterConfig (COMPACT + JSONL, what the bulk-load pipeline uses), Task timeouts, fault injection
 * before the handler.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CfnTemplate, deployLocal, type LocalDeployment, localClients } from "../../local/deploy/index.js";
import { LocalStepFunctions } from "../../local/sfn/index.js";
import { ensureLocalStack } from "../fixtures/sfn/local-stack.js";

const FN = "arn:aws:lambda:us-east-1:000000000000:function:";
const prefix = `asl${Date.now().toString(36)}-`;
let stop: () => Promise<void>;
let d: LocalDeployment;
let stateDir: string;
let bucket: string;

function fn(entry: string): object {
  return {
    Type: "AWS::Lambda::Function",
    Properties: {
      Handler: "index.handler",
      Timeout: 30,
      Environment: { Variables: { FERRY_DATA_BUCKET: { Ref: "Data" } } },
    },
    Metadata: { "ferry:entry": `test/fixtures/sfn/handlers/${entry}.ts`, "ferry:handler": "handler" },
  };
}
function machine(name: string, def: object): object {
  return {
    Type: "AWS::StepFunctions::StateMachine",
    Properties: {
      StateMachineName: name,
      DefinitionString: { "Fn::Join": ["", [JSON.stringify(def)]] },
    },
  };
}
/** DefinitionString with {Ref: Data} spliced in where the definition says @BUCKET@ (like CDK renders it). */
function machineWithBucket(name: string, def: object): object {
  const parts = JSON.stringify(def).split("@BUCKET@");
  const list: unknown[] = [];
  parts.forEach((p, i) => {
    list.push(p);
    if (i < parts.length - 1) list.push({ Ref: "Data" });
  });
  return {
    Type: "AWS::StepFunctions::StateMachine",
    Properties: { StateMachineName: name, DefinitionString: { "Fn::Join": ["", list] } },
  };
}

const template: CfnTemplate = {
  Resources: {
    Data: { Type: "AWS::S3::Bucket" },
    MaybeFailFn: fn("maybe-fail") as never,
    SleepyFn: fn("sleepy") as never,
    InlineCatch: machine("inline-catch", {
      StartAt: "Each",
      States: {
        Each: {
          Type: "Map",
          ItemsPath: "$.items",
          MaxConcurrency: 1,
          ItemProcessor: {
            ProcessorConfig: { Mode: "INLINE" },
            StartAt: "Call",
            States: { Call: { Type: "Task", Resource: `${FN}${prefix}Local-MaybeFailFn`, End: true } },
          },
          Catch: [{ ErrorEquals: ["InputError"], ResultPath: "$.caught", Next: "Caught" }],
          End: true,
        },
        Caught: { Type: "Pass", End: true },
      },
    }) as never,
    CountTolerance: machine("count-tolerance", {
      StartAt: "Each",
      States: {
        Each: {
          Type: "Map",
          ItemsPath: "$.items",
          ToleratedFailureCount: 2,
          ItemProcessor: {
            ProcessorConfig: { Mode: "DISTRIBUTED", ExecutionType: "STANDARD" },
            StartAt: "Call",
            States: {
              Call: {
                Type: "Task",
                Resource: "arn:aws:states:::lambda:invoke",
                Parameters: { FunctionName: `${FN}${prefix}Local-MaybeFailFn`, "Payload.$": "$" },
                OutputPath: "$.Payload",
                End: true,
              },
            },
          },
          End: true,
        },
      },
    }) as never,
    ParallelMap: machine("parallel-map", {
      StartAt: "Both",
      States: {
        Both: {
          Type: "Parallel",
          Branches: [
            {
              StartAt: "Squares",
              States: {
                Squares: {
                  Type: "Map",
                  ItemsPath: "$.items",
                  ItemSelector: {
                    "id.$": "$$.Map.Item.Index",
                    "label.$": "States.Format('item-{}', $$.Map.Item.Value)",
                  },
                  ItemProcessor: { StartAt: "Echo", States: { Echo: { Type: "Pass", End: true } } },
                  End: true,
                },
              },
            },
            { StartAt: "Const", States: { Const: { Type: "Pass", Result: "b", End: true } } },
          ],
          End: true,
        },
      },
    }) as never,
    Readers: machineWithBucket("readers", {
      StartAt: "FromJson",
      States: {
        FromJson: {
          Type: "Map",
          ItemReader: {
            Resource: "arn:aws:states:::s3:getObject",
            ReaderConfig: { InputType: "JSON" },
            Parameters: { Bucket: "@BUCKET@", "Key.$": "$.jsonKey" },
          },
          ItemProcessor: {
            ProcessorConfig: { Mode: "DISTRIBUTED", ExecutionType: "STANDARD" },
            StartAt: "P",
            States: { P: { Type: "Pass", End: true } },
          },
          ResultPath: "$.json",
          Next: "FromCsv",
        },
        FromCsv: {
          Type: "Map",
          ItemReader: {
            Resource: "arn:aws:states:::s3:getObject",
            ReaderConfig: { InputType: "CSV", CSVHeaderLocation: "FIRST_ROW" },
            Parameters: { Bucket: "@BUCKET@", "Key.$": "$.csvKey" },
          },
          ItemBatcher: { MaxInputBytesPerBatch: 90, BatchInput: { "tag.$": "$.tag" } },
          ItemProcessor: {
            ProcessorConfig: { Mode: "DISTRIBUTED", ExecutionType: "STANDARD" },
            StartAt: "P2",
            States: { P2: { Type: "Pass", End: true } },
          },
          ResultWriter: {
            Resource: "arn:aws:states:::s3:putObject",
            Parameters: { Bucket: "@BUCKET@", Prefix: "results/csv" },
            WriterConfig: { OutputType: "JSONL", Transformation: "COMPACT" },
          },
          ResultPath: "$.csv",
          End: true,
        },
      },
    }) as never,
    Timeout: machine("timeout", {
      StartAt: "Slow",
      States: { Slow: { Type: "Task", Resource: `${FN}${prefix}Local-SleepyFn`, TimeoutSeconds: 1, End: true } },
    }) as never,
  },
};

beforeAll(async () => {
  stop = await ensureLocalStack();
  d = await deployLocal({ template, stackName: "Local", namePrefix: prefix });
  bucket = d.resources.Data?.name as string;
  stateDir = mkdtempSync(path.join(os.tmpdir(), "ferry-sfn-asl-"));
}, 120_000);
afterAll(async () => {
  await stop?.();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

function runner(extra: ConstructorParameters<typeof LocalStepFunctions>[1] = {}) {
  return new LocalStepFunctions(d, { stateDir, waitMs: 1, retryIntervalMs: 1, fault: { rate: 0 }, ...extra });
}

describe("LocalStepFunctions on hand-written ASL", () => {
  it("an inline Map fails with the iteration's error, which the Map's Catch sees (Lambda-shaped cause)", async () => {
    const rec = await runner().runExecution("inline-catch", {
      name: "c1",
      input: { items: [{ id: 1 }, { id: 2, fail: true }, { id: 3 }] },
    });
    expect(rec.status).toBe("SUCCEEDED");
    const caught = (rec.output as { caught: { Error: string; Cause: string } }).caught;
    expect(caught.Error).toBe("InputError");
    expect(JSON.parse(caught.Cause)).toMatchObject({
      errorType: "InputError",
      errorMessage: "item 2 fails on purpose",
    });
  });

  it("ToleratedFailureCount: 2 failures pass, 3 fail the Map", async () => {
    const items = (n: number) => Array.from({ length: 10 }, (_, i) => ({ id: i, fail: i < n }));
    const ok = await runner().runExecution("count-tolerance", { name: "two", input: { items: items(2) } });
    expect(ok.status).toBe("SUCCEEDED");
    expect((ok.output as unknown[]).slice(2)).toEqual(
      items(2)
        .slice(2)
        .map(({ id }) => ({ id })),
    );
    const bad = await runner().runExecution("count-tolerance", { name: "three", input: { items: items(3) } });
    expect(bad.error).toBe("States.ExceedToleratedFailureThreshold");
  });

  it("runs a Map inside a Parallel branch with ItemSelector context paths and intrinsics", async () => {
    const rec = await runner().runExecution("parallel-map", { name: "p1", input: { items: ["a", "b"] } });
    expect(rec.output).toEqual([
      [
        { id: 0, label: "item-a" },
        { id: 1, label: "item-b" },
      ],
      "b",
    ]);
  });

  it("reads JSON-array and CSV items, batches by bytes with BatchInput, writes COMPACT JSONL results", async () => {
    const { s3 } = localClients();
    await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: "in/items.json", Body: JSON.stringify([{ a: 1 }, { a: 2 }]) }),
    );
    await s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: "in/items.csv", Body: 'name,qty\nx,1\ny,2\n"z, the last",3\n' }),
    );
    const rec = await runner().runExecution("readers", {
      name: "r1",
      input: { jsonKey: "in/items.json", csvKey: "in/items.csv", tag: "T" },
    });
    expect(rec.status, `${rec.error} ${rec.cause}`).toBe("SUCCEEDED");
    const out = rec.output as { json: unknown[]; csv: { ResultWriterDetails: { Key: string } } };
    expect(out.json).toEqual([{ a: 1 }, { a: 2 }]);
    const get = async (Key: string) =>
      (await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key }))).Body?.transformToString()) ?? "";
    const manifest = JSON.parse(await get(out.csv.ResultWriterDetails.Key));
    const lines = (await get(manifest.ResultFiles.SUCCEEDED[0].Key))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    // 90-byte batches: the three rows do not fit in one batch; every batch carries BatchInput
    expect(lines.length).toBeGreaterThan(1);
    expect(lines.flatMap((b: { Items: unknown[] }) => b.Items)).toEqual([
      { name: "x", qty: "1" },
      { name: "y", qty: "2" },
      { name: "z, the last", qty: "3" },
    ]);
    expect(lines.every((b: { BatchInput: unknown }) => JSON.stringify(b.BatchInput) === '{"tag":"T"}')).toBe(true);
  });

  it("enforces a Task's TimeoutSeconds (States.Timeout)", async () => {
    const rec = await runner().runExecution("timeout", { name: "t1", input: { ms: 1500 } });
    expect(rec.status).toBe("FAILED");
    expect(rec.error).toBe("States.Timeout");
  });

  it("fault injection before the handler: with rate 1 the handler never runs", async () => {
    const r = runner({ fault: { rate: 1, seed: "x", when: "before", maxPerCall: Number.POSITIVE_INFINITY } });
    const rec = await r.runExecution("inline-catch", { name: "f1", input: { items: [{ id: 1, fail: true }] } });
    // the handler would have thrown InputError (caught); the injected TransientError is not caught by this Map
    expect(rec.status).toBe("FAILED");
    expect(rec.error).toBe("TransientError");
  });
});
