/**
 * Build (one bucket): ranged-GET the bucket's segment from every run object, k-way merge them (bounded fan-in: more
 * runs than PIPELINE.mergeFanIn are first merged in rounds into local temporary files), apply the duplicate policy,
 * and stream SST files (rolled over at the request's targetFileSize) into S3 multipart uploads at
 * versions/<d>/<v>/shard=<s>/<bucketId>-<nnnn>.sst. Memory does not grow with the bucket size: each open segment
 * holds one read window, the SST writer one block plus its index and filter.
 * An empty bucket returns no files (RocksDB rejects empty SST files).
 */
import { createReadStream, closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CorruptionError, InputError } from "../errors.js";
import { PIPELINE } from "../limits.js";
import { versionPrefix } from "../manifest/schema.js";
import { printableKey } from "../records/key.js";
import { type ObjectReader, type OpenObject, s3Opener } from "../records/source.js";
import { type ChecksummedSink, checksummedSink, s3MultipartSink } from "../aws/s3.js";
import type { OpenSink } from "../shuffle/io.js";
import { type MergedBatch, mergeSegmentColumns } from "../shuffle/merge.js";
import {
  parseSegmentColumns,
  type RunMeta,
  type RunRecord,
  readRunEntry,
  readRunMeta,
  readSegmentColumns,
  recordBytesFrom,
  type SegmentBatch,
  writeRecordFrom,
} from "../shuffle/run.js";
import { murmur3_32Range } from "../shuffle/shard.js";
import { varintLength, writeVarint } from "../shuffle/varint.js";
import { SstFileSetWriter } from "../sst/writer.js";
import type { BuildResult, Bucket, Plan } from "./types.js";

export interface BuildArgs {
  plan: Plan;
  bucket: Bucket;
  /** run object keys in dataBucket (every chunk's run; order does not matter) */
  runKeys: string[];
  /** the runs' sizes in runKeys' order (PlanBuild's runs.json): opened without a HEAD each */
  runBytes?: number[];
  dataBucket: string;
  open?: OpenObject;
  openSink?: OpenSink;
  /** merge fan-in (default PIPELINE.mergeFanIn) */
  fanIn?: number;
  tmpDir?: string;
  /** parallel index reads (default 16) */
  concurrency?: number;
}

/**
 * Where Build's SST files go by default: S3 multipart uploads sent as UNSIGNED-PAYLOAD, so SigV4 does not sha256
 * every byte again — the SST writer already hashes each byte once (the file's sha256), and each part still carries
 * the SDK's CRC32 checksum, which S3 validates.
 */
export const openSstSink: OpenSink = (bucket, key) => s3MultipartSink(bucket, key, { unsignedPayload: true });

/**
 * Bytes per ranged GET of a run segment: at most min(runs, fan-in) segments stream at once, two windows each, within
 * PIPELINE.buildReadBudgetBytes — so a build of a few runs reads in windows of up to 8 MiB (fewer GETs, less SDK
 * work per byte) and a wide merge falls back to PIPELINE.segmentReadBytes.
 */
export function segmentWindowBytes(runs: number, fanIn: number): number {
  const open = Math.max(1, Math.min(runs, fanIn));
  const w = Math.floor(PIPELINE.buildReadBudgetBytes / (2 * open));
  return Math.min(8 * 1024 * 1024, Math.max(PIPELINE.segmentReadBytes, w));
}

/** A merge input: its batches and its size in bytes (a run segment's, or the sum a temporary run was merged from). */
interface MergeSource {
  batches: AsyncIterable<SegmentBatch>;
  bytes: number;
}

/**
 * Which sources one extra merge round merges (groups of source indexes, each 2..fanIn), given the sources' sizes:
 * only as many as leave a count the remaining rounds can reach at full fan-in (at most fanIn^(rounds left − 1)),
 * the smallest first. Merging every source each round writes the whole bucket to local disk every round; this
 * writes what it must: 6,900 runs at fan-in 64 (the 50 TB plan) go through disk 1.41 times instead of twice, and a
 * count that is a power of the fan-in still merges everything each round. The round count is the same,
 * ceil(log_fanIn(n)) − 1. Ties in size go to the lower index (deterministic).
 */
export function mergeRoundGroups(bytes: number[], fanIn: number): number[][] {
  const n = bytes.length;
  if (n <= fanIn) return [];
  let cap = fanIn;
  while (cap * fanIn < n) cap *= fanIn;
  // cap = fanIn^(rounds left − 1): the count to reach this round; each group of s sources removes s − 1
  const remove = n - cap;
  const groups = Math.ceil(remove / (fanIn - 1));
  const take = remove + groups;
  const order = bytes.map((b, i) => [b, i] as const).sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  const out: number[][] = [];
  for (let g = 0, k = 0; g < groups; g++) {
    const size = g < groups - 1 ? fanIn : take - k;
    out.push(order.slice(k, k + size).map(([, i]) => i));
    k += size;
  }
  return out;
}

export function sstFileName(bucketId: string, n: number): string {
  return `${bucketId}-${String(n).padStart(4, "0")}.sst`;
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i], i);
      }
    }),
  );
  return out;
}

/**
 * Equal keys? Neighbours in a merge share long prefixes and differ near the end, so compare from the end: most
 * checks end after one or two bytes, with no native call.
 */
export function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  let i = a.length;
  if (i !== b.length) return false;
  while (i-- > 0) if (a[i] !== b[i]) return false;
  return true;
}

/** sameKey for record i of a and record j of b (column form), also from the end. */
export function sameKeyAt(a: SegmentBatch, i: number, b: SegmentBatch, j: number): boolean {
  const s = a.keyStart[i];
  let x = a.keyEnd[i];
  const t = b.keyStart[j];
  let y = b.keyEnd[j];
  if (x - s !== y - t) return false;
  const ba = a.buf;
  const bb = b.buf;
  while (x > s) if (ba[--x] !== bb[--y]) return false;
  return true;
}

/**
 * compareRunRecords (key bytewise, then chunk index, then line) with the key comparison in JavaScript: the merge
 * compares a few times per record, and Buffer.compare's native call (~120 ns) costs more than comparing ~20-byte
 * keys byte by byte (~40 ns). Same order as compareRunRecords (property-tested).
 */
export function compareRecords(a: RunRecord, b: RunRecord): number {
  const ka = a.key;
  const kb = b.key;
  const la = ka.length;
  const lb = kb.length;
  const n = la < lb ? la : lb;
  for (let i = 0; i < n; i++) {
    const d = ka[i] - kb[i];
    if (d !== 0) return d;
  }
  return la - lb || a.run - b.run || a.line - b.line;
}

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");

export async function buildBucket(args: BuildArgs): Promise<BuildResult & { mergeRounds: number }> {
  const { plan, bucket } = args;
  const req = plan.request;
  const fanIn = Math.max(2, args.fanIn ?? PIPELINE.mergeFanIn);
  const open = args.open ?? s3Opener(segmentWindowBytes(args.runKeys.length, fanIn));
  const rb = args.runBytes;
  const sizes = new Map<string, number>(
    rb && rb.length === args.runKeys.length ? args.runKeys.map((k, i) => [k, rb[i]]) : [],
  );
  const runs = await mapLimit([...args.runKeys].sort(), args.concurrency ?? 16, async (key) => {
    const reader = await open(args.dataBucket, key, sizes.get(key));
    const { header, entry } = await readRunEntry(reader, bucket.index);
    if (header.bucketCount !== plan.buckets.length) {
      throw new CorruptionError(
        `${reader.url}: written for ${header.bucketCount} buckets, the plan has ${plan.buckets.length}`,
        {
          file: reader.url,
        },
      );
    }
    return { reader, entry, run: header.chunkIndex };
  });
  const readers = new Map<number, ObjectReader>();
  for (const r of runs) readers.set(r.run, r.reader);
  const withData = runs.filter((r) => r.entry.count > 0);
  const recordsExpected = withData.reduce((s, r) => s + r.entry.count, 0);

  let tmp: string | undefined;
  let mergeRounds = 0;
  const result: BuildResult & { mergeRounds: number } = {
    bucketId: bucket.id,
    shard: bucket.shard,
    recordsIn: 0,
    duplicates: 0,
    files: [],
    mergeRounds: 0,
  };
  try {
    let sources: MergeSource[] = withData.map((r) => ({
      batches: readSegmentColumns(r.reader, r.entry, r.run),
      bytes: r.entry.length,
    }));
    // extra merge rounds to local files while there are more sources than the fan-in, each merging only the smallest
    // sources it must (mergeRoundGroups): the others wait for a later round
    while (sources.length > fanIn) {
      tmp ??= mkdtempSync(join(args.tmpDir ?? tmpdir(), "ferry-merge-"));
      mergeRounds++;
      const groups = mergeRoundGroups(
        sources.map((s) => s.bytes),
        fanIn,
      );
      const merged = new Set(groups.flat());
      const next = sources.filter((_, i) => !merged.has(i));
      for (const [g, group] of groups.entries()) {
        const path = join(tmp, `round${mergeRounds}-${g}`);
        await writeTmpRun(path, mergeSegmentColumns(group.map((i) => sources[i].batches)));
        next.push({ batches: readTmpRun(path), bytes: group.reduce((n, i) => n + sources[i].bytes, 0) });
      }
      sources = next;
    }
    result.mergeRounds = mergeRounds;
    if (sources.length === 0) return result;

    const lower = bucket.lowerKey ? Buffer.from(bucket.lowerKey, "hex") : undefined;
    const upper = bucket.upperKey ? Buffer.from(bucket.upperKey, "hex") : undefined;
    const prefix = versionPrefix(req.dataset, req.version);
    const openSink = args.openSink ?? openSstSink;
    const names: string[] = [];
    // each file's xxh3x2 as its bytes go to the sink: what Build's verification re-read compares (verifyBuiltFile)
    const sinks: ChecksummedSink[] = [];
    const writer = new SstFileSetWriter(
      async (n) => {
        const name = `shard=${bucket.shard}/${sstFileName(bucket.id, n)}`;
        names[n] = name;
        sinks[n] = checksummedSink(await openSink(args.dataBucket, prefix + name));
        return sinks[n];
      },
      {
        compression: req.sstCompression,
        bloomBitsPerKey: req.bloomBitsPerKey,
        targetFileSize: req.targetFileSize,
        name: `${prefix}shard=${bucket.shard}/${bucket.id}`,
        // reproducible bytes: no random session identity / file number, so a retried or re-run build writes the
        // same file (same sha256) and Publish's write-once manifest compares equal (pipeline engineer's change)
        sessionIdentity: false,
      },
    );
    const dupExamples: Array<{ key: Uint8Array; origins: Array<{ run: number; line: number }> }> = [];
    let group: Array<{ run: number; line: number }> | undefined;
    // the pending record (the last key's survivor): record `pi` of batch `pb`
    let pb: SegmentBatch | undefined;
    let pi = 0;
    const policy = req.duplicates;

    // Key checks per record are kept cheap: the SST file set writer already refuses keys that are not strictly
    // ascending (across its files too), so the bucket's range holds for every key once it holds for the first and
    // the last one; the shard (murmur3, ~15 ns a key) is checked for every key.
    const outside = (key: Uint8Array, run: number) =>
      new CorruptionError(
        `key ${printableKey(key)} from chunk ${run} does not belong to bucket ${bucket.id}: runs and plan disagree`,
        { file: bucket.id },
      );
    const { shard } = bucket;
    const shards = req.shards;
    let emitted = 0;
    // the last record emitted: record `li` of batch `lb` (a view is made only for the final range check)
    let lb: SegmentBatch | undefined;
    let li = 0;
    // per record: no views, no native calls (offsets into the batch buffer; shardOf = murmur3 mod shards, and with one
    // shard every key is in shard 0)
    const emit = (b: SegmentBatch, i: number): void | Promise<void> => {
      const buf = b.buf;
      const ks = b.keyStart[i];
      const ke = b.keyEnd[i];
      if (shards !== 1 && murmur3_32Range(buf, ks, ke, 0) % shards !== shard) {
        throw outside(buf.subarray(ks, ke), b.run[i]);
      }
      if (emitted++ === 0 && lower && Buffer.compare(buf.subarray(ks, ke), lower) < 0) {
        throw outside(buf.subarray(ks, ke), b.run[i]);
      }
      lb = b;
      li = i;
      return writer.addRange(buf, ks, ke, b.valStart[i], b.valEnd[i]);
    };

    try {
      merge: for await (const out of mergeSegmentColumns(sources.map((x) => x.batches))) {
        const ob = out.batch;
        const oi = out.idx;
        result.recordsIn += out.n;
        for (let x = 0; x < out.n; x++) {
          const b = ob[x];
          const i = oi[x];
          if (pb !== undefined && sameKeyAt(pb, pi, b, i)) {
            result.duplicates++;
            if (policy === "error") {
              if (!group) {
                group = [{ run: pb.run[pi], line: pb.line[pi] }];
                dupExamples.push({ key: pb.buf.slice(pb.keyStart[pi], pb.keyEnd[pi]), origins: group });
              }
              if (group.length < 3) group.push({ run: b.run[i], line: b.line[i] });
            } else if (policy === "last") {
              pb = b;
              pi = i;
            }
            continue;
          }
          group = undefined;
          if (dupExamples.length >= PIPELINE.maxExamples) break merge;
          if (pb !== undefined && dupExamples.length === 0) {
            const p = emit(pb, pi);
            if (p) await p;
          }
          pb = b;
          pi = i;
        }
      }
      if (dupExamples.length > 0) throw await duplicateError(dupExamples, readers, bucket);
      if (pb !== undefined) await emit(pb, pi);
      if (upper && lb !== undefined) {
        const lastKey = lb.buf.subarray(lb.keyStart[li], lb.keyEnd[li]);
        if (Buffer.compare(lastKey, upper) >= 0) throw outside(lastKey, lb.run[li]);
      }

      if (result.recordsIn !== recordsExpected) {
        throw new CorruptionError(
          `bucket ${bucket.id}: read ${result.recordsIn} records, the run indexes say ${recordsExpected}`,
          {
            file: bucket.id,
          },
        );
      }
      const infos = await writer.finish();
      result.files = infos.map((f) => ({
        shard: bucket.shard,
        path: names[f.index],
        smallestKey: hex(f.smallestKey),
        largestKey: hex(f.largestKey),
        entries: f.entries,
        bytes: f.bytes,
        sha256: f.sha256,
        xxh3x2: sinks[f.index].checksum(),
      }));
    } catch (e) {
      await writer.abort(e);
      throw e;
    }
    return result;
  } finally {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}

async function duplicateError(
  examples: Array<{ key: Uint8Array; origins: Array<{ run: number; line: number }> }>,
  readers: Map<number, ObjectReader>,
  bucket: Bucket,
): Promise<InputError> {
  const metas = new Map<number, RunMeta>();
  const whereOf = async (o: { run: number; line: number }) => {
    let m = metas.get(o.run);
    if (!m) {
      const r = readers.get(o.run);
      if (!r) return `chunk ${o.run} line ${o.line}`;
      m = await readRunMeta(r);
      metas.set(o.run, m);
    }
    const unit = m.unit ?? "line";
    return m.chunkStart
      ? `${m.source} ${unit} ${o.line} of the chunk starting at byte ${m.chunkStart}`
      : `${m.source} ${unit} ${o.line}`;
  };
  const parts: string[] = [];
  for (const ex of examples) {
    const ws = await Promise.all(ex.origins.map(whereOf));
    parts.push(`key ${printableKey(ex.key)} in ${ws.join(" and ")}`);
  }
  return new InputError(
    `duplicate keys (duplicates=error; use duplicates=last or first to keep one): ${parts.join("; ")}`,
    {
      key: hex(examples[0].key),
      bucket: bucket.id,
      examples: parts,
    },
  );
}

// ---- temporary runs for extra merge rounds: varint keyLen | key | varint valueLen | value | varint line | varint run

async function writeTmpRun(path: string, merged: AsyncIterable<MergedBatch>): Promise<void> {
  const fd = openSync(path, "w");
  try {
    let buf = Buffer.allocUnsafe(1 << 20);
    let o = 0;
    const flush = () => {
      let w = 0;
      while (w < o) w += writeSync(fd, buf, w, o - w);
      o = 0;
    };
    for await (const out of merged)
      for (let x = 0; x < out.n; x++) {
        const b = out.batch[x];
        const i = out.idx[x];
        const ks = b.keyStart[i];
        const ke = b.keyEnd[i];
        const ve = b.valEnd[i];
        const line = b.line[i];
        const need = recordBytesFrom(ks, ke, ve, line) + varintLength(b.run[i]);
        if (need > buf.length - o) flush();
        if (need > buf.length) buf = Buffer.allocUnsafe(need);
        // the record as in a run segment, then its run
        o = writeVarint(buf, writeRecordFrom(b.buf, ks, ke, ve, line, buf, o), b.run[i]);
      }
    flush();
  } finally {
    closeSync(fd);
  }
}

/**
 * A temporary run's batches; the file is deleted once read to its end (each is read exactly once, by the next round),
 * so local disk holds about one copy of the bucket plus one fan-in group's output, not every round's files.
 */
async function* readTmpRun(path: string): AsyncIterable<SegmentBatch> {
  yield* parseSegmentColumns(
    createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>,
    `${path} (temporary run)`,
    0,
    true,
  );
  rmSync(path, { force: true });
}
