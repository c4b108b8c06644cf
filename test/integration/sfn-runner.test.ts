/**
 * The local Step Functions runner on CDK-synthesized state machines against the local stack: a Distributed Map over
 * 1,000+ S3 objects (listing ItemReader, ItemBatcher, Retry recovering a TransientError, Catch, ResultWriter), an
 * inline Map with a Wait+Choice polling loop, a JSONL ItemReader with a tolerated-failure threshold, MaxConcurrency,
 * execution-name reuse across runner instances, unknown handlers, progress events and fault injection.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalDeployment, localClients } from "../../local/deploy/index.js";
import { LocalStepFunctions, type ProgressEvent } from "../../local/sfn/index.js";
import { deployFixture } from "../fixtures/sfn/deploy-fixture.js";
import { ensureLocalStack } from "../fixtures/sfn/local-stack.js";

const prefix = `run${Date.now().toString(36)}-`;
let stop: () => Promise<void>;
let d: LocalDeployment;
let bucket: string;
let stateDir: string;
const OBJECTS = 1000;

async function getJson(key: string): Promise<unknown> {
  const o = await localClients().s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return JSON.parse((await o.Body?.transformToString()) ?? "null");
}

async function countKeys(p: string): Promise<number> {
  let n = 0;
  let token: string | undefined;
  do {
    const page = await localClients().s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: p, ContinuationToken: token }),
    );
    n += page.KeyCount ?? page.Contents?.length ?? 0;
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return n;
}

async function putMany(keys: string[], body: (k: string) => string): Promise<void> {
  const { s3 } = localClients();
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < keys.length) {
        const k = keys[next++] as string;
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: body(k) }));
      }
    }),
  );
}

function runner(extra: ConstructorParameters<typeof LocalStepFunctions>[1] = {}): LocalStepFunctions {
  return new LocalStepFunctions(d, { stateDir, waitMs: 5, retryIntervalMs: 5, fault: { rate: 0 }, ...extra });
}

beforeAll(async () => {
  stop = await ensureLocalStack();
  d = await deployFixture(prefix);
  bucket = d.resources.Data666C94C7?.name as string;
  stateDir = mkdtempSync(path.join(os.tmpdir(), "ferry-sfn-state-"));
}, 300_000);
afterAll(async () => {
  await stop?.();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

describe("LocalStepFunctions", () => {
  it("runs a Distributed Map over 1,000+ S3 objects: batches, Retry, Catch, ResultWriter, then a Wait+Choice loop", async () => {
    const keys = Array.from({ length: OBJECTS }, (_, i) => `input/obj-${String(i).padStart(5, "0")}`);
    keys.push("input/obj-00777-poison");
    await putMany(keys, (k) => `data of ${k}`);
    // listing order is key order: batches of 50 start at obj-00000, obj-00050, ...
    const flakyKeys = ["input/obj-00050", "input/obj-00500"];
    const r = runner();
    const events: ProgressEvent[] = [];
    r.onProgress((e) => events.push(e));
    const rec = await r.runExecution("fixture-distributed", {
      name: "load-1",
      input: { outPrefix: "out", flakyKeys, checks: [{ target: 1 }, { target: 3 }, { target: 2 }] },
    });
    expect(rec.status, `${rec.error}: ${rec.cause}`).toBe("SUCCEEDED");
    const output = rec.output as {
      mapResult: { MapRunArn: string; ResultWriterDetails: { Bucket: string; Key: string } };
      checked: { attempt: number; target: number; done: boolean }[];
    };

    // ResultWriter: the Map's output is the manifest's location; the manifest lists the result files
    const details = output.mapResult.ResultWriterDetails;
    expect(details.Bucket).toBe(bucket);
    expect(details.Key).toMatch(/^map-results\/[0-9a-f-]{36}\/manifest\.json$/);
    expect(output.mapResult.MapRunArn).toContain(`:mapRun:${prefix}fixture-distributed/ProcessObjects:`);
    const manifest = (await getJson(details.Key)) as {
      DestinationBucket: string;
      MapRunArn: string;
      ResultFiles: Record<string, { Key: string; Size: number }[]>;
    };
    expect(manifest.DestinationBucket).toBe(bucket);
    expect(manifest.MapRunArn).toBe(output.mapResult.MapRunArn);
    expect(manifest.ResultFiles.FAILED).toEqual([]);
    expect(manifest.ResultFiles.SUCCEEDED).toHaveLength(1);
    const succeededKey = manifest.ResultFiles.SUCCEEDED?.[0]?.Key as string;
    expect(succeededKey).toBe(details.Key.replace("manifest.json", "SUCCEEDED_0.json"));
    const children = (await getJson(succeededKey)) as { Status: string; Input: string; Output: string }[];
    // 1,001 objects in batches of 50 = 21 child executions, all SUCCEEDED (the poison batch was caught)
    expect(children).toHaveLength(Math.ceil((OBJECTS + 1) / 50));
    expect(children.every((c) => c.Status === "SUCCEEDED")).toBe(true);
    const outputs = children.map(
      (c) => JSON.parse(c.Output) as { count?: number; inflight?: number; failed?: boolean; error?: string },
    );
    const caught = outputs.filter((o) => o.failed);
    expect(caught).toEqual([{ failed: true, error: "InputError" }]);
    const inputs = children.map(
      (c) => JSON.parse(c.Input) as { Items: { Key: string }[]; BatchInput: Record<string, unknown> },
    );
    expect(inputs[0]?.BatchInput).toEqual({ bucket, outPrefix: "out", flakyKeys });
    expect(inputs.every((i) => i.Items.length <= 50)).toBe(true);
    const written = outputs.reduce((s, o) => s + (o.count ?? 0), 0);
    const poisonBatch = inputs.find((i) => i.Items.some((it) => it.Key.includes("poison")));
    expect(written).toBe(OBJECTS + 1 - (poisonBatch?.Items.length ?? 0));

    // every child wrote its objects: count them in S3
    expect(await countKeys("out/obj-")).toBe(written);
    // the flaky batches failed once (marker written) and were retried to success
    expect(await countKeys("out/_flaky/")).toBe(2);
    expect(events.filter((e) => e.type === "stateRetried" && e.state === "ProcessBatch")).toHaveLength(2);
    // MaxConcurrency 8: several children ran at once, never more than 8
    const maxInflight = Math.max(...outputs.map((o) => o.inflight ?? 0));
    expect(maxInflight).toBeGreaterThan(1);
    expect(maxInflight).toBeLessThanOrEqual(8);

    // inline Map with a Wait + Choice polling loop: each item polled until done
    expect(output.checked.map((c) => [c.target, c.attempt, c.done])).toEqual([
      [1, 1, true],
      [3, 3, true],
      [2, 2, true],
    ]);

    // progress: states entered/exited at the top level, map items counted
    const top = events.filter((e) => e.parents.length === 0);
    expect(top.filter((e) => e.type === "stateEntered").map((e) => (e as { state: string }).state)).toEqual([
      "ProcessObjects",
      "CheckEach",
    ]);
    const exited = top.find((e) => e.type === "stateExited" && e.state === "ProcessObjects") as { durationMs: number };
    expect(exited.durationMs).toBeGreaterThan(0);
    const mapEvents = events.filter((e) => e.type === "mapProgress" && e.state === "ProcessObjects") as {
      total: number;
      done: number;
      failed: number;
    }[];
    expect(mapEvents.at(-1)).toMatchObject({ total: OBJECTS + 1, done: OBJECTS + 1, failed: 0 });
    const waits = events.filter((e) => e.type === "stateEntered" && e.state === "WaitBeforePoll");
    expect(waits).toHaveLength(0 + 2 + 1);
    expect(events.at(-1)).toMatchObject({ type: "executionSucceeded", name: "load-1" });
  }, 180_000);

  it("fails a Distributed Map with States.ExceedToleratedFailureThreshold past ToleratedFailurePercentage", async () => {
    const items = (failEvery: number) =>
      `${Array.from({ length: 100 }, (_, i) => JSON.stringify({ id: i, fail: i % failEvery === 0 })).join("\n")}\n`;
    await localClients().s3.send(new PutObjectCommand({ Bucket: bucket, Key: "tol/few.jsonl", Body: items(20) })); // 5%
    await localClients().s3.send(new PutObjectCommand({ Bucket: bucket, Key: "tol/many.jsonl", Body: items(4) })); // 25%
    const r = runner();
    const ok = await r.runExecution("fixture-tolerance", { name: "few", input: { key: "tol/few.jsonl" } });
    expect(ok.status, `${ok.error}: ${ok.cause}`).toBe("SUCCEEDED");
    const out = ok.output as ({ id: number } | { Error: string; Cause: string })[];
    expect(out).toHaveLength(100);
    expect(out.filter((o) => "Error" in o).map((o) => (o as { Error: string }).Error)).toEqual(
      Array(5).fill("InputError"),
    );
    expect(out[1]).toEqual({ id: 1 });

    const bad = await r.runExecution("fixture-tolerance", { name: "many", input: { key: "tol/many.jsonl" } });
    expect(bad.status).toBe("FAILED");
    expect(bad.error).toBe("States.ExceedToleratedFailureThreshold");
    expect(bad.cause).toMatch(/MaybeFailEach: \d+ of 100 items failed, over the tolerated threshold \(10%\)/);
  }, 60_000);

  it("honours MaxConcurrency of inline and Distributed Maps (max in flight counted by the handler)", async () => {
    const r = runner();
    const items = Array.from({ length: 30 }, () => ({ ms: 15 }));
    const rec = await r.runExecution("fixture-concurrency", { name: "conc-1", input: { items } });
    expect(rec.status, `${rec.error}: ${rec.cause}`).toBe("SUCCEEDED");
    const out = rec.output as { inline: { inflight: number }[]; distributed: { inflight: number }[] };
    const maxInline = Math.max(...out.inline.map((o) => o.inflight));
    const maxDistributed = Math.max(...out.distributed.map((o) => o.inflight));
    expect(maxInline).toBe(5);
    expect(maxDistributed).toBe(7);
  }, 60_000);

  it("refuses a task whose function has no local handler, naming the state and the function", async () => {
    const r = runner();
    await expect(r.startExecution("fixture-orphan", { name: "orphan-1" })).rejects.toThrow(
      /state "CallOrphan" invokes function OrphanFnC093471D .*no local handler/,
    );
    expect(r.describeExecution("orphan-1", "fixture-orphan")).toBeUndefined();
  });

  it("reuses an execution name: a second start (running or finished, any runner instance) returns the same execution", async () => {
    const r1 = runner();
    const input = { items: Array.from({ length: 10 }, () => ({ ms: 30 })) };
    const a = await r1.startExecution("fixture-concurrency", { name: "ds-v1", input });
    const b = await r1.startExecution("fixture-concurrency", { name: "ds-v1", input });
    expect(a.existing).toBe(false);
    expect(b.existing).toBe(true);
    expect(b.executionArn).toBe(a.executionArn);
    expect(r1.describeExecution(a.executionArn)?.status).toBe("RUNNING");
    const [ra, rb] = await Promise.all([a.done, b.done]);
    expect(ra.status).toBe("SUCCEEDED");
    expect(rb).toEqual(ra);

    // another runner (as another CLI process would) sees the finished execution and starts nothing
    const r2 = runner();
    const c = await r2.startExecution("fixture-concurrency", { name: "ds-v1", input });
    expect(c.existing).toBe(true);
    expect((await c.done).output).toEqual(ra.output);
    expect(r2.listExecutions("fixture-concurrency").filter((e) => e.name === "ds-v1")).toHaveLength(1);
    // the same name with another input is ExecutionAlreadyExists
    await expect(
      r2.startExecution("fixture-concurrency", { name: "ds-v1", input: { items: [] } }),
    ).rejects.toMatchObject({
      name: "ConflictError",
    });
  }, 60_000);

  it("injects deterministic TransientErrors after the handler ran (FERRY_FAULT_RATE / SEED); Retry absorbs them", async () => {
    const runWithFaults = async (name: string, dir: string) => {
      const r = new LocalStepFunctions(d, {
        stateDir: dir,
        waitMs: 5,
        retryIntervalMs: 5,
        fault: { rate: 0.3, seed: "42", when: "after" },
      });
      const injected: string[] = [];
      r.onProgress((e) => {
        if (e.type === "faultInjected") injected.push(`${e.state}@${e.at > 0}`);
      });
      const rec = await r.runExecution("fixture-concurrency", {
        name,
        input: { items: Array.from({ length: 20 }, (_, i) => ({ ms: 1, i })) },
      });
      return { rec, injected: injected.length };
    };
    const one = await runWithFaults("faults-1", stateDir);
    expect(one.rec.status, `${one.rec.error}: ${one.rec.cause}`).toBe("SUCCEEDED");
    expect(one.injected).toBeGreaterThan(3);
    expect((one.rec.output as { inline: unknown[] }).inline).toHaveLength(20);
    // the same seed, execution and payloads inject exactly the same faults (a fresh state dir: same name again)
    const otherDir = mkdtempSync(path.join(os.tmpdir(), "ferry-sfn-state-"));
    try {
      const two = await runWithFaults("faults-1", otherDir);
      expect(two.rec.status).toBe("SUCCEEDED");
      expect(two.injected).toBe(one.injected);
    } finally {
      rmSync(otherDir, { recursive: true, force: true });
    }
  }, 60_000);
});
