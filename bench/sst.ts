/**
 * `npm run bench -- sst [--keys N] [--runs R] [--codecs none,snappy,lz4,zstd] [--bloom-bits B] [--gets N]
 *                       [--rss-gb 0.5,2] [--dir DIR] [--no-native] [--serial]`
 *
 * Writer: N keys (16-byte ASCII keys, 100-byte values that compress ~2x) written by ferry's SstWriter and by
 * rocksdb::SstFileWriter (bench/native/sst_writer.cc, compiled here against librocksdb) in the same run, per codec,
 * median of R runs each, alternating. Each ferry run is a child process so its peak RSS is its own.
 * Reader: point gets/s (half present, half absent keys) on the N-key file, with and without a bloom filter.
 * RSS: peak RSS of the ferry writer for files of the given sizes (GB), to show it does not grow with file size.
 *
 * Compression is PARALLEL by default: ferry seals data blocks on a worker thread (core/sst/compress-pool.ts) while
 * the writer thread builds the next ones (the writer's default: compressed codecs only; "none" seals on the writer's
 * thread, which measured cheaper); rocksdb::SstFileWriter here compresses on its one thread
 * (CompressionOptions::parallel_threads = 1, the default). `--serial` runs ferry on one thread too. Both views are
 * reported: wall-clock keys/s (ratio) and process CPU seconds (user + sys, all threads: cpuRatio, µs per key).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { compressionStats } from "../core/sst/compress-pool.js";
import { fileSink, SstReader, SstWriter } from "../core/sst/index.js";
import type { SstCompression } from "../core/sst/types.js";

const here = dirname(fileURLToPath(import.meta.url));
const POOL_VALUES = 10007;
const VALUE_LEN = 100;

/** same generator as sst_writer.cc: 50 xorshift bytes + 50 bytes of text per value */
function makePool(): Uint8Array {
  const pool = new Uint8Array(POOL_VALUES * VALUE_LEN);
  let x = 2463534242;
  const text = new TextEncoder().encode("the quick brown fox jumps over the lazy dog 0123456789");
  for (let v = 0; v < POOL_VALUES; v++) {
    const p = v * VALUE_LEN;
    for (let i = 0; i < 50; i++) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      pool[p + i] = x & 0xff;
    }
    pool.set(text.subarray(0, 50), p + 50);
  }
  return pool;
}

/** writes keys "%016d" 0..n-1; returns wall and CPU seconds (open -> finish incl. fsync) */
async function ferryWrite(
  out: string,
  n: number,
  codec: SstCompression,
  bloomBits: number,
  parallelCompression: boolean,
): Promise<{ seconds: number; cpuSeconds: number }> {
  const pool = makePool();
  const key = new Uint8Array(16).fill(48);
  // value views made once (the native side passes pointers into the same pool)
  const values: Uint8Array[] = [];
  for (let i = 0; i < POOL_VALUES; i++) values.push(pool.subarray(i * VALUE_LEN, i * VALUE_LEN + VALUE_LEN));
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  // parallel: the writer's default (a worker for compressed codecs; "none" seals on the writer's thread)
  const w = new SstWriter(fileSink(out), {
    compression: codec,
    bloomBitsPerKey: bloomBits,
    ...(parallelCompression ? {} : { parallelCompression: false }),
  });
  let vi = 0;
  for (let i = 0; i < n; i++) {
    const p = w.add(key, values[vi]);
    if (p) await p;
    if (++vi === POOL_VALUES) vi = 0;
    // increment the decimal key in place
    let d = 15;
    while (key[d] === 57) key[d--] = 48;
    key[d]++;
  }
  await w.finish();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  return { seconds, cpuSeconds: (c.user + c.system) / 1e6 };
}

function arg(args: string[], name: string, def: string): string {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function buildNative(): string | undefined {
  const src = join(here, "native", "sst_writer.cc");
  const bin = join(here, "native", "build", "sst_writer");
  if (!existsSync("/usr/include/rocksdb/sst_file_writer.h")) return undefined;
  if (!existsSync(bin) || statSync(bin).mtimeMs < statSync(src).mtimeMs) {
    mkdirSync(dirname(bin), { recursive: true });
    execFileSync("g++", ["-O2", "-std=c++17", src, "-o", bin, "-lrocksdb"], { stdio: "inherit" });
  }
  return bin;
}

function runChild(mode: string, params: Record<string, string | number>): Record<string, number> {
  const r = spawnSync(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url)], {
    env: { ...process.env, SST_BENCH_CHILD: JSON.stringify({ mode, ...params }) },
    encoding: "utf8",
    maxBuffer: 1 << 24,
  });
  if (r.status !== 0) throw new Error(`bench child failed: ${r.stderr}`);
  const lines = r.stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}

async function child(): Promise<void> {
  const p = JSON.parse(process.env.SST_BENCH_CHILD as string);
  if (p.mode === "write") {
    const { seconds, cpuSeconds } = await ferryWrite(p.out, p.keys, p.codec, p.bloom, p.parallel !== 0);
    const rssMb = process.resourceUsage().maxRSS / 1024;
    const st = compressionStats();
    process.stdout.write(
      `${JSON.stringify({ seconds, cpuSeconds, rssMb, bytes: statSync(p.out).size, workerBlocks: st.workerBlocks, inlineBlocks: st.inlineBlocks })}\n`,
    );
  } else if (p.mode === "gets") {
    const r = await SstReader.open(p.file);
    const n = p.gets as number;
    const keys = r.entries;
    const key = new Uint8Array(16);
    // absent keys sit between present ones ("<16 digits>x"), so without a filter each costs a block read
    const absent = new Uint8Array(17);
    absent[16] = 120;
    let x = 88172645;
    let found = 0;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      // even i: a present key; odd i: an absent one
      let k = x % keys;
      for (let d = 15; d >= 0; d--) {
        key[d] = 48 + (k % 10);
        k = Math.floor(k / 10);
      }
      if (i & 1) {
        absent.set(key);
        if (r.getSync(absent) !== undefined) found++;
      } else if (r.getSync(key) !== undefined) found++;
    }
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    await r.close();
    process.stdout.write(`${JSON.stringify({ getsPerSec: n / secs, found, gets: n })}\n`);
  }
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const keys = Number(arg(args, "--keys", "5000000"));
  const runs = Number(arg(args, "--runs", "3"));
  const codecs = arg(args, "--codecs", "none,snappy,lz4,zstd").split(",") as SstCompression[];
  const bloom = Number(arg(args, "--bloom-bits", "10"));
  const gets = Number(arg(args, "--gets", "500000"));
  const rssGb = arg(args, "--rss-gb", "").split(",").filter(Boolean).map(Number);
  const dir = arg(args, "--dir", join(tmpdir(), `ferry-sst-bench-${process.pid}`));
  const noNative = args.includes("--no-native");
  const serial = args.includes("--serial");
  mkdirSync(dir, { recursive: true });
  const native = noNative ? undefined : buildNative();
  if (!native && !noNative)
    process.stderr.write("bench sst: librocksdb-dev headers missing: native baseline skipped\n");
  const result: Record<string, unknown> = {
    bench: "sst",
    keys,
    runs,
    bloomBitsPerKey: bloom,
    valueBytes: VALUE_LEN,
    ferryCompression: serial ? "serial (writer thread)" : "parallel (worker thread seals blocks)",
    nativeCompression: "serial (SstFileWriter, parallel_threads = 1)",
    // RocksDB's own parallel compression (CompressionOptions::parallel_threads = cores) as a second baseline when
    // ferry runs parallel: ferry's parallel wall time against native's parallel wall time is the like-for-like ratio
    nativeParallelCompression: serial ? undefined : `SstFileWriter, parallel_threads = ${availableParallelism()}`,
    cores: availableParallelism(),
    loadAverageStart: loadavg().map((x) => Number(x.toFixed(2))),
  };
  const perCodec: Record<string, unknown> = {};
  let peakRss = 0;
  try {
    for (const codec of codecs) {
      const f: number[] = [];
      const nat: number[] = [];
      const fCpu: number[] = [];
      const natCpu: number[] = [];
      const natPar: number[] = [];
      const natParCpu: number[] = [];
      let bytesF = 0;
      let bytesN = 0;
      let rssF = 0;
      let workerBlocks = 0;
      let inlineBlocks = 0;
      for (let r = 0; r < runs; r++) {
        const outF = join(dir, `ferry-${codec}.sst`);
        const c = runChild("write", { out: outF, keys, codec, bloom, parallel: serial ? 0 : 1 });
        f.push(c.seconds);
        rssF = Math.max(rssF, c.rssMb);
        workerBlocks += c.workerBlocks;
        inlineBlocks += c.inlineBlocks;
        fCpu.push(c.cpuSeconds);
        bytesF = c.bytes;
        peakRss = Math.max(peakRss, c.rssMb);
        rmSync(outF, { force: true });
        if (native) {
          const outN = join(dir, `native-${codec}.sst`);
          const o = execFileSync(native, [outN, String(keys), codec, String(bloom)], { encoding: "utf8" });
          const j = JSON.parse(o.trim().split("\n").pop() as string);
          nat.push(j.seconds);
          natCpu.push(j.cpuSeconds);
          bytesN = j.bytes;
          rmSync(outN, { force: true });
          // parallel_threads only changes anything for compressed blocks
          if (!serial && codec !== "none" && availableParallelism() > 1) {
            const op = execFileSync(
              native,
              [outN, String(keys), codec, String(bloom), String(availableParallelism())],
              {
                encoding: "utf8",
              },
            );
            const jp = JSON.parse(op.trim().split("\n").pop() as string);
            natPar.push(jp.seconds);
            natParCpu.push(jp.cpuSeconds);
            rmSync(outN, { force: true });
          }
        }
        process.stderr.write(
          `sst ${codec} run ${r + 1}: ferry ${f[r].toFixed(2)}s (cpu ${fCpu[r].toFixed(2)}s) native ${nat[r]?.toFixed(2) ?? "-"}s (cpu ${natCpu[r]?.toFixed(2) ?? "-"}s)${natPar[r] !== undefined ? ` native parallel ${natPar[r].toFixed(2)}s (cpu ${natParCpu[r].toFixed(2)}s)` : ""}\n`,
        );
      }
      const ferryKeysPerSec = Math.round(keys / median(f));
      const nativeKeysPerSec = nat.length ? Math.round(keys / median(nat)) : undefined;
      perCodec[codec] = {
        ferryKeysPerSec,
        nativeKeysPerSec,
        ratio: nativeKeysPerSec ? Number((ferryKeysPerSec / nativeKeysPerSec).toFixed(3)) : undefined,
        // CPU-time view: on a shared, overloaded machine wall time mostly measures the neighbours
        cpuRatio: natCpu.length ? Number((median(natCpu) / median(fCpu)).toFixed(3)) : undefined,
        // ferry parallel vs RocksDB parallel (parallel_threads = cores), wall time
        nativeParallelKeysPerSec: natPar.length ? Math.round(keys / median(natPar)) : undefined,
        ratioVsNativeParallel: natPar.length ? Number((median(natPar) / median(f)).toFixed(3)) : undefined,
        nativeParallelCpuUsPerKey: natParCpu.length ? Number(((median(natParCpu) / keys) * 1e6).toFixed(3)) : undefined,
        ferryCpuKeysPerSec: Math.round(keys / median(fCpu)),
        nativeCpuKeysPerSec: natCpu.length ? Math.round(keys / median(natCpu)) : undefined,
        ferryCpuUsPerKey: Number(((median(fCpu) / keys) * 1e6).toFixed(3)),
        nativeCpuUsPerKey: natCpu.length ? Number(((median(natCpu) / keys) * 1e6).toFixed(3)) : undefined,
        ferryPeakRssMb: Math.round(rssF),
        // share of data blocks the worker sealed (the rest: before it attached, or serial)
        workerShare:
          workerBlocks + inlineBlocks > 0 ? Number((workerBlocks / (workerBlocks + inlineBlocks)).toFixed(3)) : 0,
        ferrySeconds: f.map((x) => Number(x.toFixed(3))),
        nativeSeconds: nat.map((x) => Number(x.toFixed(3))),
        ferryCpuSeconds: fCpu.map((x) => Number(x.toFixed(3))),
        nativeCpuSeconds: natCpu.map((x) => Number(x.toFixed(3))),
        ferryBytes: bytesF,
        nativeBytes: bytesN,
      };
    }
    result.codecs = perCodec;
    result.loadAverageEnd = loadavg().map((x) => Number(x.toFixed(2)));
    result.writerPeakRssMb = Math.round(peakRss);
    // reader: point gets with and without bloom on an N-key file
    if (gets > 0) {
      const reader: Record<string, unknown> = {};
      for (const b of [bloom || 10, 0]) {
        const file = join(dir, `gets-${b}.sst`);
        runChild("write", { out: file, keys, codec: "none", bloom: b });
        const g = runChild("gets", { file, gets });
        reader[b ? `bloom${b}` : "noBloom"] = { getsPerSec: Math.round(g.getsPerSec), found: g.found, gets: g.gets };
        rmSync(file, { force: true });
      }
      result.reader = reader;
    }
    // RSS vs file size
    if (rssGb.length) {
      const rss: Record<string, unknown> = {};
      for (const gb of rssGb) {
        const n = Math.round((gb * 1e9) / 116);
        const file = join(dir, `rss-${gb}.sst`);
        const c = runChild("write", { out: file, keys: n, codec: "none", bloom });
        rss[`${gb}GB`] = {
          keys: n,
          bytes: c.bytes,
          peakRssMb: Math.round(c.rssMb),
          seconds: Number(c.seconds.toFixed(2)),
        };
        rmSync(file, { force: true });
      }
      result.rssBySize = rss;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return result;
}

if (process.env.SST_BENCH_CHILD) await child();
