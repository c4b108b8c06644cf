/**
 * bench stages: what each data-plane stage of a bulk load costs in CPU, on one ~128 MB JSONL chunk (~1.16 M records
 * of the pipeline bench's shape), so a change to one stage can be measured without the whole state machine.
 *
 *   baseline      read + JSON.parse of every line (the floor any JSONL pipeline pays)
 *   partition     partitionChunk on the chunk in memory, 8 shards, null sink — WebAssembly scanner (default) and JS
 *                 scanner (FERRY_JSONL_WASM=0), interleaved
 *   build         one bucket of all records from 8 in-memory runs (1 shard): parseSegmentColumns alone, + the k-way
 *                 merge, whole buildBucket (SST writer, sha256) with a null sink
 *   s3            against the local stack (started for the run unless one is up): Build's upload (s3MultipartSink
 *                 wrapped by checksummedSink: + xxh3x2 of every byte), s3RangeReader download in 8 MiB windows,
 *                 Build's verification read (checksumObject: streamed GET + xxh3x2) and the older one (hashObject:
 *                 streamed GET + sha256, still used for build results without xxh3x2), interleaved
 *   scaled        the large-input path scaled down (docs/pipeline.md, the 50 TB model): the chunk partitioned with a
 *                 memory budget of 1/27 of it (36 spilled sub-runs merged at the end) against no spill, and the
 *                 bucket built at fan-in 2 (two extra merge rounds through local disk) against one merge
 *
 * CPU is process.cpuUsage() (every thread). Each stage runs `--rounds N` times (default 3); the median is reported,
 * with ns per record or per byte and the ratio to the JSON.parse baseline measured in the same run.
 * Options: --mb N (default 128), --rounds N, --no-s3 (skip the local stack).
 */
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");

function arg(args: string[], name: string, def: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? (args[i + 1] ?? def) : def;
}

const cpu = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
/** the scaled stage's budget is the chunk over this: a 6.7 GiB chunk over a 256 MiB budget (the 50 TB model) */
const SCALED_SPILLS = 27;

async function measure(rounds: number, fn: () => Promise<unknown> | unknown): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const c0 = cpu();
    await fn();
    xs.push(cpu() - c0);
  }
  return median(xs);
}

const nullSink = () => ({
  write(_c: Uint8Array) {},
  async close() {},
  async abort() {},
});

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const mb = Number(arg(args, "mb", "128"));
  const rounds = Number(arg(args, "rounds", "3"));
  const log = (l: string) => process.stderr.write(`${l}\n`);
  const { generate } = await import("./pipeline.js");
  const dir = path.join(root, ".ferry", "bench");
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `stages-${mb}mb.jsonl`);
  if (!existsSync(file) || Math.abs(statSync(file).size - mb * 1e6) > 1e6) await generate(file, mb);
  const buf = readFileSync(file);
  const records = buf.reduce((n, c) => (c === 10 ? n + 1 : n), 0);

  const { parseLoadRequest } = await import("../core/pipeline/config.js");
  const { partitionChunk } = await import("../core/pipeline/partition.js");
  const { buildBucket } = await import("../core/pipeline/build.js");
  const { memoryStore } = await import("../core/records/source.js");
  const { memorySinks } = await import("../core/shuffle/io.js");
  const { readRunEntry, readSegmentColumns } = await import("../core/shuffle/run.js");
  const { mergeSegmentColumns } = await import("../core/shuffle/merge.js");

  // baseline
  const baseline = await measure(rounds, () => {
    let from = 0;
    for (;;) {
      const nl = buf.indexOf(10, from);
      if (nl < 0) break;
      JSON.parse(buf.toString("utf8", from, nl));
      from = nl + 1;
    }
  });
  log(`baseline JSON.parse: ${round(baseline)} CPU-s`);

  // partition: one chunk, 8 shards
  const shards = 8;
  const request = parseLoadRequest({
    dataset: "stages",
    version: "v1",
    input: "s3://bench-bucket/x",
    format: "jsonl",
    key: ["profile_id"],
    shards,
  });
  const buckets = Array.from({ length: shards }, (_, s) => ({
    id: `s${s}`,
    shard: s,
    index: s,
    lowerKey: "",
    upperKey: "",
  }));
  const objects = new Map([["b/in", buf as Uint8Array]]);
  let spills = 0;
  const partitionOnce = (wasm: boolean, memoryBytes?: number) => async () => {
    const before = process.env.FERRY_JSONL_WASM;
    process.env.FERRY_JSONL_WASM = wasm ? "1" : "0";
    try {
      const r = await partitionChunk({
        plan: { request, dataBucket: "b", createdAt: "", chunks: 1, buckets, inputBytes: buf.length },
        chunk: { id: "c0000000", bucket: "b", key: "in", size: buf.length, index: 0 },
        dataBucket: "b",
        open: memoryStore(objects, 1 << 20),
        openSink: nullSink,
        memoryBytes,
      });
      spills = r.spills;
    } finally {
      if (before === undefined) delete process.env.FERRY_JSONL_WASM;
      else process.env.FERRY_JSONL_WASM = before;
    }
  };
  const pw: number[] = [];
  const pj: number[] = [];
  for (let i = 0; i < rounds; i++) {
    pw.push(await measure(1, partitionOnce(true)));
    pj.push(await measure(1, partitionOnce(false)));
  }
  const partitionWasm = median(pw);
  const partitionJs = median(pj);
  log(`partition: WebAssembly ${round(partitionWasm)} CPU-s, JS ${round(partitionJs)} CPU-s`);

  // build: 8 runs of one shard in memory
  const plan1 = {
    request: { ...request, shards: 1 },
    dataBucket: "b",
    createdAt: "",
    chunks: 8,
    buckets: [buckets[0]],
    inputBytes: buf.length,
  };
  const store = new Map<string, Uint8Array>();
  const runKeys: string[] = [];
  const step = Math.ceil(buf.length / 8);
  for (let i = 0; i < 8; i++) {
    const r = await partitionChunk({
      plan: plan1,
      chunk: {
        id: `c000000${i}`,
        bucket: "b",
        key: "in",
        size: buf.length,
        index: i,
        start: i * step,
        end: Math.min(buf.length, (i + 1) * step),
      },
      dataBucket: "b",
      open: memoryStore(objects, 1 << 20),
      openSink: memorySinks(store),
    });
    runKeys.push(r.runKey);
  }
  const open = memoryStore(store, 8 << 20);
  const segments = async () => {
    const out = [];
    for (const k of runKeys) {
      const reader = await open("b", k);
      const { entry, header } = await readRunEntry(reader, 0);
      out.push(readSegmentColumns(reader, entry, header.chunkIndex));
    }
    return out;
  };
  const parse = await measure(rounds, async () => {
    for (const s of await segments()) for await (const _ of s);
  });
  const merge = await measure(rounds, async () => {
    for await (const _ of mergeSegmentColumns(await segments()));
  });
  let sstBytes = 0;
  let mergeRounds = 0;
  const buildWith = (fanIn?: number) => async () => {
    const r = await buildBucket({
      plan: plan1,
      bucket: buckets[0],
      runKeys,
      dataBucket: "b",
      open,
      openSink: nullSink,
      fanIn,
    });
    sstBytes = r.files.reduce((s, f) => s + f.bytes, 0);
    mergeRounds = r.mergeRounds;
  };
  const build = await measure(rounds, buildWith());
  log(`build: parse ${round(parse)}, parse+merge ${round(merge)}, buildBucket ${round(build)} CPU-s`);

  // the large-input path, scaled down: past ~16 GiB of input every chunk spills and every Build merges in rounds
  // (docs/pipeline.md, the 50 TB model: a 6.7 GiB chunk over a 256 MiB budget, two extra merge rounds per bucket).
  // Same chunk with a budget of 1/27 of it, and the same bucket's 8 runs at fan-in 2 (8 → 4 → 2: two rounds through
  // local disk, then the final merge), interleaved with the in-memory runs. The last call of each sets spills and
  // mergeRounds.
  const spillBudget = Math.ceil(buf.length / SCALED_SPILLS);
  const spilled: number[] = [];
  const unspilled: number[] = [];
  const rounded: number[] = [];
  const single: number[] = [];
  for (let i = 0; i < rounds; i++) {
    unspilled.push(await measure(1, partitionOnce(true)));
    spilled.push(await measure(1, partitionOnce(true, spillBudget)));
    single.push(await measure(1, buildWith()));
    rounded.push(await measure(1, buildWith(2)));
  }
  const scaled = {
    partitionSpills: spills,
    partitionSpilledCpuSec: round(median(spilled)),
    partitionUnspilledCpuSec: round(median(unspilled)),
    partitionRatio: round(median(spilled) / median(unspilled), 2),
    buildMergeRounds: mergeRounds,
    buildRoundsCpuSec: round(median(rounded)),
    buildOneMergeCpuSec: round(median(single)),
    buildRatio: round(median(rounded) / median(single), 2),
  };
  log(
    `scaled: partition with ${spills} spills ${scaled.partitionSpilledCpuSec} vs ${scaled.partitionUnspilledCpuSec} CPU-s,` +
      ` build with ${mergeRounds} merge rounds ${scaled.buildRoundsCpuSec} vs ${scaled.buildOneMergeCpuSec} CPU-s`,
  );

  const perRecordNs = (s: number) => Math.round((s * 1e9) / records);
  const out: Record<string, unknown> = {
    bench: "stages",
    inputMb: round(buf.length / 1e6, 1),
    records,
    sstMb: round(sstBytes / 1e6, 1),
    rounds,
    baselineParse: { cpuSec: round(baseline), nsPerRecord: perRecordNs(baseline) },
    partition: {
      wasmCpuSec: round(partitionWasm),
      jsCpuSec: round(partitionJs),
      wasmNsPerRecord: perRecordNs(partitionWasm),
      jsNsPerRecord: perRecordNs(partitionJs),
      wasmMbPerCpuSec: round(buf.length / 1e6 / partitionWasm, 1),
      ratioJsToWasm: round(partitionJs / partitionWasm, 2),
      ratioToParse: round(baseline / partitionWasm, 2),
    },
    build: {
      parseCpuSec: round(parse),
      parseMergeCpuSec: round(merge),
      buildCpuSec: round(build),
      nsPerRecord: perRecordNs(build),
      sstMbPerCpuSec: round(sstBytes / 1e6 / build, 1),
      ratioToParse: round(baseline / build, 2),
    },
    scaled,
  };

  if (!args.includes("--no-s3")) {
    const { withLocalStack } = await import("../local/stack/index.js");
    const { CreateBucketCommand } = await import("@aws-sdk/client-s3");
    const { s3 } = await import("../core/aws/clients.js");
    const { checksummedSink, s3MultipartSink, s3RangeReader } = await import("../core/aws/s3.js");
    const { checksumObject, hashObject } = await import("../core/manifest/s3.js");
    out.s3 = await withLocalStack(async () => {
      const bucket = `ferry-stages-${Date.now().toString(36)}`;
      await s3().send(new CreateBucketCommand({ Bucket: bucket }));
      let k = 0;
      const upload = async () => {
        const sink = checksummedSink(s3MultipartSink(bucket, `o${k++}`, { unsignedPayload: true }));
        for (let o = 0; o < buf.length; o += 1 << 20) {
          const p = sink.write(buf.subarray(o, Math.min(buf.length, o + (1 << 20))));
          if (p) await p;
        }
        await sink.close();
      };
      const download = async () => {
        for await (const _ of s3RangeReader(bucket, "o0", 0, buf.length, { chunkBytes: 8 << 20, prefetch: 1 }));
      };
      await upload();
      // interleaved rounds: the machine's load drifts
      const times: number[][] = [[], [], [], []];
      const fns = [upload, download, () => checksumObject(bucket, "o0"), () => hashObject(bucket, "o0")];
      for (let r = 0; r < rounds; r++) {
        for (let i = 0; i < fns.length; i++) {
          const c0 = cpu();
          await fns[i]();
          times[i].push(cpu() - c0);
        }
      }
      const [up, down, verify, verifySha] = times.map(median);
      const nsPerByte = (s: number) => round((s * 1e9) / buf.length, 2);
      log(
        `s3: upload ${nsPerByte(up)} ns/B, download ${nsPerByte(down)} ns/B, verification read ${nsPerByte(verify)} ns/B` +
          ` (by sha256: ${nsPerByte(verifySha)} ns/B)`,
      );
      return {
        uploadNsPerByte: nsPerByte(up),
        downloadNsPerByte: nsPerByte(down),
        verifyReadNsPerByte: nsPerByte(verify),
        verifyReadSha256NsPerByte: nsPerByte(verifySha),
      };
    });
  }
  return out;
}
