/**
 * bench pipeline: generate ~1 GB of JSONL (~8 M records; `--mb N` for smaller runs), upload it to the local stack,
 * run the synthesized bulk-load state machine plan → publish (→ activate) with the real handlers, and report:
 *
 *   inputMb, seconds (wall time of the execution), mbPerSec,
 *   ferryCpuSec (CPU of this process during the execution: the real handlers + the SDK + the local Step Functions
 *   runner, which is small), emulatorCpuSec (the s3rver / dynalite / fauxqs child processes, from /proc/<pid>/stat,
 *   counted separately: on AWS that work is the services'), mbPerSecPerCore = inputMb ÷ ferryCpuSec,
 *   handlerInitCpuSec (loading the bulk-load handlers' modules before the clock starts, as Lambda's init phase does
 *   once per container: not in ferryCpuSec),
 *   phases: per top-level state {wallSec, ferryCpuSec, emulatorCpuSec, mbPerCpuSec} (CPU sampled when the state is
 *   entered and exited; states run one after another),
 *   and per task type (one partition task and one build task — build + its verification re-read — re-run alone in a
 *   child process): peak RSS (VmHWM), CPU s, MB/s per core of that task.
 *
 * Baseline measured in the same run: reading + JSON.parse of the same input in this process (the floor any JSONL
 * pipeline pays), reported as `baselineParseMbPerSecPerCore` and `ratioToParse`.
 *
 * Options: --mb N (default 1024), --shards N (default 8), --keep (leave the generated file), --profile DIR (the two
 * child tasks write V8 CPU profiles there: `node --cpu-prof`), --map-concurrency N (cap on Map items running at once
 * in this process; default LOCAL_SFN.maxMapConcurrency: in Lambda every item has its own process), --json (no-op:
 * the last line is always the JSON object), --scaled (every task on the large-input path: spills and merge rounds, as at
 * 50 TB; see applyScaled).
 */
import { spawn } from "node:child_process";
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");

function arg(args: string[], name: string, def?: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
}

const CLK_TCK = 100;
/** user+system CPU seconds of a process from /proc/<pid>/stat (0 when it is gone) */
function procCpuSec(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    // fields after the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** Deterministic JSONL: ~128 bytes a record, unique keys (shuffled order). */
export async function generate(file: string, mb: number): Promise<{ records: number; bytes: number }> {
  const target = mb * 1e6;
  const out = createWriteStream(file);
  let bytes = 0;
  let records = 0;
  let s = 0x9e3779b9;
  const rnd = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
  const parts: string[] = [];
  while (bytes < target) {
    const id = `p${(Math.imul(records, 2654435761) >>> 0).toString(36)}-${records.toString(36)}`;
    const line = `{"profile_id":"${id}","country":"${["US", "BR", "IN", "DE", "JP"][rnd() % 5]}","score":${rnd() % 100000},"title":"t${rnd().toString(36)}","watched":${rnd() % 5000},"tags":"${rnd().toString(36)}${rnd().toString(36)}"}\n`;
    parts.push(line);
    bytes += line.length;
    records++;
    if (parts.length >= 4096) {
      if (!out.write(parts.join(""))) await new Promise<void>((r) => out.once("drain", () => r()));
      parts.length = 0;
    }
  }
  out.write(parts.join(""));
  await new Promise<void>((r, j) => out.end((e?: Error) => (e ? j(e) : r())));
  return { records, bytes };
}

/** The baseline: read the file and JSON.parse every line, in this process. */
async function parseBaseline(file: string, limitBytes: number): Promise<{ mb: number; cpuSec: number }> {
  const c0 = process.cpuUsage();
  let bytes = 0;
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of rl) {
    JSON.parse(line);
    bytes += line.length + 1;
    if (bytes >= limitBytes) break;
  }
  rl.close();
  const c = process.cpuUsage(c0);
  return { mb: bytes / 1e6, cpuSec: (c.user + c.system) / 1e6 };
}

/** Child mode: run one partition or build task alone and report its peak RSS and CPU. */
async function runTask(args: string[]): Promise<Record<string, unknown>> {
  const kind = arg(args, "task") as "partition" | "build";
  const dataBucket = arg(args, "bucket") as string;
  const planKey = arg(args, "plan") as string;
  await applyScaled(args);
  // modules are loaded before the clock starts, as in Lambda (a container's init phase loads them once)
  const { loadPlan, stagingKeys } = await import("../core/pipeline/plan.js");
  const { getJson, getJsonl } = await import("../core/manifest/s3.js");
  const { partitionChunk } = await import("../core/pipeline/partition.js");
  const { buildBucket } = await import("../core/pipeline/build.js");
  const { verifyBuiltFile } = await import("../core/pipeline/publish.js");
  const { versionPrefix } = await import("../core/manifest/schema.js");
  const plan = await loadPlan(dataBucket, planKey);
  const c0 = process.cpuUsage();
  const t0 = Date.now();
  let mb = 0;
  const extra: Record<string, number> = {};
  if (kind === "partition") {
    const chunks = await getJsonl<import("../core/pipeline/types.js").Chunk>(
      dataBucket,
      stagingKeys(plan.request.dataset, plan.request.version).chunks,
    );
    const chunk = chunks[0];
    await partitionChunk({ plan, chunk, dataBucket });
    mb = ((chunk.end ?? chunk.size) - (chunk.start ?? 0)) / 1e6;
  } else {
    const k = stagingKeys(plan.request.dataset, plan.request.version);
    const { runKeys } = await getJson<{ runKeys: string[] }>(dataBucket, k.runs);
    const bucket = plan.buckets[0];
    // what the Build task does: build, then verify every file it wrote (re-read + sha256 + SST properties)
    const r = await buildBucket({ plan, bucket, runKeys, dataBucket });
    const prefix = versionPrefix(plan.request.dataset, plan.request.version);
    const v0 = process.cpuUsage();
    for (const f of r.files) await verifyBuiltFile(dataBucket, prefix, f);
    const v = process.cpuUsage(v0);
    extra.verifyCpuSec = (v.user + v.system) / 1e6;
    mb = r.files.reduce((s, f) => s + f.bytes, 0) / 1e6;
  }
  const c = process.cpuUsage(c0);
  const status = readFileSync("/proc/self/status", "utf8");
  const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  return {
    task: kind,
    mb,
    cpuSec: (c.user + c.system) / 1e6,
    wallSec: (Date.now() - t0) / 1000,
    peakRssMb: Math.round(hwm),
    ...extra,
  };
}

/**
 * --scaled: every task takes the large-input path, as at 50 TB (docs/pipeline.md, the scale model) — a Partition
 * memory budget of 1/27 of a chunk (a 6.7 GiB chunk over 256 MiB: ~36 spills) and a merge fan-in of 2 (8 runs merge
 * in two rounds through local disk). Set on the PIPELINE limits of this process (the handlers read them per call) and
 * of the child tasks; bench only.
 */
async function applyScaled(args: string[]): Promise<boolean> {
  if (!args.includes("--scaled")) return false;
  const { PIPELINE } = await import("../core/limits.js");
  const limits = PIPELINE as unknown as Record<string, number>;
  limits.partitionMemoryBytes = Math.ceil(PIPELINE.chunkBytes / 27);
  limits.mergeFanIn = 2;
  return true;
}

function childTask(
  kind: string,
  bucket: string,
  plan: string,
  env: Record<string, string>,
  nodeArgs: string[] = [],
  taskArgs: string[] = [],
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const p = spawn(
      process.execPath,
      [
        ...nodeArgs,
        "--import",
        "tsx",
        path.join(here, "run.ts"),
        "pipeline",
        "--task",
        kind,
        "--bucket",
        bucket,
        "--plan",
        plan,
        ...taskArgs,
      ],
      {
        cwd: root,
        env: { ...process.env, ...env },
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    let out = "";
    p.stdout.on("data", (d) => {
      out += d;
    });
    p.on("error", reject);
    p.on("close", (code) => {
      const last = out.trim().split("\n").pop() ?? "";
      if (code !== 0) return reject(new Error(`${kind} task child exited ${code}`));
      resolve(JSON.parse(last));
    });
  });
}

interface PhaseCost {
  wallSec: number;
  ferryCpuSec: number;
  emulatorCpuSec: number;
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  if (arg(args, "task")) return runTask(args);
  const scaled = await applyScaled(args);
  const mb = Number(arg(args, "mb", "1024"));
  const shards = Number(arg(args, "shards", "8"));
  const profileDir = arg(args, "profile");
  const log = (l: string) => process.stderr.write(`${l}\n`);
  const dir = path.join(root, ".ferry", "bench");
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `pipeline-${mb}mb.jsonl`);
  let gen: { records: number; bytes: number };
  if (existsSync(file) && Math.abs(statSync(file).size - mb * 1e6) < 1e6) {
    gen = { records: -1, bytes: statSync(file).size };
    log(`reusing ${file} (${(gen.bytes / 1e6).toFixed(0)} MB)`);
  } else {
    const t = Date.now();
    gen = await generate(file, mb);
    log(
      `generated ${gen.records.toLocaleString("en-US")} records, ${(gen.bytes / 1e6).toFixed(0)} MB in ${((Date.now() - t) / 1000).toFixed(1)} s`,
    );
  }
  const inputMb = gen.bytes / 1e6;

  const baseline = await parseBaseline(file, Math.min(gen.bytes, 256e6));
  const baselineParseMbPerSecPerCore = baseline.mb / baseline.cpuSec;
  log(
    `baseline: read + JSON.parse ${baseline.mb.toFixed(0)} MB at ${baselineParseMbPerSecPerCore.toFixed(1)} MB/s per core`,
  );

  const { withLocalStack } = await import("../local/stack/index.js");
  const { localDeployment, localBulkLoad, PHASE_OF } = await import("../cli/commands/load.js");
  const { LocalStepFunctions } = await import("../local/sfn/index.js");
  const { getVersion } = await import("../core/control/versions.js");
  const { Upload } = await import("@aws-sdk/lib-storage");
  const { s3 } = await import("../core/aws/clients.js");

  return withLocalStack(async (stack) => {
    const deployment = await localDeployment();
    // the same lookup `ferry load` does: the bulk-load state machine and the Plan function's environment
    const { sm, dataBucket, controlTable } = localBulkLoad(deployment);

    const version = `b${Date.now().toString(36)}`;
    const key = `input/bench/${version}/data.jsonl`;
    let t = Date.now();
    await new Upload({
      client: s3(),
      params: { Bucket: dataBucket, Key: key, Body: createReadStream(file) },
      partSize: 16 * 1024 * 1024,
      queueSize: 4,
    }).done();
    log(`uploaded in ${((Date.now() - t) / 1000).toFixed(1)} s`);

    // CPU per phase: this process (handlers, SDK, the local Step Functions runner) and the emulator processes,
    // sampled when a top-level state is entered and exited (states run one after another; Map items run inside)
    const emuPids = Object.values(stack.emulators).map((e) => e.pid);
    const emuCpu = () => emuPids.reduce((s, p) => s + procCpuSec(p), 0);
    const selfCpu = () => {
      const c = process.cpuUsage();
      return (c.user + c.system) / 1e6;
    };
    const phases: Record<string, PhaseCost> = {};
    const open = new Map<string, { at: number; cpu: number; emu: number }>();
    const mapConcurrency = arg(args, "map-concurrency");
    const runner = new LocalStepFunctions(deployment, {
      waitMs: 1000,
      ...(mapConcurrency ? { maxMapConcurrency: Number(mapConcurrency) } : {}),
    });
    runner.onProgress((e) => {
      if (e.parents.length > 0) {
        if (e.type === "mapProgress" && e.done > 0 && e.done % Math.max(1, Math.ceil(e.total / 4)) === 0)
          log(`  ${e.state}: ${e.done}/${e.total}`);
        return;
      }
      const ph = PHASE_OF[(e as { state?: string }).state ?? ""];
      if (!ph) return;
      if (e.type === "stateEntered") open.set(ph, { at: Date.now(), cpu: selfCpu(), emu: emuCpu() });
      else if (e.type === "stateExited") {
        const o = open.get(ph);
        if (!o) return;
        const p = phases[ph] ?? { wallSec: 0, ferryCpuSec: 0, emulatorCpuSec: 0 };
        phases[ph] = p;
        p.wallSec += (Date.now() - o.at) / 1000;
        p.ferryCpuSec += selfCpu() - o.cpu;
        p.emulatorCpuSec += emuCpu() - o.emu;
        log(`  ${ph}: ${p.wallSec.toFixed(2)} s wall, ${p.ferryCpuSec.toFixed(2)} ferry CPU s`);
      }
    });
    const request = {
      dataset: "bench",
      version,
      input: `s3://${dataBucket}/${key}`,
      format: "jsonl",
      key: ["profile_id"],
      shards,
    };
    // the handlers' modules load before the clock, as in Lambda's init phase (once per container, not per task; the
    // child tasks below do the same): reported apart as handlerInitCpuSec
    const init0 = selfCpu();
    for (const fn of Object.values(deployment.functions)) {
      if (fn.entry?.includes(`${path.sep}functions${path.sep}bulk-load${path.sep}`)) {
        await deployment.loadHandler(fn.logicalId);
      }
    }
    const handlerInitCpuSec = selfCpu() - init0;
    const emu0 = emuCpu();
    const cpu0 = selfCpu();
    t = Date.now();
    const h = await runner.startExecution(sm.arn, { name: `bench-${version}`, input: { request } });
    const rec = await h.done;
    const seconds = (Date.now() - t) / 1000;
    const ferryCpuSec = selfCpu() - cpu0;
    const emulatorCpuSec = emuCpu() - emu0;
    if (rec.status !== "SUCCEEDED") throw new Error(`bench load ${rec.status}: ${rec.error}: ${rec.cause}`);
    const v = await getVersion(controlTable, "bench", version);
    const counts = v?.counts ?? {};
    log(
      `load: ${v?.status}, ${(counts.records ?? 0).toLocaleString("en-US")} records, ${counts.files} SST files in ${seconds.toFixed(1)} s`,
    );

    const planKey = `staging/bench/${version}/plan.json`;
    const prof = profileDir ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(profileDir)}`] : [];
    const taskArgs = scaled ? ["--scaled"] : [];
    const partition = await childTask("partition", dataBucket, planKey, stack.env, prof, taskArgs);
    const build = await childTask("build", dataBucket, planKey, stack.env, prof, taskArgs);

    if (!args.includes("--keep")) rmSync(file, { force: true });
    const round = (x: number) => Math.round(x * 100) / 100;
    const phaseOut: Record<string, PhaseCost & { mbPerCpuSec: number }> = {};
    for (const [k, p] of Object.entries(phases)) {
      phaseOut[k] = {
        wallSec: round(p.wallSec),
        ferryCpuSec: round(p.ferryCpuSec),
        emulatorCpuSec: round(p.emulatorCpuSec),
        mbPerCpuSec: round(inputMb / Math.max(0.001, p.ferryCpuSec)),
      };
    }
    return {
      bench: "pipeline",
      inputMb: round(inputMb),
      records: counts.records,
      files: counts.files,
      sstMb: round((v?.bytes ?? 0) / 1e6),
      shards,
      mapConcurrency: mapConcurrency ? Number(mapConcurrency) : "default",
      scaled,
      seconds: round(seconds),
      mbPerSec: round(inputMb / seconds),
      mbPerSecPerCore: round(inputMb / ferryCpuSec),
      ferryCpuSec: round(ferryCpuSec),
      emulatorCpuSec: round(emulatorCpuSec),
      handlerInitCpuSec: round(handlerInitCpuSec),
      phases: phaseOut,
      partitionTask: {
        ...partition,
        mbPerSecPerCore: round(Number(partition.mb) / Number(partition.cpuSec)),
      },
      buildTask: { ...build, sstMbPerSecPerCore: round(Number(build.mb) / Number(build.cpuSec)) },
      baselineParseMbPerSecPerCore: round(baselineParseMbPerSecPerCore),
      ratioToParse: round(inputMb / ferryCpuSec / baselineParseMbPerSecPerCore),
      cores: os.cpus().length,
      loadAvg: os.loadavg().map(round),
    };
  });
}
