/**
 * Run objects: what Partition writes per chunk, what Build reads per bucket.
 *
 *   header  24 bytes: magic "FERRYRN1" | bucketCount u32 LE | chunkIndex u32 LE | metaLength u32 LE
 *                     | crc32(header bytes 0..19) u32 LE
 *   index   bucketCount × 20 bytes: segment offset u64 LE | segment length u64 LE | record count u32 LE
 *   meta    metaLength bytes of UTF-8 JSON {chunkId, chunkIndex, source, chunkStart?, unit}
 *   segments, one per bucket with records, back to back:
 *           records: varint keyLen | key | varint valueLen | value | varint line
 *           then crc32 (zlib CRC-32) of the record bytes, u32 LE. length includes it; an empty bucket has length 0.
 *
 * Records in a segment are sorted by key bytewise, equal keys in input order (line ascending). `line` is the record's
 * line/row within the chunk: (chunkIndex, line) is the record's input position, which orders duplicates.
 * The index sits before the data so Build reads one bucket's entry with one small ranged GET.
 */
import { randomBytes } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { CorruptionError } from "../errors.js";
import { PIPELINE } from "../limits.js";
import type { ObjectReader } from "../records/source.js";
import type { ByteSink } from "../sst/types.js";
import { kWayMerge } from "./merge.js";
import { readVarint, varintLength, writeVarint } from "./varint.js";

export const RUN_MAGIC = "FERRYRN1";
export const RUN_HEADER_BYTES = 24;
export const RUN_ENTRY_BYTES = 20;

export interface RunMeta {
  chunkId: string;
  chunkIndex: number;
  source: string;
  chunkStart?: number;
  /** "line" or "row" */
  unit: string;
}

export interface RunEntry {
  offset: number;
  length: number;
  count: number;
}

export interface RunHeader {
  bucketCount: number;
  chunkIndex: number;
  metaLength: number;
}

/** One record of a run segment. `run` = the chunk index of the run it came from. */
export interface RunRecord {
  key: Uint8Array;
  value: Uint8Array;
  line: number;
  run: number;
}

/** Order of records in runs and merges: key bytewise, then input position (chunk index, line). */
export function compareRunRecords(a: RunRecord, b: RunRecord): number {
  const c = Buffer.compare(a.key, b.key);
  if (c !== 0) return c;
  return a.run - b.run || a.line - b.line;
}

export function encodeHeader(h: RunHeader): Uint8Array {
  const b = Buffer.alloc(RUN_HEADER_BYTES);
  b.write(RUN_MAGIC, 0, "latin1");
  b.writeUInt32LE(h.bucketCount, 8);
  b.writeUInt32LE(h.chunkIndex, 12);
  b.writeUInt32LE(h.metaLength, 16);
  b.writeUInt32LE(crc32(b.subarray(0, 20)), 20);
  return b;
}

export function decodeHeader(bytes: Uint8Array, name: string): RunHeader {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (b.length < RUN_HEADER_BYTES || b.toString("latin1", 0, 8) !== RUN_MAGIC) {
    throw new CorruptionError(`${name}: not a ferry run object (bad magic)`, { file: name });
  }
  if (crc32(b.subarray(0, 20)) !== b.readUInt32LE(20)) {
    throw new CorruptionError(`${name}: run header checksum mismatch`, { file: name });
  }
  return { bucketCount: b.readUInt32LE(8), chunkIndex: b.readUInt32LE(12), metaLength: b.readUInt32LE(16) };
}

function decodeEntry(b: Buffer, at: number): RunEntry {
  return {
    offset: Number(b.readBigUInt64LE(at)),
    length: Number(b.readBigUInt64LE(at + 8)),
    count: b.readUInt32LE(at + 16),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Writing

interface BucketBuf {
  buf: Buffer;
  len: number;
  /** per record: start offset in buf, key start, key length */
  starts: number[];
  keyStarts: number[];
  keyLens: number[];
  /** first 8 key bytes as two big-endian u32 (zero-padded): most comparisons end here */
  pre1: number[];
  pre2: number[];
}

interface SpillSegment {
  offset: number;
  length: number;
  count: number;
}

export interface RunWriterOptions {
  bucketCount: number;
  meta: RunMeta;
  /** sorted bytes kept in memory before a sub-run is spilled to local disk (default PIPELINE.partitionMemoryBytes) */
  memoryBytes?: number;
  /** where spills go (default os.tmpdir()) */
  tmpDir?: string;
}

export interface RunSummary {
  bytes: number;
  records: number;
  spills: number;
  entries: RunEntry[];
}

/**
 * Collects records per bucket, sorts each bucket (key, then input order), and writes the run object to a ByteSink.
 * Memory is bounded: past `memoryBytes` the buffered records are sorted and spilled to a local file as a sub-run;
 * finish() merges the sub-runs per bucket.
 */
export class RunWriter {
  private readonly buckets: Array<BucketBuf | undefined>;
  private memory = 0;
  private records = 0;
  private readonly memoryBytes: number;
  private spillDir?: string;
  private spillFiles: Array<{ path: string; segs: Array<SpillSegment | undefined> }> = [];
  /** per bucket: records and record bytes so far (spilled + in memory) */
  private readonly counts: number[];
  private readonly lengths: number[];

  constructor(private readonly opts: RunWriterOptions) {
    this.buckets = new Array(opts.bucketCount).fill(undefined);
    this.counts = new Array(opts.bucketCount).fill(0);
    this.lengths = new Array(opts.bucketCount).fill(0);
    this.memoryBytes = opts.memoryBytes ?? PIPELINE.partitionMemoryBytes;
  }

  /** Adds one record to bucket `b`. Records must be added in input order (line ascending). */
  add(b: number, key: Uint8Array, value: Uint8Array, line: number): void {
    let bb = this.buckets[b];
    if (!bb) {
      bb = { buf: Buffer.allocUnsafe(4096), len: 0, starts: [], keyStarts: [], keyLens: [], pre1: [], pre2: [] };
      this.buckets[b] = bb;
    }
    const need = varintLength(key.length) + key.length + varintLength(value.length) + value.length + varintLength(line);
    if (bb.len + need > bb.buf.length) {
      let cap = bb.buf.length * 2;
      while (cap < bb.len + need) cap *= 2;
      const nb = Buffer.allocUnsafe(cap);
      bb.buf.copy(nb, 0, 0, bb.len);
      this.memory += cap - bb.buf.length;
      bb.buf = nb;
    }
    const start = bb.len;
    let p = writeVarint(bb.buf, start, key.length);
    bb.keyStarts.push(p);
    bb.keyLens.push(key.length);
    const kl = key.length;
    bb.pre1.push(
      (kl > 0 ? key[0] : 0) * 0x1000000 +
        (kl > 1 ? key[1] << 16 : 0) +
        (kl > 2 ? key[2] << 8 : 0) +
        (kl > 3 ? key[3] : 0),
    );
    bb.pre2.push(
      (kl > 4 ? key[4] : 0) * 0x1000000 +
        (kl > 5 ? key[5] << 16 : 0) +
        (kl > 6 ? key[6] << 8 : 0) +
        (kl > 7 ? key[7] : 0),
    );
    bb.buf.set(key, p);
    p += key.length;
    p = writeVarint(bb.buf, p, value.length);
    bb.buf.set(value, p);
    p += value.length;
    p = writeVarint(bb.buf, p, line);
    bb.starts.push(start);
    bb.len = p;
    this.memory += 40;
    this.records++;
    this.counts[b]++;
    this.lengths[b] += need;
    if (this.memory > this.memoryBytes) this.spill();
  }

  get recordCount(): number {
    return this.records;
  }

  /** sorted order of a bucket's in-memory records (stable: equal keys keep input order) */
  private order(bb: BucketBuf): number[] {
    const idx = Array.from({ length: bb.starts.length }, (_, i) => i);
    const { buf, keyStarts, keyLens, pre1, pre2 } = bb;
    idx.sort((i, j) => {
      const d = pre1[i] - pre1[j] || pre2[i] - pre2[j];
      if (d !== 0) return d;
      const c = buf.compare(buf, keyStarts[j], keyStarts[j] + keyLens[j], keyStarts[i], keyStarts[i] + keyLens[i]);
      return c !== 0 ? c : i - j;
    });
    return idx;
  }

  private recordEnd(bb: BucketBuf, i: number): number {
    return i + 1 < bb.starts.length ? bb.starts[i + 1] : bb.len;
  }

  private spill(): void {
    this.spillDir ??= mkdtempSync(join(this.opts.tmpDir ?? tmpdir(), "ferry-run-"));
    const path = join(this.spillDir, `spill-${this.spillFiles.length}-${randomBytes(4).toString("hex")}`);
    const fd = openSync(path, "w");
    const segs: Array<SpillSegment | undefined> = new Array(this.opts.bucketCount).fill(undefined);
    let off = 0;
    try {
      const out = Buffer.allocUnsafe(1 << 20);
      let o = 0;
      const flush = () => {
        let w = 0;
        while (w < o) w += writeSync(fd, out, w, o - w);
        off += o;
        o = 0;
      };
      for (let b = 0; b < this.buckets.length; b++) {
        const bb = this.buckets[b];
        if (!bb || bb.starts.length === 0) continue;
        const segStart = off + o;
        for (const i of this.order(bb)) {
          const s = bb.starts[i];
          const e = this.recordEnd(bb, i);
          if (e - s > out.length - o) flush();
          if (e - s > out.length) {
            let w = 0;
            while (w < e - s) w += writeSync(fd, bb.buf, s + w, e - s - w);
            off += e - s;
          } else {
            bb.buf.copy(out, o, s, e);
            o += e - s;
          }
        }
        segs[b] = { offset: segStart, length: off + o - segStart, count: bb.starts.length };
      }
      flush();
    } finally {
      closeSync(fd);
    }
    this.spillFiles.push({ path, segs });
    this.buckets.fill(undefined);
    this.memory = 0;
  }

  /** Writes the run object (header, index, meta, segments) to `sink` and closes it. */
  async finish(sink: ByteSink): Promise<RunSummary> {
    try {
      return await this.writeAll(sink);
    } catch (e) {
      await sink.abort?.(e);
      throw e;
    } finally {
      if (this.spillDir) rmSync(this.spillDir, { recursive: true, force: true });
    }
  }

  private async writeAll(sink: ByteSink): Promise<RunSummary> {
    const n = this.opts.bucketCount;
    const meta = Buffer.from(JSON.stringify(this.opts.meta), "utf8");
    const indexBytes = Buffer.alloc(n * RUN_ENTRY_BYTES);
    const entries: RunEntry[] = [];
    let off = RUN_HEADER_BYTES + indexBytes.length + meta.length;
    for (let b = 0; b < n; b++) {
      const length = this.counts[b] > 0 ? this.lengths[b] + 4 : 0;
      entries.push({ offset: off, length, count: this.counts[b] });
      indexBytes.writeBigUInt64LE(BigInt(off), b * RUN_ENTRY_BYTES);
      indexBytes.writeBigUInt64LE(BigInt(length), b * RUN_ENTRY_BYTES + 8);
      indexBytes.writeUInt32LE(this.counts[b], b * RUN_ENTRY_BYTES + 16);
      off += length;
    }
    const out = new ChunkedOut(sink);
    await out.write(encodeHeader({ bucketCount: n, chunkIndex: this.opts.meta.chunkIndex, metaLength: meta.length }));
    await out.write(indexBytes);
    await out.write(meta);
    const fds = this.spillFiles.map((f) => openSync(f.path, "r"));
    try {
      for (let b = 0; b < n; b++) {
        if (this.counts[b] === 0) continue;
        let crc = 0;
        const emit = async (bytes: Uint8Array) => {
          crc = crc32(bytes, crc);
          await out.write(bytes);
        };
        if (this.spillFiles.length === 0) {
          const bb = this.buckets[b] as BucketBuf;
          for (const i of this.order(bb)) await emit(bb.buf.subarray(bb.starts[i], this.recordEnd(bb, i)));
        } else {
          // merge the spilled sub-segments and the in-memory rest; ties by line keep input order
          const sources: AsyncIterable<RawRec>[] = [];
          this.spillFiles.forEach((f, k) => {
            const s = f.segs[b];
            if (s) sources.push(rawRecords(fileRangePieces(fds[k], s.offset, s.length)));
          });
          const bb = this.buckets[b];
          if (bb && bb.starts.length > 0) {
            const order = this.order(bb);
            sources.push(
              (async function* () {
                for (const i of order)
                  yield* rawRecords([
                    bb.buf.subarray(bb.starts[i], i + 1 < bb.starts.length ? bb.starts[i + 1] : bb.len),
                  ]);
              })(),
            );
          }
          for await (const r of kWayMerge(sources, compareRaw)) await emit(r.bytes);
        }
        const c = Buffer.alloc(4);
        c.writeUInt32LE(crc >>> 0);
        await out.write(c);
      }
    } finally {
      for (const fd of fds) closeSync(fd);
    }
    await out.flush();
    await sink.close();
    return { bytes: off, records: this.records, spills: this.spillFiles.length, entries };
  }
}

/** Coalesces small writes into ~1 MiB chunks for the sink (which owns what it is handed). */
class ChunkedOut {
  private buf = Buffer.allocUnsafe(1 << 20);
  private o = 0;
  constructor(private readonly sink: ByteSink) {}
  async write(bytes: Uint8Array): Promise<void> {
    if (bytes.length > this.buf.length - this.o) await this.flush();
    if (bytes.length >= this.buf.length) {
      const p = this.sink.write(Uint8Array.from(bytes));
      if (p) await p;
      return;
    }
    this.buf.set(bytes, this.o);
    this.o += bytes.length;
  }
  async flush(): Promise<void> {
    if (this.o === 0) return;
    const chunk = this.buf.subarray(0, this.o);
    this.buf = Buffer.allocUnsafe(1 << 20);
    this.o = 0;
    const p = this.sink.write(chunk);
    if (p) await p;
  }
}

interface RawRec {
  key: Uint8Array;
  line: number;
  bytes: Uint8Array;
}
function compareRaw(a: RawRec, b: RawRec): number {
  return Buffer.compare(a.key, b.key) || a.line - b.line;
}

function* fileRangePieces(fd: number, offset: number, length: number): Iterable<Uint8Array> {
  let pos = offset;
  const end = offset + length;
  while (pos < end) {
    const n = Math.min(1 << 20, end - pos);
    const b = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) got += readSync(fd, b, got, n - got, pos + got);
    pos += n;
    yield b;
  }
}

/** Parses record bytes (no trailing crc) into records with their raw bytes. */
async function* rawRecords(pieces: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): AsyncIterable<RawRec> {
  for await (const r of parseRecords(pieces, "<spill>", 0)) yield { key: r.key, line: r.line, bytes: r.raw };
}

// ---------------------------------------------------------------------------------------------------------------
// Reading

/** Parses a stream of segment record bytes into batches (one per piece). Keys/values are views safe to keep. */
export async function* parseRecordBatches(
  pieces: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  name: string,
  run: number,
  withRaw = false,
): AsyncIterable<Array<RunRecord & { raw?: Uint8Array }>> {
  let buf: Buffer = Buffer.alloc(0);
  let pos = 0;
  for await (const p of pieces) {
    // the previous buffer is never written again: records handed out stay valid
    buf = pos < buf.length ? Buffer.concat([buf.subarray(pos), p]) : Buffer.from(p.buffer, p.byteOffset, p.length);
    pos = 0;
    const batch: Array<RunRecord & { raw?: Uint8Array }> = [];
    const end = buf.length;
    for (;;) {
      const start = pos;
      const kl = readVarint(buf, pos, end);
      if (!kl) break;
      const ke = kl[1] + kl[0];
      if (ke > end) break;
      const vl = readVarint(buf, ke, end);
      if (!vl) break;
      const ve = vl[1] + vl[0];
      if (ve > end) break;
      const ln = readVarint(buf, ve, end);
      if (!ln) break;
      pos = ln[1];
      const rec: RunRecord & { raw?: Uint8Array } = {
        key: buf.subarray(kl[1], ke),
        value: buf.subarray(vl[1], ve),
        line: ln[0],
        run,
      };
      if (withRaw) rec.raw = buf.subarray(start, pos);
      batch.push(rec);
    }
    if (batch.length > 0) yield batch;
  }
  if (pos < buf.length) throw new CorruptionError(`${name}: segment ends inside a record`, { file: name });
}

/** Parses a stream of segment record bytes, one record at a time, with each record's raw bytes. */
export async function* parseRecords(
  pieces: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  name: string,
  run: number,
): AsyncIterable<RunRecord & { raw: Uint8Array }> {
  for await (const batch of parseRecordBatches(pieces, name, run, true))
    yield* batch as Array<RunRecord & { raw: Uint8Array }>;
}

/** Reads a run's header and full index (and meta). */
export async function readRunIndex(
  reader: ObjectReader,
): Promise<{ header: RunHeader; entries: RunEntry[]; meta: RunMeta }> {
  const head = await reader.read(0, RUN_HEADER_BYTES);
  const header = decodeHeader(head, reader.url);
  const end = RUN_HEADER_BYTES + header.bucketCount * RUN_ENTRY_BYTES + header.metaLength;
  const b = Buffer.from(await reader.read(0, end));
  const entries: RunEntry[] = [];
  for (let i = 0; i < header.bucketCount; i++) entries.push(decodeEntry(b, RUN_HEADER_BYTES + i * RUN_ENTRY_BYTES));
  const meta = JSON.parse(b.toString("utf8", end - header.metaLength, end)) as RunMeta;
  return { header, entries, meta };
}

/** Reads the header and one bucket's index entry (one or two small ranged reads). */
export async function readRunEntry(
  reader: ObjectReader,
  bucketIndex: number,
): Promise<{ header: RunHeader; entry: RunEntry }> {
  const entryAt = RUN_HEADER_BYTES + bucketIndex * RUN_ENTRY_BYTES;
  let header: RunHeader;
  let eb: Buffer;
  if (entryAt < 4096) {
    const b = Buffer.from(await reader.read(0, entryAt + RUN_ENTRY_BYTES));
    header = decodeHeader(b, reader.url);
    eb = b.subarray(entryAt);
  } else {
    const [h, e] = await Promise.all([
      reader.read(0, RUN_HEADER_BYTES),
      reader.read(entryAt, entryAt + RUN_ENTRY_BYTES),
    ]);
    header = decodeHeader(h, reader.url);
    eb = Buffer.from(e);
  }
  if (bucketIndex >= header.bucketCount) {
    throw new CorruptionError(`${reader.url}: has ${header.bucketCount} buckets, bucket ${bucketIndex} asked for`, {
      file: reader.url,
    });
  }
  return { header, entry: decodeEntry(eb, 0) };
}

/** Reads a run's meta (only needed to name the origin of records in messages). */
export async function readRunMeta(reader: ObjectReader): Promise<RunMeta> {
  return (await readRunIndex(reader)).meta;
}

/**
 * Streams one segment's records in batches (the reader's stream() reads it in windows of ranged GETs, consumed
 * lazily: memory per open segment stays small; build opens runs with PIPELINE.segmentReadBytes windows) and verifies
 * its checksum and record count at the end. `run` is the run's chunk index.
 */
export async function* readSegmentBatches(
  reader: ObjectReader,
  entry: RunEntry,
  run: number,
): AsyncIterable<RunRecord[]> {
  if (entry.length === 0) return;
  if (entry.length < 4)
    throw new CorruptionError(`${reader.url}: segment shorter than its checksum`, { file: reader.url });
  const dataEnd = entry.offset + entry.length - 4;
  let crc = 0;
  async function* pieces(): AsyncIterable<Uint8Array> {
    for await (const p of reader.stream(entry.offset, dataEnd)) {
      crc = crc32(p, crc);
      yield p;
    }
  }
  let n = 0;
  for await (const batch of parseRecordBatches(pieces(), reader.url, run)) {
    n += batch.length;
    yield batch;
  }
  const tail = Buffer.from(await reader.read(dataEnd, dataEnd + 4));
  if (tail.length !== 4 || tail.readUInt32LE(0) !== crc >>> 0) {
    throw new CorruptionError(`${reader.url}: segment at ${entry.offset} checksum mismatch`, {
      file: reader.url,
      offset: entry.offset,
    });
  }
  if (n !== entry.count) {
    throw new CorruptionError(`${reader.url}: segment at ${entry.offset} has ${n} records, index says ${entry.count}`, {
      file: reader.url,
      offset: entry.offset,
    });
  }
}

/** readSegmentBatches one record at a time. */
export async function* readSegment(reader: ObjectReader, entry: RunEntry, run: number): AsyncIterable<RunRecord> {
  for await (const batch of readSegmentBatches(reader, entry, run)) yield* batch;
}
