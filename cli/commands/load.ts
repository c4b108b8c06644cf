/**
 * `ferry load`, `ferry status`, `ferry versions`, `ferry pull` — docs/cli.md, docs/pipeline.md.
 *
 * Local (default): the embedded stack (running one, or started for the command), the CDK app deployed onto it
 * (local/deploy; the synthesized template is cached by the hash of infra/), the synthesized state machine run by the
 * local runner (local/sfn). `--aws [--stack NAME]`: the deployed stack, names from its CloudFormation outputs,
 * StartExecution / DescribeExecution.
 *
 * The execution is named `<dataset>-<version>`: starting it again joins (or reports) the same load. A failed one is
 * retried under `<dataset>-<version>-r<n>` (Plan re-plans the FAILED version, finished chunks/buckets are reused).
 */
import { createHash } from "node:crypto";
import {
  createReadStream,
  createWriteStream,
  existsSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import type { Readable } from "node:stream";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import type { Command } from "commander";
import { s3 } from "../../core/aws/clients.js";
import { type DatasetItem, getDataset } from "../../core/control/datasets.js";
import { fleetCoverage } from "../../core/control/fleet.js";
import { getVersion, listVersions, type VersionItem } from "../../core/control/versions.js";
import { ConfigError, CorruptionError, FerryError, NotFoundError, type ErrorCode } from "../../core/errors.js";
import { readManifest } from "../../core/manifest/manifest.js";
import { type Manifest, manifestKey, versionPrefix } from "../../core/manifest/schema.js";
import { defaultVersion, parseLoadRequest } from "../../core/pipeline/config.js";
import type { LoadRequest } from "../../core/pipeline/types.js";

// ---------------------------------------------------------------------------------------------------------------
// options

export interface RunLoadOptions {
  dataset: string;
  /** a local file/directory, or s3://bucket/prefix-or-key */
  input: string;
  format: string;
  key: string[] | string;
  value?: string[] | string;
  valueRaw?: string;
  shards?: number;
  version?: string;
  duplicates?: string;
  badRecords?: string;
  maxBadRecords?: number;
  /** SST block compression */
  compression?: string;
  /** input compression (default: from the object names) */
  inputCompression?: string;
  bloomBits?: number;
  targetFileSize?: number;
  fleet?: string;
  minReplicas?: number;
  keepVersions?: number;
  csvSplit?: boolean;
  /** AWS only: return once the version is signalled instead of waiting for the hosts and the cutover */
  waitHosts?: boolean;
  aws?: boolean;
  stack?: string;
  /** progress lines (default: none) */
  progress?: (line: string) => void;
  /** local only: a deployment of the app to use (default: deploy the app onto the local stack, once per process) */
  deployment?: import("../../local/deploy/index.js").LocalDeployment;
  /** local only: runner options (tests shorten retry intervals, inject faults) */
  runnerOptions?: import("../../local/sfn/index.js").LocalRunnerOptions;
}

export interface LoadSummary {
  dataset: string;
  version: string;
  status: string;
  records: number;
  duplicates: number;
  skipped: number;
  entries: number;
  files: number;
  bytes: number;
  manifest: string;
  inputBytes: number;
  execution: string;
  /** the version was already published: nothing was done */
  alreadyDone: boolean;
  seconds: number;
  phases: Record<string, number>;
  mbPerSec: number;
  recordsPerSec: number;
  activeVersion?: string | null;
}

export class LoadFailedError extends FerryError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly summary: {
      dataset: string;
      version: string;
      status: string;
      error: string;
      cause: string;
      execution: string;
    },
  ) {
    super(code, message, summary);
  }
}

function errorCode(name: string): ErrorCode {
  const m: Record<string, ErrorCode> = {
    InputError: "INPUT",
    ConfigError: "CONFIG",
    ValidationError: "VALIDATION",
    CorruptionError: "CORRUPTION",
    NotFoundError: "NOT_FOUND",
    ConflictError: "CONFLICT",
    LimitError: "LIMIT",
    TransientError: "TRANSIENT",
  };
  return m[name] ?? "VALIDATION";
}

/** The load request the options describe (input rewritten by the caller when it was a local path). */
export function requestFromOptions(o: RunLoadOptions, input: string, version: string): LoadRequest {
  const raw: Record<string, unknown> = {
    dataset: o.dataset,
    version,
    input,
    format: o.format,
    key: o.key,
  };
  const opt: Array<[string, unknown]> = [
    ["value", o.value],
    ["valueRaw", o.valueRaw],
    ["shards", o.shards],
    ["duplicates", o.duplicates],
    ["badRecords", o.badRecords],
    ["maxBadRecords", o.maxBadRecords],
    ["sstCompression", o.compression],
    ["compression", o.inputCompression],
    ["bloomBitsPerKey", o.bloomBits],
    ["targetFileSize", o.targetFileSize],
    ["fleet", o.fleet],
    ["minReplicas", o.minReplicas],
    ["keepVersions", o.keepVersions],
    ["csvSplit", o.csvSplit],
  ];
  for (const [k, v] of opt) if (v !== undefined) raw[k] = v;
  return parseLoadRequest(raw);
}

// ---------------------------------------------------------------------------------------------------------------
// targets: the local stack or a deployed stack

interface RunResult {
  status: string;
  output?: unknown;
  error?: string;
  cause?: string;
  phases: Record<string, number>;
}

interface Target {
  kind: "local" | "aws";
  dataBucket: string;
  controlTable: string;
  /** start (or join) the execution; returns its final state */
  run(
    name: string,
    input: unknown,
    onEvent: (e: ProgressNote) => void,
    waitHosts: boolean,
  ): Promise<RunResult & { name: string }>;
}

type ProgressNote =
  | { kind: "phase"; phase: string }
  | { kind: "items"; phase: string; done: number; total: number; failed: number }
  | { kind: "retry"; phase: string; attempt: number };

/** Top-level states → phase names (progress lines, the summary and `bench pipeline`). */
export const PHASE_OF: Record<string, string> = {
  Plan: "plan",
  Partition: "partition",
  PlanBuild: "planBuild",
  Build: "build",
  Publish: "publish",
  Activate: "activate",
  Signal: "signal",
  WaitForHosts: "waitForHosts",
  WaitPoll: "waitForHosts",
  Covered: "waitForHosts",
  Cutover: "cutover",
  Cleanup: "cleanup",
  MarkFailed: "markFailed",
};

function hashDir(h: ReturnType<typeof createHash>, dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) hashDir(h, p);
    else if (e.name.endsWith(".ts")) h.update(p).update(readFileSync(p));
  }
}

/** The app's synthesized template, cached in the OS temp dir by the hash of infra/ (synthesis takes 10-40 s). */
async function appTemplate(): Promise<{
  template: import("../../local/deploy/index.js").CfnTemplate;
  stackName: string;
}> {
  const { PROJECT_ROOT } = await import("../../local/stack/index.js");
  const h = createHash("sha256");
  hashDir(h, path.join(PROJECT_ROOT, "infra"));
  h.update(process.env.FERRY_STACK_NAME ?? "");
  const cache = path.join(os.tmpdir(), `ferry-app-template-${h.digest("hex").slice(0, 16)}.json`);
  if (existsSync(cache)) return JSON.parse(readFileSync(cache, "utf8"));
  const { synthesizeTemplate } = await import("../../local/deploy/index.js");
  const out = await synthesizeTemplate();
  const tmp = `${cache}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(out));
  renameSync(tmp, cache);
  return out;
}

let deployed: Promise<import("../../local/deploy/index.js").LocalDeployment> | undefined;
let deployedFor = "";

/** Deploy the app onto the local stack the environment points at (once per process and stack). */
export async function localDeployment(): Promise<import("../../local/deploy/index.js").LocalDeployment> {
  const key = `${process.env.AWS_ENDPOINT_URL_S3}|${process.env.AWS_ENDPOINT_URL_DYNAMODB}`;
  if (!deployed || deployedFor !== key) {
    deployedFor = key;
    deployed = (async () => {
      const { deployLocal } = await import("../../local/deploy/index.js");
      const { template, stackName } = await appTemplate();
      return deployLocal({ template, stackName });
    })();
    deployed.catch(() => {
      deployed = undefined;
    });
  }
  return deployed;
}

/**
 * The bulk-load pipeline of a local deployment: its state machine (the one with the Partition Map) and, from the
 * Plan function's environment, the data bucket and control table — also exported into this process's environment,
 * where the handlers the local runner calls read them.
 */
export function localBulkLoad(d: import("../../local/deploy/index.js").LocalDeployment) {
  const planFn = Object.values(d.functions).find((f) =>
    f.entry?.replace(/\\/g, "/").endsWith("functions/bulk-load/plan.ts"),
  );
  const sm = Object.values(d.stateMachines).find((s) =>
    Object.values(s.asl.States).some((st) => st.Type === "Map" && (st as { Label?: string }).Label === "Partition"),
  );
  if (!planFn || !sm) throw new ConfigError("the local deployment has no bulk-load pipeline (BulkLoadPipeline)");
  const dataBucket = planFn.env.FERRY_DATA_BUCKET;
  const controlTable = planFn.env.FERRY_CONTROL_TABLE;
  process.env.FERRY_DATA_BUCKET = dataBucket;
  process.env.FERRY_CONTROL_TABLE = controlTable;
  return { sm, dataBucket, controlTable };
}

async function localTarget(o: Pick<RunLoadOptions, "deployment" | "runnerOptions">): Promise<Target> {
  const d = o.deployment ?? (await localDeployment());
  const { sm, dataBucket, controlTable } = localBulkLoad(d);
  const { LocalStepFunctions } = await import("../../local/sfn/index.js");
  return {
    kind: "local",
    dataBucket,
    controlTable,
    async run(name, input, onEvent) {
      const runner = new LocalStepFunctions(d, { waitMs: 1000, ...o.runnerOptions });
      const phases: Record<string, number> = {};
      const entered = new Map<string, number>();
      const off = runner.onProgress((e) => {
        if (e.type === "stateRetried") {
          onEvent({ kind: "retry", phase: PHASE_OF[e.parents[0] ?? e.state] ?? e.state, attempt: e.attempt });
          return;
        }
        if (e.parents.length > 0) return;
        if (e.type === "stateEntered") {
          entered.set(e.state, e.at);
          const ph = PHASE_OF[e.state];
          if (ph) onEvent({ kind: "phase", phase: ph });
        } else if (e.type === "stateExited") {
          const ph = PHASE_OF[e.state];
          if (ph) phases[ph] = round((phases[ph] ?? 0) + e.durationMs / 1000, 3);
        } else if (e.type === "mapProgress") {
          onEvent({
            kind: "items",
            phase: PHASE_OF[e.state] ?? e.state,
            done: e.done,
            total: e.total,
            failed: e.failed,
          });
        }
      });
      try {
        let attempt = 1;
        let execName = name;
        for (;;) {
          const h = await runner.startExecution(sm.arn, { name: execName, input });
          const rec = await h.done;
          if (h.existing && rec.status !== "SUCCEEDED" && rec.status !== "RUNNING" && attempt < 20) {
            // that attempt failed before: retry under a new name (Plan re-plans a FAILED version)
            attempt++;
            execName = `${name}-r${attempt}`;
            continue;
          }
          return { name: execName, status: rec.status, output: rec.output, error: rec.error, cause: rec.cause, phases };
        }
      } finally {
        off();
      }
    },
  };
}

async function awsTarget(stackName: string): Promise<Target> {
  const { CloudFormationClient, DescribeStacksCommand } = await import("@aws-sdk/client-cloudformation");
  const { SFNClient, StartExecutionCommand, DescribeExecutionCommand } = await import("@aws-sdk/client-sfn");
  const cfn = new CloudFormationClient({});
  const out = await cfn.send(new DescribeStacksCommand({ StackName: stackName })).catch((err: Error) => {
    throw new NotFoundError(`stack ${stackName}: ${err.message} (deploy it with \`cdk deploy\`, or pass --stack NAME)`);
  });
  const outputs = Object.fromEntries((out.Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey, o.OutputValue]));
  const need = (k: string) => {
    const v = outputs[k];
    if (!v)
      throw new NotFoundError(`stack ${stackName} has no output ${k}: is it a ferry stack with BulkLoadPipeline?`);
    return v;
  };
  const dataBucket = need("FerryDataBucket");
  const controlTable = need("FerryControlTable");
  const stateMachineArn = need("FerryBulkLoadStateMachine");
  const sfn = new SFNClient({});
  return {
    kind: "aws",
    dataBucket,
    controlTable,
    async run(name, input, onEvent, waitHosts) {
      const execArn = (n: string) => `${stateMachineArn.replace(":stateMachine:", ":execution:")}:${n}`;
      let attempt = 1;
      let execName = name;
      for (;;) {
        try {
          await sfn.send(new StartExecutionCommand({ stateMachineArn, name: execName, input: JSON.stringify(input) }));
          break;
        } catch (err) {
          if ((err as Error).name !== "ExecutionAlreadyExists") throw err;
          const d = await sfn.send(new DescribeExecutionCommand({ executionArn: execArn(execName) }));
          if (d.status === "RUNNING" || d.status === "SUCCEEDED" || attempt >= 20) break;
          attempt++;
          execName = `${name}-r${attempt}`;
        }
      }
      const req = (input as { request: LoadRequest }).request;
      let last = "";
      for (;;) {
        const d = await sfn.send(new DescribeExecutionCommand({ executionArn: execArn(execName) }));
        const v = await getVersion(controlTable, req.dataset, req.version).catch(() => undefined);
        if (v && v.status !== last) {
          last = v.status;
          onEvent({ kind: "phase", phase: v.status.toLowerCase() });
        }
        if (d.status !== "RUNNING") {
          return {
            name: execName,
            status: d.status ?? "UNKNOWN",
            output: d.output ? JSON.parse(d.output) : undefined,
            error: d.error,
            cause: d.cause,
            phases: phasesFromTimings(v),
          };
        }
        if (!waitHosts && v && (v.status === "LOADING" || v.status === "ACTIVE")) {
          return { name: execName, status: "RUNNING", phases: phasesFromTimings(v) };
        }
        await new Promise((r) => setTimeout(r, 3000));
      }
    },
  };
}

function phasesFromTimings(v: VersionItem | undefined): Record<string, number> {
  if (!v) return {};
  const t = (s: string) => (v.timings as Record<string, string | undefined>)[s];
  const span = (a: string, b: string) => {
    const x = t(a);
    const y = t(b);
    return x && y ? round((Date.parse(y) - Date.parse(x)) / 1000, 3) : undefined;
  };
  const out: Record<string, number> = {};
  const pairs: Array<[string, string, string]> = [
    ["partition", "PLANNED", "PARTITIONED"],
    ["build", "PARTITIONED", "BUILT"],
    ["publish", "BUILT", "STAGED"],
    ["activate", "STAGED", "ACTIVE"],
  ];
  for (const [k, a, b] of pairs) {
    const s = span(a, b);
    if (s !== undefined) out[k] = s;
  }
  return out;
}

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

// ---------------------------------------------------------------------------------------------------------------
// input upload (a local path becomes input/<dataset>/<version>/...)

function localFiles(p: string): Array<{ abs: string; rel: string; size: number }> {
  const st = statSync(p, { throwIfNoEntry: false });
  if (!st)
    throw new ConfigError(`--input ${p}: no such file or directory (or give s3://bucket/prefix)`, { field: "input" });
  if (st.isFile()) return [{ abs: path.resolve(p), rel: path.basename(p), size: st.size }];
  const out: Array<{ abs: string; rel: string; size: number }> = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.name.startsWith(".")) continue;
      const abs = path.join(dir, e.name);
      if (e.isDirectory()) walk(abs);
      else if (e.isFile())
        out.push({ abs, rel: path.relative(p, abs).split(path.sep).join("/"), size: statSync(abs).size });
    }
  };
  walk(p);
  return out;
}

async function uploadInput(
  local: string,
  bucket: string,
  prefix: string,
  progress?: (line: string) => void,
): Promise<{ input: string; bytes: number }> {
  const files = localFiles(local);
  let bytes = 0;
  const t0 = Date.now();
  for (const f of files) {
    const upload = new Upload({
      client: s3(),
      params: { Bucket: bucket, Key: `${prefix}${f.rel}`, Body: createReadStream(f.abs) },
      partSize: 16 * 1024 * 1024,
      queueSize: 4,
    });
    await upload.done();
    bytes += f.size;
  }
  progress?.(
    `uploaded ${files.length} file(s), ${round(bytes / 1e6, 1)} MB to s3://${bucket}/${prefix} in ${round((Date.now() - t0) / 1000, 1)} s`,
  );
  return { input: `s3://${bucket}/${prefix}`, bytes };
}

// ---------------------------------------------------------------------------------------------------------------
// runLoad: the library entry point (`ferry load`, `ferry demo`)

async function withTarget<T>(
  o: { aws?: boolean; stack?: string } & Pick<RunLoadOptions, "deployment" | "runnerOptions">,
  fn: (t: Target) => Promise<T>,
): Promise<T> {
  if (o.aws) return fn(await awsTarget(o.stack ?? process.env.FERRY_STACK_NAME ?? "Ferry"));
  if (o.deployment) return fn(await localTarget(o));
  const { withLocalStack } = await import("../../local/stack/index.js");
  return withLocalStack(async () => fn(await localTarget(o)));
}

/** Load a dataset version end to end and return the summary (throws LoadFailedError when the load failed). */
export async function runLoad(o: RunLoadOptions): Promise<LoadSummary> {
  const version = o.version ?? defaultVersion();
  // validate everything before touching any stack: a bad option fails fast with the field named
  const provisional = requestFromOptions(
    o,
    o.input.startsWith("s3://") ? o.input : "s3://placeholder-bucket/x/",
    version,
  );
  return withTarget(o, async (t) => {
    const t0 = Date.now();
    let input = o.input;
    if (!input.startsWith("s3://")) {
      input = (await uploadInput(o.input, t.dataBucket, `input/${provisional.dataset}/${version}/`, o.progress)).input;
    }
    const request = { ...provisional, input };
    const name = `${request.dataset}-${request.version}`;
    const progress = makeProgress(o.progress, t, request);
    const res = await t.run(name, { request }, progress, o.waitHosts !== false);
    const seconds = round((Date.now() - t0) / 1000, 2);
    if (res.status !== "SUCCEEDED" && res.status !== "RUNNING") {
      const error = res.error ?? res.status;
      const cause = res.cause ?? "";
      throw new LoadFailedError(
        errorCode(error),
        `load of ${request.dataset}/${request.version} failed: ${error}: ${cause}`,
        { dataset: request.dataset, version: request.version, status: "FAILED", error, cause, execution: res.name },
      );
    }
    const v = await getVersion(t.controlTable, request.dataset, request.version);
    const ds = await getDataset(t.controlTable, request.dataset);
    const c = v?.counts ?? {};
    const records = c.records ?? 0;
    const inputBytes = v?.inputBytes ?? 0;
    const alreadyDone = (res.output as { alreadyDone?: boolean } | undefined)?.alreadyDone === true;
    return {
      dataset: request.dataset,
      version: request.version,
      status: res.status === "RUNNING" ? (v?.status ?? "RUNNING") : (v?.status ?? "UNKNOWN"),
      records,
      duplicates: c.duplicates ?? 0,
      skipped: c.skipped ?? 0,
      entries: c.entries ?? 0,
      files: c.files ?? 0,
      bytes: v?.bytes ?? 0,
      manifest: `s3://${t.dataBucket}/${manifestKey(request.dataset, request.version)}`,
      inputBytes,
      execution: res.name,
      alreadyDone,
      seconds,
      phases: res.phases,
      mbPerSec: seconds > 0 ? round(inputBytes / 1e6 / seconds) : 0,
      recordsPerSec: seconds > 0 ? Math.round(records / seconds) : 0,
      activeVersion: ds?.activeVersion ?? null,
    };
  });
}

/** Progress lines: phase changes, map items done/total with MB/s and records/s, throttled to one a second. */
function makeProgress(
  out: ((line: string) => void) | undefined,
  t: Target,
  req: LoadRequest,
): (e: ProgressNote) => void {
  if (!out) return () => {};
  const t0 = Date.now();
  let phaseStart = t0;
  let lastLine = 0;
  let inputBytes = 0;
  let records = 0;
  const fetchCounts = async () => {
    const v = await getVersion(t.controlTable, req.dataset, req.version).catch(() => undefined);
    inputBytes = v?.inputBytes ?? inputBytes;
    records = v?.counts?.records ?? records;
  };
  return (e) => {
    const now = Date.now();
    if (e.kind === "phase") {
      phaseStart = now;
      out(`[${round((now - t0) / 1000, 1)}s] ${e.phase}`);
      void fetchCounts();
      return;
    }
    if (e.kind === "retry") {
      out(`[${round((now - t0) / 1000, 1)}s] ${e.phase}: retry (attempt ${e.attempt})`);
      return;
    }
    if (now - lastLine < 1000 && e.done !== e.total) return;
    lastLine = now;
    const secs = Math.max(0.001, (now - phaseStart) / 1000);
    const share = e.total > 0 ? e.done / e.total : 0;
    let rate = "";
    if (e.phase === "partition" && inputBytes) rate = `, ${round((share * inputBytes) / 1e6 / secs, 1)} MB/s`;
    if (e.phase === "build" && records)
      rate = `, ${Math.round((share * records) / secs).toLocaleString("en-US")} records/s`;
    out(
      `[${round((now - t0) / 1000, 1)}s] ${e.phase}: ${e.done}/${e.total} done${e.failed ? `, ${e.failed} failed` : ""}${rate}`,
    );
  };
}

// ---------------------------------------------------------------------------------------------------------------
// status / versions / pull

export interface DatasetStatus {
  dataset: string;
  activeVersion: string | null;
  previousVersion: string | null;
  fleet: string | null;
  inFlight: Array<{ version: string; status: string; updatedAt: string }>;
  failed: Array<{ version: string; error?: string }>;
  coverage?: unknown;
}

export async function datasetStatus(
  dataset: string,
  o: { aws?: boolean; stack?: string } = {},
): Promise<DatasetStatus> {
  return withTarget(o, async (t) => {
    const ds: DatasetItem | undefined = await getDataset(t.controlTable, dataset);
    const versions = await listVersions(t.controlTable, dataset);
    if (!ds && versions.length === 0)
      throw new NotFoundError(`dataset ${dataset} not found (no load has planned it yet)`);
    const inFlight = versions
      .filter((v) => ["PLANNED", "PARTITIONED", "BUILT", "STAGED", "LOADING"].includes(v.status))
      .map((v) => ({ version: v.version, status: v.status, updatedAt: v.updatedAt }));
    const failed = versions
      .filter((v) => v.status === "FAILED")
      .map((v) => ({ version: v.version, error: v.error ? `${v.error.error}: ${v.error.cause}` : undefined }));
    const out: DatasetStatus = {
      dataset,
      activeVersion: ds?.activeVersion ?? null,
      previousVersion: ds?.previousVersion ?? null,
      fleet: ds?.fleet ?? null,
      inFlight,
      failed,
    };
    if (ds?.fleet) out.coverage = await fleetCoverage(t.controlTable, dataset).catch(() => undefined);
    return out;
  });
}

export async function datasetVersions(dataset: string, o: { aws?: boolean; stack?: string } = {}) {
  return withTarget(o, async (t) => {
    const ds = await getDataset(t.controlTable, dataset);
    const versions = (await listVersions(t.controlTable, dataset)).sort((a, b) =>
      b.createdAt.localeCompare(a.createdAt),
    );
    if (!ds && versions.length === 0) throw new NotFoundError(`dataset ${dataset} not found`);
    return {
      dataset,
      activeVersion: ds?.activeVersion ?? null,
      previousVersion: ds?.previousVersion ?? null,
      versions: versions.map((v) => ({
        version: v.version,
        status: v.status,
        active: v.version === ds?.activeVersion,
        createdAt: v.createdAt,
        updatedAt: v.updatedAt,
        records: v.counts?.records ?? null,
        entries: v.counts?.entries ?? null,
        files: v.counts?.files ?? null,
        bytes: v.bytes ?? null,
        attempts: v.attempts,
        error: v.error ? `${v.error.error}: ${v.error.cause}` : undefined,
      })),
    };
  });
}

/** Download a published version: DIR/manifest.json and DIR/shard=<s>/<file>.sst, every file's sha256 checked. */
export async function pullVersion(
  dataset: string,
  o: { version?: string; to: string; aws?: boolean; stack?: string; progress?: (line: string) => void },
): Promise<{ dataset: string; version: string; dir: string; files: number; bytes: number }> {
  return withTarget(o, async (t) => {
    let version = o.version;
    if (!version) {
      const ds = await getDataset(t.controlTable, dataset);
      if (!ds?.activeVersion) throw new NotFoundError(`dataset ${dataset} has no active version: pass --version`);
      version = ds.activeVersion;
    }
    const manifest: Manifest = await readManifest(t.dataBucket, dataset, version);
    const dir = path.resolve(o.to);
    await mkdir(dir, { recursive: true });
    let bytes = 0;
    for (const f of manifest.files) {
      const dest = path.join(dir, f.path);
      if (!dest.startsWith(dir + path.sep)) throw new CorruptionError(`manifest path ${f.path} leaves ${dir}`);
      await mkdir(path.dirname(dest), { recursive: true });
      const tmp = `${dest}.part`;
      const res = await s3().send(
        new GetObjectCommand({ Bucket: t.dataBucket, Key: versionPrefix(dataset, version) + f.path }),
      );
      const h = createHash("sha256");
      let size = 0;
      const body = res.Body as Readable;
      body.on("data", (c: Buffer) => {
        h.update(c);
        size += c.length;
      });
      await pipeline(body, createWriteStream(tmp));
      const sha = h.digest("hex");
      if (size !== f.bytes || sha !== f.sha256) {
        await rm(tmp, { force: true });
        throw new CorruptionError(
          `s3://${t.dataBucket}/${versionPrefix(dataset, version)}${f.path}: ${size} bytes sha256 ${sha}, manifest says ${f.bytes} bytes sha256 ${f.sha256}`,
          { file: f.path, expected: f.sha256, actual: sha },
        );
      }
      renameSync(tmp, dest);
      bytes += size;
      o.progress?.(`${f.path} ${size} bytes ok`);
    }
    writeFileSync(path.join(dir, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
    return { dataset, version, dir, files: manifest.files.length, bytes };
  });
}

// ---------------------------------------------------------------------------------------------------------------
// commands

const list = (v: string) =>
  v
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
function int(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0)
      throw new ConfigError(`--${name} must be a non-negative integer, got '${v}'`, { field: name });
    return n;
  };
}

function printSummary(s: LoadSummary): void {
  const w = (l: string) => process.stderr.write(`${l}\n`);
  w(`${s.dataset}/${s.version}: ${s.status}${s.alreadyDone ? " (already published: nothing to do)" : ""}`);
  w(`  records in   ${s.records.toLocaleString("en-US")}`);
  w(`  duplicates   ${s.duplicates.toLocaleString("en-US")}`);
  w(`  skipped      ${s.skipped.toLocaleString("en-US")}`);
  w(`  entries      ${s.entries.toLocaleString("en-US")}`);
  w(`  SST files    ${s.files}  (${round(s.bytes / 1e6, 2)} MB)`);
  w(
    `  input        ${round(s.inputBytes / 1e6, 2)} MB in ${s.seconds} s (${s.mbPerSec} MB/s, ${s.recordsPerSec.toLocaleString("en-US")} records/s)`,
  );
  w(
    `  phases (s)   ${Object.entries(s.phases)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}`,
  );
  w(`  manifest     ${s.manifest}`);
  w(`  active       ${s.activeVersion ?? "none"}`);
}

export function registerLoad(program: Command): void {
  program
    .command("load")
    .description(
      "bulk-load a dataset version: plan, partition, build SSTs, publish, activate (or signal a fleet and cut over)",
    )
    .requiredOption("--dataset <name>", "dataset name")
    .requiredOption("--input <path|s3uri>", "local file/directory (uploaded to the data bucket) or s3://bucket/prefix")
    .requiredOption("--format <format>", "jsonl | csv | parquet")
    .requiredOption("--key <cols>", "key column(s), comma-separated", list)
    .option("--value <cols>", "value = JSON object of these columns (default: all but the key)", list)
    .option("--value-raw <col>", "value = the raw bytes of this column")
    .option("--shards <n>", "shards", int("shards"))
    .option("--version <v>", "version name (default: the UTC time, e.g. 20261122T021500Z)")
    .option("--duplicates <policy>", "error | last | first")
    .option("--bad-records <policy>", "fail | skip")
    .option("--max-bad-records <n>", "bad records tolerated with --bad-records skip", int("max-bad-records"))
    .option("--compression <codec>", "SST compression: none | snappy | lz4 | zstd")
    .option("--input-compression <c>", "input compression: none | gzip | zstd (default: from the names)")
    .option("--bloom-bits <n>", "bloom filter bits per key (0 = none)", int("bloom-bits"))
    .option("--target-file-size <bytes>", "SST file size target", int("target-file-size"))
    .option("--fleet <name>", "serving fleet to signal; wait for coverage, then cut over")
    .option("--min-replicas <n>", "hosts LOADED per shard before cutover", int("min-replicas"))
    .option("--keep-versions <n>", "published versions kept", int("keep-versions"))
    .option("--no-csv-split", "do not split large CSV objects by byte range (quoted fields with newlines)")
    .option("--no-wait-hosts", "with --aws and --fleet: return once the fleet is signalled")
    .option("--aws", "use the deployed stack")
    .option("--stack <name>", "deployed stack name (default Ferry)")
    .option("--json", "print one JSON object")
    .action(async (opts) => {
      const json = Boolean(opts.json);
      const progress = (l: string) => process.stderr.write(`${l}\n`);
      try {
        const s = await runLoad({
          dataset: opts.dataset,
          input: opts.input,
          format: opts.format,
          key: opts.key,
          value: opts.value,
          valueRaw: opts.valueRaw,
          shards: opts.shards,
          version: opts.version,
          duplicates: opts.duplicates,
          badRecords: opts.badRecords,
          maxBadRecords: opts.maxBadRecords,
          compression: opts.compression,
          inputCompression: opts.inputCompression,
          bloomBits: opts.bloomBits,
          targetFileSize: opts.targetFileSize,
          fleet: opts.fleet,
          minReplicas: opts.minReplicas,
          keepVersions: opts.keepVersions,
          csvSplit: opts.csvSplit === false ? false : undefined,
          waitHosts: opts.waitHosts,
          aws: opts.aws,
          stack: opts.stack,
          progress,
        });
        if (json) process.stdout.write(`${JSON.stringify(s)}\n`);
        else printSummary(s);
      } catch (err) {
        if (json && err instanceof LoadFailedError)
          process.stdout.write(`${JSON.stringify({ ...err.summary, message: err.message })}\n`);
        throw err;
      }
    });

  program
    .command("status <dataset>")
    .description("active/previous version, versions in flight, per-shard host coverage")
    .option("--aws", "use the deployed stack")
    .option("--stack <name>", "deployed stack name")
    .option("--json", "print one JSON object")
    .action(async (dataset: string, opts) => {
      const s = await datasetStatus(dataset, opts);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(s)}\n`);
        return;
      }
      const w = (l: string) => process.stdout.write(`${l}\n`);
      w(`dataset   ${s.dataset}`);
      w(`active    ${s.activeVersion ?? "none"}`);
      w(`previous  ${s.previousVersion ?? "none"}`);
      w(`fleet     ${s.fleet ?? "none"}`);
      w(`in flight ${s.inFlight.length ? s.inFlight.map((v) => `${v.version} (${v.status})`).join(", ") : "none"}`);
      if (s.failed.length) w(`failed    ${s.failed.map((v) => `${v.version}: ${v.error ?? "?"}`).join("; ")}`);
      const cov = s.coverage as
        | { shards?: Array<{ shard: number; hosts: Array<{ hostId: string; live: boolean; active?: string }> }> }
        | undefined;
      for (const sh of cov?.shards ?? []) {
        w(
          `  shard ${sh.shard}: ${sh.hosts.map((h) => `${h.hostId}${h.live ? "" : " (stale)"} ${h.active ?? "-"}`).join(", ") || "no hosts"}`,
        );
      }
    });

  program
    .command("versions <dataset>")
    .description("every version of a dataset with its status and counts")
    .option("--aws", "use the deployed stack")
    .option("--stack <name>", "deployed stack name")
    .option("--json", "print one JSON object")
    .action(async (dataset: string, opts) => {
      const r = await datasetVersions(dataset, opts);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(r)}\n`);
        return;
      }
      for (const v of r.versions) {
        process.stdout.write(
          `${v.active ? "*" : " "} ${v.version.padEnd(20)} ${v.status.padEnd(11)} ${String(v.entries ?? "-").padStart(12)} entries ${String(v.files ?? "-").padStart(5)} files ${v.createdAt}${v.error ? `  ${v.error}` : ""}\n`,
        );
      }
    });

  program
    .command("pull <dataset>")
    .description("download a published version: DIR/manifest.json and DIR/shard=<s>/<file>.sst (sha256 checked)")
    .option("--version <v>", "version (default: the active one)")
    .requiredOption("--to <dir>", "target directory")
    .option("--aws", "use the deployed stack")
    .option("--stack <name>", "deployed stack name")
    .option("--json", "print one JSON object")
    .action(async (dataset: string, opts) => {
      const r = await pullVersion(dataset, {
        ...opts,
        progress: opts.json ? undefined : (l: string) => process.stderr.write(`${l}\n`),
      });
      if (opts.json) process.stdout.write(`${JSON.stringify(r)}\n`);
      else process.stderr.write(`pulled ${r.dataset}/${r.version}: ${r.files} files, ${r.bytes} bytes to ${r.dir}\n`);
    });
}
