/**
 * Key sampling and split points. Plan samples keys from chunks (a reservoir per chunk over a few evenly spaced
 * windows of it, at most PIPELINE.sampleKeysPerChunk keys), weights each sample by the input bytes it stands for,
 * and chooses per shard the split points that give each bucket about `targetBytes`.
 */
import { PIPELINE } from "../limits.js";
import { makeFastJsonlMapper } from "../records/jsonl-fast.js";
import { forEachJsonlLine, jsonlRecord, readChunk } from "../records/readers.js";
import { isSkipped, makeRecordMapper } from "../records/mapper.js";
import type { OpenObject } from "../records/source.js";
import { murmur3_32Range, shardOf } from "../shuffle/shard.js";
import type { Bucket, Chunk, InputFormat, LoadRequest } from "./types.js";

export interface KeySample {
  key: Uint8Array;
  /** input bytes this sample stands for */
  bytes: number;
}

export interface SampleOptions {
  open?: OpenObject;
  /** keys kept per chunk (default PIPELINE.sampleKeysPerChunk) */
  maxKeys?: number;
  /** input bytes read per chunk, spread over `windows` ranges of byte-range chunks (default PIPELINE.sampleBytesPerChunk) */
  maxBytes?: number;
  windows?: number;
  /** deterministic reservoir: the same seed gives the same samples */
  seed?: number;
  /** JSONL: keys from the line bytes when certain (default true; false = JSON.parse every line) */
  fastPath?: boolean;
}

/** xorshift32: a tiny deterministic PRNG (sampling must not differ between retries). */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

function chunkBytes(c: Chunk): number {
  return c.start !== undefined ? (c.end ?? c.size) - c.start : c.size;
}

/**
 * Samples keys from one chunk. Byte-range chunks: `windows` evenly spaced windows of maxBytes/windows each; whole
 * objects (compressed, Parquet): the first records up to maxBytes of decoded input (Parquet: the chunk's first row
 * group). Bad records are ignored here (Partition applies the policy). Each sample's `bytes` = the chunk's input
 * bytes / samples, so samples of all chunks add up to the input size.
 */
export async function sampleChunk(
  chunk: Chunk,
  request: Pick<LoadRequest, "format" | "key" | "value" | "valueRaw" | "compression">,
  opts: SampleOptions = {},
): Promise<{ samples: KeySample[]; recordsRead: number; bytesRead: number }> {
  const maxKeys = opts.maxKeys ?? PIPELINE.sampleKeysPerChunk;
  const maxBytes = opts.maxBytes ?? PIPELINE.sampleBytesPerChunk;
  const windows = opts.windows ?? 4;
  const rand = rng((opts.seed ?? 1) ^ ((chunk.index ?? 0) * 2654435761));
  const mapper = makeRecordMapper({
    key: request.key,
    value: request.value,
    valueRaw: request.valueRaw,
    badRecords: "skip",
    maxBadRecords: Number.MAX_SAFE_INTEGER,
    typedValues: request.format === "parquet",
  });
  const reservoir: Uint8Array[] = [];
  let seen = 0;
  let bytesRead = 0;
  const take = (key: Uint8Array) => {
    seen++;
    if (reservoir.length < maxKeys) reservoir.push(key);
    else {
      const j = Math.floor(rand() * seen);
      if (j < maxKeys) reservoir[j] = key;
    }
  };
  const sub: Chunk[] = [];
  if (chunk.start !== undefined && request.format !== "parquet") {
    const len = chunkBytes(chunk);
    const w = Math.max(1, Math.floor(maxBytes / windows));
    if (len <= maxBytes) sub.push(chunk);
    else {
      for (let i = 0; i < windows; i++) {
        const s = chunk.start + Math.floor((i * (len - w)) / Math.max(1, windows - 1));
        sub.push({ ...chunk, start: s, end: s + w });
      }
    }
  } else if (request.format === "parquet" && chunk.rowGroups) {
    sub.push({ ...chunk, rowGroups: [chunk.rowGroups[0], chunk.rowGroups[0]] });
  } else sub.push(chunk);
  // JSONL: keys from the line bytes where certain (core/records/jsonl-fast.ts), as Partition does
  const fast = request.format === "jsonl" && opts.fastPath !== false ? makeFastJsonlMapper(request) : undefined;
  for (const c of sub) {
    let got = 0;
    const budget = c === chunk ? maxBytes : Number.POSITIVE_INFINITY;
    const readOpts = { open: opts.open, compression: request.compression };
    if (fast) {
      let where: { source: string; chunkStart?: number } = { source: "" };
      await forEachJsonlLine(
        c,
        readOpts,
        (w) => {
          where = w;
        },
        (buf, s, e, line) => {
          if (fast.map(buf, s, e)) {
            take(Buffer.from(fast.keySrc.subarray(fast.keyStart, fast.keyEnd)));
            got += fast.keyEnd - fast.keyStart + fast.valueLen;
          } else {
            const rec = jsonlRecord(
              Buffer.from(buf.buffer, buf.byteOffset + s, e - s),
              where.source,
              line,
              where.chunkStart,
            );
            if (!rec) return false;
            const m = mapper(rec);
            if (isSkipped(m)) return false;
            take(m.key);
            got += m.key.length + m.value.length;
          }
          return got >= budget;
        },
      );
    } else {
      for await (const rec of readChunk(c, request.format as InputFormat, readOpts)) {
        const m = mapper(rec);
        if (isSkipped(m)) continue;
        take(m.key);
        got += m.key.length + m.value.length;
        if (got >= budget) break;
      }
    }
    bytesRead += got;
  }
  const per = reservoir.length > 0 ? chunkBytes(chunk) / reservoir.length : 0;
  return { samples: reservoir.map((key) => ({ key, bytes: per })), recordsRead: seen, bytesRead };
}

/** Samples many chunks with bounded concurrency; at most `maxChunks` evenly spaced chunks, weights scaled up. */
export async function sampleChunks(
  chunks: Chunk[],
  request: Pick<LoadRequest, "format" | "key" | "value" | "valueRaw" | "compression">,
  opts: SampleOptions & { concurrency?: number; maxChunks?: number } = {},
): Promise<KeySample[]> {
  const maxChunks = opts.maxChunks ?? PIPELINE.sampleMaxChunks;
  const pick: Chunk[] =
    chunks.length <= maxChunks
      ? chunks
      : Array.from({ length: maxChunks }, (_, i) => chunks[Math.floor((i * chunks.length) / maxChunks)]);
  const scale =
    chunks.reduce((s, c) => s + chunkBytes(c), 0) /
    Math.max(
      1,
      pick.reduce((s, c) => s + chunkBytes(c), 0),
    );
  const out: KeySample[][] = new Array(pick.length);
  let next = 0;
  const worker = async () => {
    while (next < pick.length) {
      const i = next++;
      out[i] = (await sampleChunk(pick[i], request, opts)).samples;
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 8, pick.length) }, worker));
  return out.flat().map((s) => ({ key: s.key, bytes: s.bytes * scale }));
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

export function bucketId(shard: number, b: number, width = 4): string {
  return `s${pad(shard, width)}-b${pad(b, width)}`;
}

/**
 * Chooses buckets: per shard (shard = murmur3(key) mod shards), the samples sorted by key, cut where the cumulative
 * weight passes multiples of the shard's bytes / ceil(shard bytes / targetBytes). Sample weights are scaled so they
 * add up to totalInputBytes. Every shard gets at least one bucket (open range). Deterministic for the same samples.
 * Buckets are sorted by shard then range; `index` is the position in the returned array; ids sort the same way.
 */
export function chooseBuckets(
  samples: KeySample[],
  totalInputBytes: number,
  shards: number,
  targetBytes: number = PIPELINE.bucketTargetBytes,
): Bucket[] {
  const perShard: KeySample[][] = Array.from({ length: shards }, () => []);
  let sampled = 0;
  for (const s of samples) {
    perShard[shardOf(s.key, shards)].push(s);
    sampled += s.bytes;
  }
  const scale = sampled > 0 ? totalInputBytes / sampled : 0;
  const splitsPerShard: Uint8Array[][] = perShard.map((list) => {
    if (list.length === 0) return [];
    list.sort((a, b) => Buffer.compare(a.key, b.key));
    const bytes = list.reduce((t, s) => t + s.bytes * scale, 0);
    const n = Math.max(1, Math.ceil(bytes / Math.max(1, targetBytes)));
    if (n === 1) return [];
    const step = bytes / n;
    const splits: Uint8Array[] = [];
    let acc = 0;
    let nextCut = step;
    for (let i = 0; i < list.length && splits.length < n - 1; i++) {
      acc += list[i].bytes * scale;
      if (acc >= nextCut && i + 1 < list.length) {
        const k = list[i + 1].key;
        // a split is the first key of the next bucket; equal keys stay together
        if (
          Buffer.compare(k, list[i].key) !== 0 &&
          (splits.length === 0 || Buffer.compare(k, splits[splits.length - 1]) > 0)
        ) {
          splits.push(k);
        }
        while (nextCut <= acc) nextCut += step;
      }
    }
    return splits;
  });
  const maxPerShard = Math.max(1, ...splitsPerShard.map((s) => s.length + 1));
  const width = Math.max(4, String(maxPerShard - 1).length, String(shards - 1).length);
  const buckets: Bucket[] = [];
  splitsPerShard.forEach((splits, shard) => {
    const bounds = ["", ...splits.map((k) => Buffer.from(k).toString("hex")), ""];
    for (let b = 0; b + 1 < bounds.length; b++) {
      buckets.push({
        id: bucketId(shard, b, width),
        shard,
        index: buckets.length,
        lowerKey: bounds[b],
        upperKey: bounds[b + 1],
      });
    }
  });
  return buckets;
}

/**
 * Routes keys to buckets: shard by murmur3, then binary search of the shard's lower bounds. Precomputes the bounds
 * once per plan.
 */
export function makeRouter(buckets: Bucket[], shards: number): (key: Uint8Array) => number {
  const route = makeRangeRouter(buckets, shards);
  return (key: Uint8Array) => route(key, 0, key.length);
}

/** makeRouter for a key given as buf[start, end) (no view per key). */
export function makeRangeRouter(
  buckets: Bucket[],
  shards: number,
): (buf: Uint8Array, start: number, end: number) => number {
  const byShard: Array<{ lowers: Buffer[]; indexes: number[] }> = Array.from({ length: shards }, () => ({
    lowers: [],
    indexes: [],
  }));
  const sorted = [...buckets].sort(
    (a, b) => a.shard - b.shard || (a.lowerKey < b.lowerKey ? -1 : a.lowerKey > b.lowerKey ? 1 : 0),
  );
  for (const b of sorted) {
    const s = byShard[b.shard];
    if (!s) throw new RangeError(`bucket ${b.id} has shard ${b.shard}, the plan has ${shards} shards`);
    s.lowers.push(Buffer.from(b.lowerKey, "hex"));
    s.indexes.push(b.index);
  }
  byShard.forEach((s, i) => {
    if (s.indexes.length === 0) throw new RangeError(`the plan has no bucket for shard ${i}`);
  });
  return (buf: Uint8Array, start: number, end: number) => {
    const s = byShard[murmur3_32Range(buf, start, end) % shards];
    const { lowers } = s;
    // last bucket whose lowerKey <= key
    let lo = 0;
    let hi = lowers.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lowers[mid].compare(buf, start, end) <= 0) lo = mid;
      else hi = mid - 1;
    }
    return s.indexes[lo];
  };
}

/**
 * Plan's one call: sample the chunks (at most PIPELINE.sampleMaxChunks of them) and choose the buckets.
 * targetBytes defaults to PIPELINE.bucketTargetBytes (input bytes per bucket, a proxy for SST bytes).
 */
export async function chooseBucketsForPlan(args: {
  request: LoadRequest;
  chunks: Chunk[];
  inputBytes: number;
  targetBytes?: number;
  open?: OpenObject;
}): Promise<Bucket[]> {
  const target = args.targetBytes ?? PIPELINE.bucketTargetBytes;
  // small inputs need no split points: one bucket per shard, no sampling reads
  const samples = args.inputBytes <= target ? [] : await sampleChunks(args.chunks, args.request, { open: args.open });
  return chooseBuckets(samples, args.inputBytes, args.request.shards, target);
}
