/**
 * `npm run bench -- serving [--records N] [--value-bytes B] [--max-download-mbps M] [--phase-seconds S]
 *                            [--put-latency-records N] [--concurrency C] [--quick]`
 *
 * The SST path against the PUT path: the same records (random key order) made servable on one host
 *   (a) by ferry: SSTs built by core/sst and staged in the local S3 (Lambda's work: timed, not host cost), then on the
 *       host: parallel ranged GETs to files + fdatasync, sha256/size verified against the build output, RocksDB
 *       IngestExternalFile with move_files;
 *   (b) through the write path of an online store: the same records written into the same kind of RocksDB (same
 *       options: librocksdb defaults + LRU cache + 10-bit bloom) with WriteBatches of 1,000, WAL on, then a flush
 *       and waiting until no flush/compaction is pending or running.
 * Host cost of each = process CPU seconds (RocksDB's background threads are in this process) and bytes written
 * (/proc/self/io write_bytes). The cost runs have no concurrent readers; the latency runs repeat the loads with a
 * reader process (closed loop, keep-alive HTTP) hitting the KV server of this process.
 * The record generator's own CPU (measured alone) is subtracted from the PUT path: a real store would pay request
 * parsing there instead, so this errs in PUT's favour.
 */
import { type ChildProcess, fork } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { open } from "node:fs/promises";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { s3 } from "../core/aws/clients.js";
import { getRange, s3MultipartSink } from "../core/aws/s3.js";
import { CorruptionError } from "../core/errors.js";
import { HOST, UNITS } from "../core/limits.js";
import { SstFileSetWriter } from "../core/sst/index.js";
import { applyEnv, startLocalStack } from "../local/stack/index.js";
import { createKvServer, StaticResolver } from "../host/server/index.js";
import { openBackend, RocksDb } from "../host/store/index.js";
import { RocksVersionStore } from "../host/store/rocksdb.js";
import type { BackendName, VersionStore } from "../host/store/types.js";

const SELF = fileURLToPath(import.meta.url);
const DATASET = "bench";
const BUCKET = "ferry-bench-serving";

// ------------------------------------------------------------------------------------------------ records

const KEY_DIGITS = 15;

/** 16-byte key "u" + 15 digits; numeric order = byte order */
function recordKey(i: number): Buffer {
  return Buffer.from(`u${String(i).padStart(KEY_DIGITS, "0")}`, "latin1");
}

/** a value of `n` bytes that compresses about 2x (JSON-ish head, repeating tail) */
function recordValue(i: number, n: number): Buffer {
  const head = `{"id":${i},"score":${(i * 2654435761) % 100000},"name":"user-${i}","tags":["a","b"],"pad":"`;
  const b = Buffer.allocUnsafe(n);
  const w = b.write(head.slice(0, n), 0, "latin1");
  let x = (i * 2246822519) >>> 0;
  for (let j = w; j < n; j++) {
    // half random letters, half repeats: ~2x with snappy
    if ((j & 1) === 0) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      b[j] = 97 + ((x >>> 16) % 26);
    } else b[j] = 120;
  }
  return b;
}

/** seeded Fisher-Yates permutation of 0..n-1: the random arrival order of the records */
function permutation(n: number, seed = 42): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  let s = seed >>> 0;
  for (let i = n - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = Math.floor((s / 2 ** 32) * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

// ------------------------------------------------------------------------------------------------ measuring

interface Io {
  write_bytes: number;
  wchar: number;
}
function readIo(): Io | undefined {
  try {
    const o: Record<string, number> = {};
    for (const line of readFileSync("/proc/self/io", "utf8").trim().split("\n")) {
      const [k, v] = line.split(": ");
      o[k] = Number(v);
    }
    return { write_bytes: o.write_bytes, wchar: o.wchar };
  } catch {
    return undefined;
  }
}

interface Cost {
  wallSec: number;
  cpuSec: number;
  bytesWritten: number;
  bytesSource: string;
}

async function measured<T>(fn: () => Promise<T>): Promise<{ cost: Cost; result: T }> {
  const io0 = readIo();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await fn();
  const wallSec = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const io1 = readIo();
  const cost: Cost = {
    wallSec,
    cpuSec: (c.user + c.system) / 1e6,
    bytesWritten: io0 && io1 ? io1.write_bytes - io0.write_bytes : -1,
    bytesSource: io0 ? "/proc/self/io write_bytes" : "unavailable",
  };
  return { cost, result };
}

function duBytes(dir: string): number {
  let total = 0;
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else total += st.size;
    }
  };
  try {
    walk(dir);
  } catch {}
  return total;
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;
const r1 = (x: number) => Math.round(x * 10) / 10;

// ------------------------------------------------------------------------------------------------ SST path

interface StagedFile {
  key: string;
  bytes: number;
  sha256: string;
  entries: number;
}

/** Lambda's side: sort the arrival order, write SSTs straight to S3 (multipart), like the Build task. */
async function buildAndStage(
  perm: Uint32Array,
  valueBytes: number,
  version: string,
  targetFileSize: number,
): Promise<StagedFile[]> {
  const sorted = Uint32Array.from(perm).sort(); // ascending index = ascending key bytes
  const keys: string[] = [];
  const w = new SstFileSetWriter(
    (index) => {
      const key = `versions/${DATASET}/${version}/shard=0/000-${String(index).padStart(4, "0")}.sst`;
      keys.push(key);
      return s3MultipartSink(BUCKET, key, { partSize: 8 * UNITS.MiB, concurrency: 4 });
    },
    { compression: "snappy", bloomBitsPerKey: 10, targetFileSize },
  );
  try {
    for (let n = 0; n < sorted.length; n++) {
      const i = sorted[n];
      const p = w.add(recordKey(i), recordValue(i, valueBytes));
      if (p) await p;
    }
    const infos = await w.finish();
    return infos.map((f, idx) => ({ key: keys[idx], bytes: f.bytes, sha256: f.sha256, entries: f.entries }));
  } catch (e) {
    await w.abort(e);
    throw e;
  }
}

class Limiter {
  private next = 0;
  constructor(private readonly bytesPerSec: number) {}
  async take(n: number): Promise<void> {
    if (!(this.bytesPerSec > 0)) return;
    const now = performance.now();
    const start = Math.max(now, this.next);
    this.next = start + (n / this.bytesPerSec) * 1000;
    const wait = start - now;
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
  }
}

async function sha256OfFile(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** The host's side: ranged GETs into files (fdatasync), verify size + sha256, ingest with move_files. */
async function hostLoad(
  files: StagedFile[],
  vdir: string,
  backend: BackendName,
  version: string,
  maxDownloadMbps: number,
  concurrency: number = HOST.downloadConcurrency,
): Promise<{ store: VersionStore; phases: Record<string, number>; bytes: number }> {
  const dl = join(vdir, "download");
  mkdirSync(dl, { recursive: true });
  const limiter = new Limiter(maxDownloadMbps > 0 ? maxDownloadMbps * 125_000 : 0);
  const t0 = performance.now();
  const paths = files.map((f) => join(dl, f.key.split("/").pop()!));
  const handles = await Promise.all(paths.map((p) => open(p, "w")));
  const parts: { fi: number; start: number; end: number }[] = [];
  files.forEach((f, fi) => {
    for (let s = 0; s < f.bytes; s += HOST.downloadPartBytes) {
      parts.push({ fi, start: s, end: Math.min(f.bytes, s + HOST.downloadPartBytes) });
    }
  });
  let next = 0;
  const worker = async () => {
    while (next < parts.length) {
      const p = parts[next++];
      await limiter.take(p.end - p.start);
      const bytes = await getRange(BUCKET, files[p.fi].key, p.start, p.end);
      let off = 0;
      while (off < bytes.length) {
        const { bytesWritten } = await handles[p.fi].write(bytes, off, bytes.length - off, p.start + off);
        off += bytesWritten;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  for (const h of handles) {
    await h.datasync();
    await h.close();
  }
  const t1 = performance.now();
  for (let i = 0; i < files.length; i++) {
    const size = statSync(paths[i]).size;
    const sha = await sha256OfFile(paths[i]);
    if (size !== files[i].bytes || sha !== files[i].sha256) {
      throw new CorruptionError(`${paths[i]}: size/sha256 mismatch`, { expected: files[i].sha256, actual: sha });
    }
  }
  const t2 = performance.now();
  const store = await openBackend(backend).open(join(vdir, "db"), DATASET, version);
  await store.ingest(paths);
  const t3 = performance.now();
  return {
    store,
    bytes: files.reduce((s, f) => s + f.bytes, 0),
    phases: { downloadSec: r3((t1 - t0) / 1000), verifySec: r3((t2 - t1) / 1000), ingestSec: r3((t3 - t2) / 1000) },
  };
}

// ------------------------------------------------------------------------------------------------ PUT path

async function putLoad(
  db: RocksDb,
  perm: Uint32Array,
  valueBytes: number,
  batchSize: number,
): Promise<{ writeSec: number; flushSec: number; settleSec: number }> {
  const t0 = performance.now();
  const batch = db.newBatch();
  try {
    for (let n = 0; n < perm.length; n++) {
      const i = perm[n];
      batch.put(recordKey(i), recordValue(i, valueBytes));
      if (batch.count >= batchSize || n === perm.length - 1) {
        await db.write(batch); // WAL on, RocksDB defaults
        batch.clear();
      }
    }
  } finally {
    batch.destroy();
  }
  const t1 = performance.now();
  await db.flush();
  const t2 = performance.now();
  await db.waitForCompactions({ pollMs: 100, stableChecks: 5, timeoutMs: 1_800_000 });
  const t3 = performance.now();
  return { writeSec: r3((t1 - t0) / 1000), flushSec: r3((t2 - t1) / 1000), settleSec: r3((t3 - t2) / 1000) };
}

/** the generator's own CPU for the same records, to subtract from the PUT path */
function generatorCost(perm: Uint32Array, valueBytes: number): number {
  const c0 = process.cpuUsage();
  let sink = 0;
  for (let n = 0; n < perm.length; n++) {
    const i = perm[n];
    sink += recordKey(i).length + recordValue(i, valueBytes)[3];
  }
  const c = process.cpuUsage(c0);
  if (sink === -1) console.error(sink);
  return (c.user + c.system) / 1e6;
}

// ------------------------------------------------------------------------------------------------ reader process

interface LatencyStats {
  requests: number;
  errors: number;
  statuses: Record<string, number>;
  seconds: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

function summarize(lat: number[], seconds: number, errors: number, statuses: Record<string, number>): LatencyStats {
  const s = Float64Array.from(lat).sort();
  const q = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : Number.NaN);
  return {
    requests: s.length,
    errors,
    statuses,
    seconds: r3(seconds),
    rps: Math.round(s.length / Math.max(seconds, 1e-9)),
    p50Ms: r3(q(0.5)),
    p99Ms: r3(q(0.99)),
    p999Ms: r3(q(0.999)),
    maxMs: r3(s.length ? s[s.length - 1] : Number.NaN),
  };
}

/** child process: closed-loop GETs against the KV server; "take" returns the stats since the last take */
function readerMain(): void {
  let lat: number[] = [];
  let errors = 0;
  let statuses: Record<string, number> = {};
  let since = performance.now();
  let running = false;
  process.on("message", (m: { cmd: string; url?: string; keys?: string[]; concurrency?: number }) => {
    if (m.cmd === "start") {
      const agent = new Agent({ keepAlive: true, maxSockets: m.concurrency });
      const keys = m.keys!;
      running = true;
      let k = 0;
      const one = (): void => {
        if (!running) return;
        const key = keys[k++ % keys.length];
        const t = performance.now();
        const req = request(`${m.url}/v1/datasets/${DATASET}/keys/${key}`, { agent }, (res) => {
          res.on("data", () => {});
          res.on("end", () => {
            // a request counts in the window it started in: one that straddles a take() is dropped
            if (t >= since) {
              lat.push(performance.now() - t);
              statuses[res.statusCode ?? 0] = (statuses[res.statusCode ?? 0] ?? 0) + 1;
            }
            one();
          });
        });
        req.on("error", () => {
          errors++;
          setTimeout(one, 10);
        });
        req.end();
      };
      since = performance.now();
      for (let i = 0; i < m.concurrency!; i++) one();
      process.send!({ cmd: "started" });
    } else if (m.cmd === "take") {
      const now = performance.now();
      process.send!({ cmd: "stats", stats: summarize(lat, (now - since) / 1000, errors, statuses) });
      lat = [];
      errors = 0;
      statuses = {};
      since = now;
    } else if (m.cmd === "stop") {
      running = false;
      process.exit(0);
    }
  });
}

class Reader {
  private constructor(private readonly child: ChildProcess) {}
  static async start(url: string, keys: string[], concurrency: number): Promise<Reader> {
    const child = fork(SELF, [], {
      execArgv: ["--import", "tsx"],
      env: { ...process.env, FERRY_SERVING_BENCH_READER: "1" },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const r = new Reader(child);
    await r.ask({ cmd: "start", url, keys, concurrency }, "started");
    return r;
  }
  private ask(msg: object, reply: string): Promise<{ stats?: LatencyStats }> {
    return new Promise((res, rej) => {
      const onExit = (c: number | null) => rej(new Error(`reader exited (${c})`));
      const on = (m: { cmd: string; stats?: LatencyStats }) => {
        if (m.cmd === reply) {
          this.child.off("message", on);
          this.child.off("exit", onExit);
          res(m);
        }
      };
      this.child.on("message", on);
      this.child.once("exit", onExit);
      this.child.send(msg);
    });
  }
  async take(): Promise<LatencyStats> {
    return (await this.ask({ cmd: "take" }, "stats")).stats!;
  }
  async stop(): Promise<void> {
    const exited = new Promise((r) => this.child.once("exit", r));
    this.child.send({ cmd: "stop" });
    await exited;
  }
}

/** in-process point reads (no HTTP): gets per second and p99 of single gets over `keys` */
function directGets(store: VersionStore, keys: Buffer[], rounds: number): { getsPerSec: number; p99Us: number } {
  const lat = new Float64Array(rounds);
  const t0 = performance.now();
  let found = 0;
  for (let n = 0; n < rounds; n++) {
    const t = performance.now();
    if (store.getSync(keys[n % keys.length]) !== undefined) found++;
    lat[n] = performance.now() - t;
  }
  const sec = (performance.now() - t0) / 1000;
  if (found !== rounds) throw new Error(`direct gets: ${rounds - found} of ${rounds} keys missing`);
  lat.sort();
  return { getsPerSec: Math.round(rounds / sec), p99Us: r1(lat[Math.floor(rounds * 0.99)] * 1000) };
}

// ------------------------------------------------------------------------------------------------ main

function arg(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(args[i + 1]);
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${name} needs a number`);
  return v;
}

const log = (s: string) => process.stderr.write(`[bench serving] ${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const quick = args.includes("--quick");
  const records = arg(args, "records", quick ? 200_000 : 2_000_000);
  const valueBytes = arg(args, "value-bytes", 100);
  const maxMbps = arg(args, "max-download-mbps", 200);
  const loadingConcurrency = arg(args, "loading-download-concurrency", 2);
  const phaseSec = arg(args, "phase-seconds", quick ? 3 : 5);
  const putLatencyRecords = arg(args, "put-latency-records", records);
  const concurrency = arg(args, "concurrency", 4);
  const targetFileSize = arg(args, "target-file-size", 64 * UNITS.MiB);
  const batchSize = 1000;

  const root = mkdtempSync(join(tmpdir(), "ferry-bench-serving-"));
  const stack = await startLocalStack({ stateDir: join(root, "stack") });
  applyEnv(stack.env);
  const out: Record<string, unknown> = { bench: "serving" };
  const stores: VersionStore[] = [];
  let reader: Reader | undefined;
  let server: Awaited<ReturnType<typeof createKvServer>> | undefined;
  try {
    await s3().send(new CreateBucketCommand({ Bucket: BUCKET }));
    const rocksOk = openBackend().name === "rocksdb";
    if (!rocksOk) throw new Error("bench serving needs librocksdb (the PUT path is RocksDB's write API)");
    log(`${records} records, ${valueBytes}-byte values, keys 16 bytes; root ${root}`);
    const perm = permutation(records);

    // (a) SST path ---------------------------------------------------------------------------------
    log("build + stage SSTs (Lambda's work, not host cost)");
    const build = await measured(() => buildAndStage(perm, valueBytes, "v1", targetFileSize));
    const staged = build.result;
    const sstBytes = staged.reduce((s, f) => s + f.bytes, 0);
    log(`  ${staged.length} files, ${r1(sstBytes / UNITS.MiB)} MiB in ${r3(build.cost.wallSec)} s`);

    log("host: download + verify + ingest (no readers, no cap)");
    const load = await measured(() => hostLoad(staged, join(root, "v1"), "rocksdb", "v1", 0));
    const v1 = load.result.store;
    stores.push(v1);
    const sstCost = load.cost;
    log(`  ${r3(sstCost.wallSec)} s wall, ${r3(sstCost.cpuSec)} s CPU, ${JSON.stringify(load.result.phases)}`);

    // (b) PUT path ---------------------------------------------------------------------------------
    const genCpu = generatorCost(perm, valueBytes);
    log(
      `PUT path: WriteBatch(${batchSize}) + WAL, flush, until compactions settle (generator alone: ${r3(genCpu)} s CPU)`,
    );
    const putDir = join(root, "put1");
    const put = await measured(async () => {
      const db = await RocksDb.open(putDir);
      try {
        return await putLoad(db, perm, valueBytes, batchSize);
      } finally {
        await db.close();
      }
    });
    const putDu = duBytes(putDir);
    rmSync(putDir, { recursive: true, force: true });
    const putCpu = put.cost.cpuSec - genCpu;
    log(
      `  ${r3(put.cost.wallSec)} s wall, ${r3(put.cost.cpuSec)} s CPU (${r3(putCpu)} without the generator) ${JSON.stringify(put.result)}`,
    );

    Object.assign(out, {
      sstHostCpuSec: r3(sstCost.cpuSec),
      putHostCpuSec: r3(putCpu),
      ratio: r1(putCpu / sstCost.cpuSec),
      sstWallSec: r3(sstCost.wallSec),
      putWallSec: r3(put.cost.wallSec),
      wallRatio: r1(put.cost.wallSec / sstCost.wallSec),
      sstBytesWritten: sstCost.bytesWritten,
      putBytesWritten: put.cost.bytesWritten,
      bytesWrittenRatio: r1(put.cost.bytesWritten / sstCost.bytesWritten),
      loadMbPerSec: r1(sstBytes / UNITS.MiB / sstCost.wallSec),
      endToEndSec: r3(build.cost.wallSec + sstCost.wallSec),
      buildStageSec: r3(build.cost.wallSec),
      buildStageCpuSec: r3(build.cost.cpuSec),
      records,
      valueBytes,
      sstFiles: staged.length,
      sstBytes,
      sstPhases: load.result.phases,
      putPhases: put.result,
      putGeneratorCpuSec: r3(genCpu),
      putCpuSecIncludingGenerator: r3(put.cost.cpuSec),
      putDbBytesAtEnd: putDu,
      bytesWrittenSource: sstCost.bytesSource,
    });

    // latency --------------------------------------------------------------------------------------
    const resolver = new StaticResolver("bench", "bench", [0]);
    resolver.setActive(DATASET, { version: "v1", shards: [0], shardCount: 1, store: v1 });
    server = await createKvServer({ resolver });
    const sample: string[] = [];
    for (let n = 0; n < 20_000; n++) sample.push(recordKey(perm[(n * 7919) % records]).toString("latin1"));
    reader = await Reader.start(server.url, sample, concurrency);
    await sleep(500);
    await reader.take();

    const sampleBufs = sample.map((k) => Buffer.from(k, "latin1"));
    // in-process gets first (they block the event loop, so no HTTP phase may overlap them)
    directGets(v1, sampleBufs, 20_000); // warm the block cache
    const directRocks = directGets(v1, sampleBufs, 100_000);
    /** reads for phaseSec with nothing else going on (discarding what the reader saw before) */
    const idlePhase = async (): Promise<LatencyStats> => {
      await reader!.take();
      await sleep(phaseSec * 1000);
      return reader!.take();
    };

    log(
      `idle reads on the rocksdb store (${phaseSec} s), then reads while the next version loads via SSTs (cap ${maxMbps} Mbit/s)`,
    );
    const idleRocks = await idlePhase();
    await reader.take();
    const load2 = await hostLoad(staged, join(root, "v2"), "rocksdb", "v2", maxMbps, loadingConcurrency);
    const loadingStats = await reader.take();
    stores.push(load2.store);
    resolver.setActive(DATASET, { version: "v2", shards: [0], shardCount: 1, store: load2.store });
    await v1.destroy();

    log("sst backend: load, then idle reads");
    const load3 = await hostLoad(staged, join(root, "v3"), "sst", "v3", 0);
    stores.push(load3.store);
    directGets(load3.store, sampleBufs, 20_000);
    const directSst = directGets(load3.store, sampleBufs, 100_000);
    resolver.setActive(DATASET, { version: "v3", shards: [0], shardCount: 1, store: load3.store });
    const idleSst = await idlePhase();
    resolver.setActive(DATASET, { version: "v2", shards: [0], shardCount: 1, store: load2.store });
    await load3.store.destroy();

    log(`idle reads, then reads while the PUT path loads ${putLatencyRecords} records into the store being read`);
    const put2Dir = join(root, "put2");
    // an online store: the same RocksDb options as the PUT cost run (auto compactions on), served like a version
    const db2 = await RocksDb.open(put2Dir);
    const putStore = new RocksVersionStore(DATASET, "put", put2Dir, db2);
    stores.push(putStore);
    const idleBeforePut = await idlePhase();
    resolver.setActive(DATASET, { version: "put", shards: [0], shardCount: 1, store: putStore });
    await reader.take();
    const putPerm = putLatencyRecords < records ? perm.subarray(0, putLatencyRecords) : perm;
    const t0 = performance.now();
    await putLoad(db2, putPerm, valueBytes, batchSize);
    const putLoadingSec = (performance.now() - t0) / 1000;
    const putLoadingStats = await reader.take();
    resolver.setActive(DATASET, { version: "v2", shards: [0], shardCount: 1, store: load2.store });
    await sleep(100);
    await putStore.destroy();

    Object.assign(out, {
      getP99MsIdle: idleRocks.p99Ms,
      getP99MsLoading: loadingStats.p99Ms,
      getP99MsPutLoading: putLoadingStats.p99Ms,
      getP50MsIdle: idleRocks.p50Ms,
      getP50MsLoading: loadingStats.p50Ms,
      getP50MsPutLoading: putLoadingStats.p50Ms,
      maxDownloadMbps: maxMbps,
      loadingDownloadConcurrency: loadingConcurrency,
      loadingWallSec: r3(loadingStats.seconds),
      loadingPhases: load2.phases,
      putLoadingWallSec: r3(putLoadingSec),
      readerConcurrency: concurrency,
      idle: { rocksdb: idleRocks, sst: idleSst, rocksdbBeforePut: idleBeforePut },
      getP99MsIdleBeforePut: idleBeforePut.p99Ms,
      idleReqPerSec: { rocksdb: idleRocks.rps, sst: idleSst.rps },
      idleP50Ms: { rocksdb: idleRocks.p50Ms, sst: idleSst.p50Ms },
      idleP99Ms: { rocksdb: idleRocks.p99Ms, sst: idleSst.p99Ms },
      directGets: { rocksdb: directRocks, sst: directSst },
      duringSstLoad: loadingStats,
      duringPutLoad: putLoadingStats,
    });
    return out;
  } finally {
    await reader?.stop().catch(() => {});
    await server?.close().catch(() => {});
    for (const s of stores) await s.destroy().catch(() => {});
    await stack.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

if (process.env.FERRY_SERVING_BENCH_READER === "1") readerMain();
