/**
 * A serving host = the agent (host/agent) + a store backend (host/store) + the KV server (host/server).
 *
 * Library API (used by `ferry host`, `ferry demo` and tests):
 *   const h = await startHost({ fleet, shards: [0, 1], dataDir, mode: "child" });   // or mode "inProcess" (default)
 *   h.endpoint  // http://127.0.0.1:PORT      h.hostId
 *   await h.stop();   // graceful: abandon the current download cleanly, deregister, close
 *   await h.kill();   // crash: SIGKILL (child) / stop without deregistering (in-process)
 *
 * Run directly (`node --import tsx host/main.ts --fleet F --shards 0-3 --data-dir DIR [--port P] [--store sst]
 * [--max-download-mbps N] [--table T] [--bucket B] [--host-id ID]`): prints one JSON line
 * `{"endpoint", "hostId", "pid", "store"}` on stdout when serving, logs on stderr, stops on SIGINT/SIGTERM.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ENV, requireEnv } from "../core/env.js";
import { ConfigError, EnvironmentError } from "../core/errors.js";
import { HostAgent } from "./agent/agent.js";
import { createKvServer } from "./server/kv-server.js";
import { openBackend } from "./store/index.js";

export interface HostOptions {
  fleet: string;
  shards: number[];
  dataDir: string;
  /** 0 / absent = any free port */
  port?: number;
  /** bind address, default 127.0.0.1 */
  bind?: string;
  /** store backend; default: rocksdb when librocksdb loads, else sst */
  store?: "rocksdb" | "sst";
  /** megabits per second, 0 = no cap */
  maxDownloadMbps?: number;
  /** control table (default FERRY_CONTROL_TABLE) */
  table?: string;
  /** data bucket used when a directive names none (default FERRY_DATA_BUCKET, optional) */
  bucket?: string;
  hostId?: string;
  pollIntervalMs?: number;
  heartbeatIntervalMs?: number;
  keepVersions?: number;
  downloadConcurrency?: number;
  downloadPartBytes?: number;
  /** "inProcess" (default) or "child" (a separate node process: kill() is a real SIGKILL) */
  mode?: "inProcess" | "child";
  /** child mode: extra environment (the parent's environment is inherited) */
  env?: Record<string, string>;
  /** log lines (in-process: agent logs; child: the child's stderr lines). Default: in-process → stderr; child → dropped */
  log?: (line: string) => void;
}

export interface HostHandle {
  endpoint: string;
  hostId: string;
  store: string;
  /** child mode: the process id */
  pid?: number;
  /** in-process mode: the agent (status(), getActive()) */
  agent?: HostAgent;
  /** graceful stop (deregisters) */
  stop(): Promise<void>;
  /** abrupt stop: SIGKILL for a child; in-process: stop without deregistering */
  kill(): Promise<void>;
}

/** "0-3", "0,2,5", "0-3,8" → sorted unique shard numbers */
export function parseShards(spec: string): number[] {
  const out = new Set<number>();
  for (const part of spec.split(",").map((s) => s.trim())) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m)
      throw new ConfigError(`--shards ${JSON.stringify(spec)}: use a range 0-3 or a list 0,2,5`, { field: "shards" });
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new ConfigError(`--shards ${part}: the range is backwards`, { field: "shards" });
    if (b - a > 65536) throw new ConfigError(`--shards ${part}: too many shards`, { field: "shards" });
    for (let s = a; s <= b; s++) out.add(s);
  }
  if (out.size === 0) throw new ConfigError("--shards: no shards given", { field: "shards" });
  return [...out].sort((x, y) => x - y);
}

/**
 * Spread `shards` over `hosts` so every shard has `replicas` distinct owners (replicas ≤ hosts): shard s goes to hosts
 * s, s+1, … (mod hosts). E.g. 3 hosts, 8 shards, 2 replicas → [[0,2,3,5,6],[0,1,3,4,6,7],[1,2,4,5,7]].
 */
export function assignShards(hosts: number, shards: number, replicas: number): number[][] {
  if (hosts < 1 || shards < 1 || replicas < 1) throw new ConfigError("hosts, shards and replicas must be at least 1");
  if (replicas > hosts) {
    throw new ConfigError(`${replicas} replicas need at least ${replicas} hosts (got ${hosts})`, { field: "replicas" });
  }
  const out: number[][] = Array.from({ length: hosts }, () => []);
  for (let s = 0; s < shards; s++) for (let r = 0; r < replicas; r++) out[(s + r) % hosts].push(s);
  return out.map((l) => l.sort((a, b) => a - b));
}

async function startInProcess(o: HostOptions): Promise<HostHandle> {
  const backend = openBackend(o.store);
  const table = o.table ?? requireEnv(ENV.controlTable);
  const log = o.log;
  const agent = new HostAgent({
    fleet: o.fleet,
    shards: o.shards,
    dataDir: o.dataDir,
    table,
    bucket: o.bucket ?? process.env[ENV.dataBucket],
    backend,
    hostId: o.hostId,
    maxDownloadMbps: o.maxDownloadMbps,
    pollIntervalMs: o.pollIntervalMs,
    heartbeatIntervalMs: o.heartbeatIntervalMs,
    keepVersions: o.keepVersions,
    downloadConcurrency: o.downloadConcurrency,
    downloadPartBytes: o.downloadPartBytes,
    log: log ? (msg, fields) => log(JSON.stringify({ t: new Date().toISOString(), msg, ...fields })) : undefined,
  });
  const server = await createKvServer({ port: o.port ?? 0, host: o.bind ?? "127.0.0.1", resolver: agent });
  try {
    await agent.start(server.url);
  } catch (err) {
    await agent.stop({ deregister: false }).catch(() => {});
    await server.close();
    throw err;
  }
  let closed = false;
  const close = async (deregister: boolean) => {
    if (closed) return;
    closed = true;
    await agent.stop({ deregister });
    await server.close();
  };
  return {
    endpoint: server.url,
    hostId: agent.hostId,
    store: backend.name,
    agent,
    stop: () => close(true),
    kill: () => close(false),
  };
}

const HERE = fileURLToPath(import.meta.url);

function childArgs(o: HostOptions): string[] {
  const a = ["--fleet", o.fleet, "--shards", o.shards.join(","), "--data-dir", resolve(o.dataDir)];
  const opt = (flag: string, v: unknown) => {
    if (v !== undefined && v !== null && v !== "") a.push(flag, String(v));
  };
  opt("--port", o.port);
  opt("--bind", o.bind);
  opt("--store", o.store);
  opt("--max-download-mbps", o.maxDownloadMbps);
  opt("--table", o.table);
  opt("--bucket", o.bucket);
  opt("--host-id", o.hostId);
  opt("--poll-interval-ms", o.pollIntervalMs);
  opt("--heartbeat-interval-ms", o.heartbeatIntervalMs);
  opt("--keep-versions", o.keepVersions);
  opt("--download-concurrency", o.downloadConcurrency);
  opt("--download-part-bytes", o.downloadPartBytes);
  return a;
}

async function startChild(o: HostOptions): Promise<HostHandle> {
  const tsx = import.meta.resolve("tsx"); // resolved here: the child may run from any working directory
  const child: ChildProcess = spawn(process.execPath, ["--import", tsx, HERE, ...childArgs(o)], {
    env: { ...process.env, ...o.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const tail: string[] = [];
  let errBuf = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    errBuf += chunk;
    let i = errBuf.indexOf("\n");
    while (i >= 0) {
      const line = errBuf.slice(0, i);
      errBuf = errBuf.slice(i + 1);
      tail.push(line);
      if (tail.length > 20) tail.shift();
      o.log?.(line);
      i = errBuf.indexOf("\n");
    }
  });
  const exited = new Promise<number | null>((res) => child.once("exit", (code, sig) => res(code ?? (sig ? -1 : null))));
  const ready = await new Promise<{ endpoint: string; hostId: string; store: string }>((res, rej) => {
    let out = "";
    child.stdout?.setEncoding("utf8");
    const onData = (chunk: string) => {
      out += chunk;
      const nl = out.indexOf("\n");
      if (nl >= 0) {
        child.stdout?.off("data", onData);
        try {
          res(JSON.parse(out.slice(0, nl)));
        } catch {
          rej(new EnvironmentError(`host child printed ${JSON.stringify(out.slice(0, nl))} instead of its endpoint`));
        }
      }
    };
    child.stdout?.on("data", onData);
    void exited.then((code) =>
      rej(new EnvironmentError(`host child exited (${code}) before serving:\n${tail.join("\n")}`)),
    );
  });
  child.stdout?.resume();
  const wait = async (ms: number) =>
    Promise.race([exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), ms).unref())]);
  return {
    endpoint: ready.endpoint,
    hostId: ready.hostId,
    store: ready.store,
    pid: child.pid,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      if ((await wait(15_000)) === "timeout") {
        child.kill("SIGKILL");
        await exited;
      }
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGKILL");
      await exited;
    },
  };
}

/** Start a serving host in this process or as a child process. Resolves once it serves (endpoint known). */
export function startHost(o: HostOptions): Promise<HostHandle> {
  if (!o.fleet) throw new ConfigError("a host needs a fleet (--fleet)", { field: "fleet" });
  if (!o.shards.length) throw new ConfigError("a host needs shards (--shards)", { field: "shards" });
  return o.mode === "child" ? startChild(o) : startInProcess(o);
}

/**
 * Run a host until SIGINT/SIGTERM (the `ferry host` command and the child entry point): print the ready line, stop
 * gracefully on a signal. Resolves after the stop.
 */
export async function runHost(
  o: HostOptions,
  print: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
): Promise<void> {
  const h = await startInProcess({ ...o, mode: "inProcess", log: o.log ?? ((l) => process.stderr.write(`${l}\n`)) });
  print(JSON.stringify({ endpoint: h.endpoint, hostId: h.hostId, pid: process.pid, store: h.store }));
  await new Promise<void>((res) => {
    const onSignal = () => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      res();
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
  await h.stop();
}

function parseArgv(argv: string[]): HostOptions {
  const m = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith("--") || argv[i + 1] === undefined) throw new ConfigError(`bad argument ${argv[i]}`);
    m.set(argv[i].slice(2), argv[i + 1]);
  }
  const num = (k: string) => (m.has(k) ? Number(m.get(k)) : undefined);
  const need = (k: string) => {
    const v = m.get(k);
    if (!v) throw new ConfigError(`--${k} is required`, { field: k });
    return v;
  };
  return {
    fleet: need("fleet"),
    shards: parseShards(need("shards")),
    dataDir: need("data-dir"),
    port: num("port"),
    bind: m.get("bind"),
    store: m.get("store") as HostOptions["store"],
    maxDownloadMbps: num("max-download-mbps"),
    table: m.get("table"),
    bucket: m.get("bucket"),
    hostId: m.get("host-id"),
    pollIntervalMs: num("poll-interval-ms"),
    heartbeatIntervalMs: num("heartbeat-interval-ms"),
    keepVersions: num("keep-versions"),
    downloadConcurrency: num("download-concurrency"),
    downloadPartBytes: num("download-part-bytes"),
  };
}

if (process.argv[1] && resolve(process.argv[1]) === HERE) {
  runHost(parseArgv(process.argv.slice(2))).then(
    () => process.exit(0),
    (err) => {
      process.stderr.write(`ferry host: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
