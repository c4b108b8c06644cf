/**
 * Test helpers for the bulk-load pipeline on the local stack: a stack holding only BulkLoadPipeline (synthesized once
 * per source hash and cached in the OS temp dir: synthesis is slow here), deployed under a name prefix; a local
 * Step Functions runner with short retry/wait intervals; readers for what a load published.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { App, type CfnElement, RemovalPolicy, Stack } from "aws-cdk-lib";
import { s3 } from "../../core/aws/clients.js";
import { getText } from "../../core/manifest/s3.js";
import { type Manifest, versionPrefix } from "../../core/manifest/schema.js";
import { s3Source } from "../../core/pipeline/publish.js";
import { SstReader } from "../../core/sst/index.js";
import { BulkLoadPipeline } from "../../infra/constructs/bulk-load-pipeline.js";
import { type CfnTemplate, deployLocal, type LocalDeployment, synthesizeTemplate } from "../../local/deploy/index.js";
import { LocalStepFunctions, type LocalRunnerOptions } from "../../local/sfn/index.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..", "..");
export const PIPE_STACK = "FerryPipeTest";

export interface PipelineNames {
  dataBucket: string;
  controlTable: string;
  stateMachine: string;
}

function logicalIds(): { bucket: string; table: string; sm: string; template: () => CfnTemplate } {
  const app = new App({ context: { "aws:cdk:bundling-stacks": [] } });
  const stack = new Stack(app, PIPE_STACK);
  const p = new BulkLoadPipeline(stack, "BulkLoad", { removalPolicy: RemovalPolicy.DESTROY });
  const lid = (c: { node: { defaultChild?: unknown } }) =>
    stack.resolve(stack.getLogicalId(c.node.defaultChild as CfnElement)) as string;
  return {
    bucket: lid(p.dataBucket),
    table: lid(p.controlTable),
    sm: lid(p.stateMachine),
    template: () => ({}) as CfnTemplate,
  };
}

/** The test stack's template (cached by the hash of the construct sources). */
export async function pipelineTemplate(): Promise<CfnTemplate> {
  const h = createHash("sha256");
  for (const f of ["infra/constructs/bulk-load-pipeline.ts", "infra/constructs/ferry-function.ts"]) {
    h.update(readFileSync(path.join(root, f)));
  }
  const cache = path.join(os.tmpdir(), `ferry-pipe-template-${h.digest("hex").slice(0, 16)}.json`);
  if (existsSync(cache)) return JSON.parse(readFileSync(cache, "utf8")) as CfnTemplate;
  const outdir = mkdtempSync(path.join(os.tmpdir(), "ferry-pipe-synth-"));
  try {
    const app = new App({ outdir, context: { "aws:cdk:bundling-stacks": [] } });
    const stack = new Stack(app, PIPE_STACK);
    new BulkLoadPipeline(stack, "BulkLoad", { removalPolicy: RemovalPolicy.DESTROY });
    const { template } = await synthesizeTemplate({ app, stack });
    const tmp = `${cache}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(template));
    renameSync(tmp, cache);
    return template;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

export interface DeployedPipeline {
  deployment: LocalDeployment;
  names: PipelineNames;
  runner: (opts?: LocalRunnerOptions) => LocalStepFunctions;
  stateDir: string;
}

export async function deployPipeline(namePrefix: string): Promise<DeployedPipeline> {
  const template = await pipelineTemplate();
  const deployment = await deployLocal({ template, stackName: PIPE_STACK, namePrefix });
  const ids = logicalIds();
  const names: PipelineNames = {
    dataBucket: deployment.resources[ids.bucket].name,
    controlTable: deployment.resources[ids.table].name,
    stateMachine: deployment.stateMachine(ids.sm).arn,
  };
  const stateDir = mkdtempSync(path.join(os.tmpdir(), "ferry-pipe-sfn-"));
  return {
    deployment,
    names,
    stateDir,
    runner: (opts = {}) => new LocalStepFunctions(deployment, { stateDir, retryIntervalMs: 5, waitMs: 20, ...opts }),
  };
}

export async function putObject(bucket: string, key: string, body: string | Uint8Array): Promise<void> {
  await s3().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

/** Every (key, value) of a published version, read back from its SST files with core/sst, per shard. */
export async function readPublished(
  bucket: string,
  dataset: string,
  version: string,
): Promise<{ manifest: Manifest; entries: Map<string, string>; byShard: Map<number, string[]> }> {
  const text = await getText(bucket, `${versionPrefix(dataset, version)}manifest.json`);
  if (!text) throw new Error(`no manifest for ${dataset}/${version}`);
  const manifest = JSON.parse(text) as Manifest;
  const entries = new Map<string, string>();
  const byShard = new Map<number, string[]>();
  for (const f of manifest.files) {
    const key = versionPrefix(dataset, version) + f.path;
    const reader = await SstReader.open(s3Source(bucket, key, f.bytes));
    try {
      for await (const [k, v] of reader.scan()) {
        const ks = Buffer.from(k).toString("utf8");
        if (entries.has(ks)) throw new Error(`key ${ks} appears in two files`);
        entries.set(ks, Buffer.from(v).toString("utf8"));
        const list = byShard.get(f.shard) ?? [];
        list.push(ks);
        byShard.set(f.shard, list);
      }
    } finally {
      await reader.close();
    }
  }
  return { manifest, entries, byShard };
}

/** The manifest without timestamps, for comparing two runs. */
export function manifestContent(m: Manifest): unknown {
  const { createdAt: _c, ...rest } = m;
  return rest;
}

/** A deterministic pseudo-random generator for test data. */
export function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}
