/**
 * Run objects: what Partition writes per chunk, what Build reads per bucket.
 *
 *   header  24 bytes: magic "FERRYRN2" | bucketCount u32 LE | chunkIndex u32 LE | metaLength u32 LE
 *                     | crc32c(header bytes 0..19) u32 LE
 *   index   bucketCount × 20 bytes: segment offset u64 LE | segment length u64 LE | record count u32 LE
 *   meta    metaLength bytes of UTF-8 JSON {chunkId, chunkIndex, source, chunkStart?, unit}
 *   segments, one per bucket with records, back to back:
 *           records: varint keyLen | key | varint valueLen | value | varint line
 *           then crc32c (CRC-32C, Castagnoli) of the record bytes, u32 LE. length includes it; an empty bucket has
 *           length 0.
 * (FERRYRN1, the format before, had zlib's CRC-32 in both places; it is rejected as a bad magic.)
 *
 * Records in a segment are sorted by key bytewise, equal keys in input order (line ascending). `line` is the record's
 * line/row within the chunk: (chunkIndex, line) is the record's input position, which orders duplicates.
 * The index sits before the data so Build reads one bucket's entry with one small ranged GET.
 */
import { randomBytes } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CorruptionError } from "../errors.js";
import { PIPELINE } from "../limits.js";
import type { ObjectReader } from "../records/source.js";
import { crc32c } from "../sst/crc32c.js";
import type { ByteSink } from "../sst/types.js";
import { mergeSegmentColumns } from "./merge.js";
import { keyPrefix, sortKeys } from "./sort.js";
import { decodeVarint, varintEnd, varintLength, writeVarint } from "./varint.js";

export const RUN_MAGIC = "FERRYRN2";
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
  b.writeUInt32LE(crc32c(b.subarray(0, 20)), 20);
  return b;
}

export function decodeHeader(bytes: Uint8Array, name: string): RunHeader {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (b.length < RUN_HEADER_BYTES || b.toString("latin1", 0, 8) !== RUN_MAGIC) {
    throw new CorruptionError(`${name}: not a ferry run object (bad magic)`, { file: name });
  }
  if (crc32c(b.subarray(0, 20)) !== b.readUInt32LE(20)) {
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

/** memory counted per buffered record besides its bytes: six u32 columns (+ growth slack) and the sort's scratch */
export const RECORD_OVERHEAD_BYTES = 48;
/** output pieces handed to the sink */
const OUT_BYTES = 1 << 20;

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
  /** bytes reserved after the output staging for inputStage() (default 0: inputStage reallocates page 0) */
  inputStageBytes?: number;
  /**
   * Supplies page 0 (the arena, the output staging and the input stage: `bytes` in all) instead of a new
   * Uint8Array; the array may be longer (the rest is the supplier's). Used to put it in a WebAssembly memory
   * (core/records/jsonl-wasm.ts): then inputStage() must fit in inputStageBytes, since page 0 is never replaced.
   */
  arena?: (bytes: number) => Uint8Array;
  /**
   * With `arena`: the supplier's gatherer of records within page 0 (core/records/jsonl-wasm.ts, in WebAssembly),
   * asked when the run is written. The sorted records are then copied out by it, not one copyWithin per record.
   */
  gather?: () => RecordGather | undefined;
}

/**
 * Copies records of page 0 to the output staging in a given order (RunWriter.writeAll). Positions are offsets in
 * page 0: `order` (u32 record indexes), `starts` and `lens` (u32 per record) are tables there. copy() moves records
 * order[k], order[k + 1], ... back to back to [dst, dst + room), up to order index `end` or the first record that
 * does not fit, and returns the order index reached; `bytes` = what the last copy() wrote.
 */
export interface RecordGather {
  copy(order: number, starts: number, lens: number, k: number, end: number, dst: number, room: number): number;
  readonly bytes: number;
}

export interface RunSummary {
  bytes: number;
  records: number;
  spills: number;
  entries: RunEntry[];
}

/**
 * Collects records, sorts them per bucket (key, then input order), and writes the run object to a ByteSink.
 *
 * Records are appended in their encoded form (varint keyLen, key, varint valueLen, value, varint line) to an arena,
 * so writing a segment is copying byte ranges; u32 columns say where each record is (page, start, length, key start,
 * key length, bucket, key prefix). sortKeys orders them without per-record objects. The arena is one array of
 * `memoryBytes` (the OS commits its pages as they are written) followed by the output staging area, so writing the
 * sorted records is copyWithin (no view per record); only a record that does not fit gets a page of its own.
 * Memory is bounded: past `memoryBytes` the buffered records are sorted and spilled to a local file as a sub-run;
 * finish() merges the sub-runs per bucket.
 */
export class RunWriter {
  /** pages[0] is the arena: [0, memoryBytes) records, then OUT_BYTES of output staging */
  private pages: Uint8Array[];
  private cur: Uint8Array;
  /** where records may go in the current page */
  private limit: number;
  private pos = 0;
  /** buffered records: count, capacity, columns */
  private n = 0;
  private cap = 0;
  private rPage = new Uint32Array(0);
  private rStart = new Uint32Array(0);
  private rLen = new Uint32Array(0);
  private rKeyStart = new Uint32Array(0);
  private rKeyLen = new Uint32Array(0);
  private rBucket = new Uint32Array(0);
  /** the keys' first 8 bytes and length class (sortKeys' depth-0 prefixes), taken while the key is in cache */
  private rHi = new Uint32Array(0);
  private rLo = new Uint32Array(0);
  private rLc = new Uint8Array(0);
  private memory = 0;
  private records = 0;
  private readonly memoryBytes: number;
  /** page 0's length that is the writer's (the supplied arena may be longer) */
  private readonly pageBytes: number;
  private spillDir?: string;
  private spillFiles: Array<{ path: string; segs: Array<SpillSegment | undefined> }> = [];
  /** per bucket: records and record bytes so far (spilled + in memory) */
  private readonly counts: Float64Array;
  private readonly lengths: Float64Array;

  constructor(private readonly opts: RunWriterOptions) {
    this.counts = new Float64Array(opts.bucketCount);
    this.lengths = new Float64Array(opts.bucketCount);
    this.memoryBytes = opts.memoryBytes ?? PIPELINE.partitionMemoryBytes;
    this.limit = Math.max(4096, this.memoryBytes);
    const bytes = this.limit + OUT_BYTES + (opts.inputStageBytes ?? 0);
    this.pageBytes = bytes;
    this.cur = opts.arena ? opts.arena(bytes) : new Uint8Array(bytes);
    if (this.cur.length < bytes) throw new RangeError("RunWriter: the arena supplied is smaller than asked");
    this.pages = [this.cur];
  }

  /** Adds one record to bucket `b`. Records must be added in input order (line ascending). */
  add(b: number, key: Uint8Array, value: Uint8Array, line: number): void {
    const kl = key.length;
    const vl = value.length;
    const need = varintLength(kl) + kl + varintLength(vl) + vl + varintLength(line);
    const buf = this.space(need);
    const start = this.pos;
    let p = writeVarint(buf, start, kl);
    const ks = p;
    buf.set(key, p);
    p += kl;
    p = writeVarint(buf, p, vl);
    buf.set(value, p);
    p = writeVarint(buf, p + vl, line);
    this.pos = p;
    this.push(b, start, need, ks, kl);
  }

  /**
   * Adds one record to bucket `b` from byte ranges without views: the key is keySrc[ks, ke), the value the
   * concatenation of valSrc[segs[2j], segs[2j+1]) for j < nsegs (valueLen bytes in all). Input order as for add().
   */
  addRanges(
    b: number,
    keySrc: Uint8Array,
    ks: number,
    ke: number,
    valSrc: Uint8Array,
    segs: Int32Array,
    nsegs: number,
    valueLen: number,
    line: number,
  ): void {
    const kl = ke - ks;
    const need =
      (kl < 128 ? 1 : varintLength(kl)) +
      kl +
      (valueLen < 128 ? 1 : valueLen < 16384 ? 2 : varintLength(valueLen)) +
      valueLen +
      (line < 16384 ? (line < 128 ? 1 : 2) : line < 2097152 ? 3 : varintLength(line));
    const buf = this.space(need);
    const start = this.pos;
    let p = start;
    if (kl < 128) buf[p++] = kl;
    else p = writeVarint(buf, p, kl);
    const kStart = p;
    p = copyRange(keySrc, ks, ke, buf, p);
    if (valueLen < 128) buf[p++] = valueLen;
    else p = writeVarint(buf, p, valueLen);
    if (valSrc === buf) {
      // the input sits in the arena's input stage: move the bytes, no view
      for (let j = 0; j < nsegs; j++) {
        const a = segs[2 * j];
        const z = segs[2 * j + 1];
        if (z - a > 16) buf.copyWithin(p, a, z);
        else for (let x = a; x < z; x++) buf[p + x - a] = buf[x];
        p += z - a;
      }
    } else for (let j = 0; j < nsegs; j++) p = copyRange(valSrc, segs[2 * j], segs[2 * j + 1], buf, p);
    p = writeVarint(buf, p, line);
    this.pos = p;
    this.push(b, start, need, kStart, kl);
  }

  /**
   * Where a record may be written in place (mapAppend, core/records/jsonl-wasm.ts): at arena[appendPos, appendLimit)
   * of page 0; -1 when the current page is not page 0 (then add()/addRanges()). Follow with pushWritten().
   */
  get appendPos(): number {
    return this.cur === this.pages[0] ? this.pos : -1;
  }

  get appendLimit(): number {
    return this.limit;
  }

  /**
   * How much more may be accounted before a spill: records written in place whose lengths + RECORD_OVERHEAD_BYTES
   * each add up to at most this go in with pushWrittenRows without one (the record past it: pushWritten, which spills).
   */
  get appendRoom(): number {
    return Math.min(0x7fffffff, this.memoryBytes - this.memory);
  }

  /**
   * Accounts a record of `len` bytes already written in its encoded form at page 0's appendPos (within
   * appendLimit), key at [keyStart, keyStart + keyLen), with its sort prefix (as sort.ts keyPrefix): the same state
   * as addRanges() would leave.
   */
  pushWritten(b: number, len: number, keyStart: number, keyLen: number, hi: number, lo: number, lc: number): void {
    const start = this.pos;
    this.pos = start + len;
    const i = this.column(b, start, len, keyStart, keyLen);
    this.rHi[i] = hi;
    this.rLo[i] = lo;
    this.rLc[i] = lc;
    this.account(b, len);
  }

  /**
   * pushWritten for `k` records written back to back from appendPos, `rows` holding 7 values per record: bucket,
   * length, key start, key length, sort prefix hi, lo, length class (core/records/jsonl-wasm.ts appendLines). Their
   * lengths + RECORD_OVERHEAD_BYTES must fit in appendRoom (no spill in between).
   */
  pushWrittenRows(rows: Uint32Array, k: number): void {
    for (let j = 0, o = 0; j < k; j++, o += 7) {
      this.pushWritten(rows[o], rows[o + 1], rows[o + 2], rows[o + 3], rows[o + 4], rows[o + 5], rows[o + 6]);
    }
  }

  get recordCount(): number {
    return this.records;
  }

  /**
   * A region of `bytes` after the arena and its output staging, for the caller's input (scanLinesStaged): records
   * added from ranges of the arena array are moved with copyWithin. Call before adding records. The region is part
   * of the same lazily committed array: only what the input touches becomes resident.
   */
  inputStage(bytes: number): { buf: Uint8Array; start: number; size: number } {
    if (this.n > 0 || this.records > 0) throw new RangeError("RunWriter.inputStage: call before adding records");
    const start = this.limit + OUT_BYTES;
    if (this.pages[0].length < start + bytes) {
      if (this.opts.arena) throw new RangeError("RunWriter.inputStage: larger than the inputStageBytes supplied");
      this.cur = new Uint8Array(start + bytes);
      this.pages[0] = this.cur;
    }
    return { buf: this.pages[0], start, size: bytes };
  }

  /** the current page with `need` bytes free at this.pos (a page of its own when the arena is full) */
  private space(need: number): Uint8Array {
    if (this.pos + need <= this.limit) return this.cur;
    this.cur = new Uint8Array(need);
    this.limit = need;
    this.pages.push(this.cur);
    this.pos = 0;
    return this.cur;
  }

  private push(b: number, start: number, len: number, keyStart: number, keyLen: number): void {
    const i = this.column(b, start, len, keyStart, keyLen);
    keyPrefix(this.cur, keyStart, keyStart + keyLen, this.rHi, this.rLo, this.rLc, i);
    this.account(b, len);
  }

  /** a new record's columns (page, start, length, key, bucket); the caller sets its sort prefix */
  private column(b: number, start: number, len: number, keyStart: number, keyLen: number): number {
    if (this.n === this.cap) this.grow();
    const i = this.n++;
    this.rPage[i] = this.pages.length - 1;
    this.rStart[i] = start;
    this.rLen[i] = len;
    this.rKeyStart[i] = keyStart;
    this.rKeyLen[i] = keyLen;
    this.rBucket[i] = b;
    return i;
  }

  private account(b: number, len: number): void {
    this.records++;
    this.counts[b]++;
    this.lengths[b] += len;
    this.memory += len + RECORD_OVERHEAD_BYTES;
    if (this.memory > this.memoryBytes) this.spill();
  }

  private grow(): void {
    // first allocation sized for a full arena of ~128-byte records (zeroed typed arrays are committed lazily, so the
    // untouched part costs no memory); doubling after that
    const cap = this.cap > 0 ? this.cap * 2 : Math.max(1024, Math.min(1 << 21, Math.floor(this.memoryBytes / 128)));
    const g = (a: Uint32Array) => {
      const x = new Uint32Array(cap);
      x.set(a.subarray(0, this.n));
      return x;
    };
    this.rPage = g(this.rPage);
    this.rStart = g(this.rStart);
    this.rLen = g(this.rLen);
    this.rKeyStart = g(this.rKeyStart);
    this.rKeyLen = g(this.rKeyLen);
    this.rBucket = g(this.rBucket);
    this.rHi = g(this.rHi);
    this.rLo = g(this.rLo);
    const lc = new Uint8Array(cap);
    lc.set(this.rLc.subarray(0, this.n));
    this.rLc = lc;
    this.cap = cap;
  }

  /** sorted order of the buffered records and where each bucket starts in it */
  private sorted(): { order: Uint32Array; starts: Uint32Array } {
    const starts = new Uint32Array(this.opts.bucketCount + 1);
    const order = sortKeys(
      {
        n: this.n,
        pages: this.pages,
        page: this.rPage,
        keyStart: this.rKeyStart,
        keyLen: this.rKeyLen,
        bucket: this.rBucket,
        bucketCount: this.opts.bucketCount,
        prefixHi: this.rHi,
        prefixLo: this.rLo,
        prefixLen: this.rLc,
      },
      starts,
    );
    return { order, starts };
  }

  /**
   * The supplier's gatherer (WebAssembly) when every record is in page 0 and the order, start and length tables fit
   * in the arena at [tab, limit): the tables are written there and gather.copy(tab, tab + 4n, tab + 8n, …) copies
   * records out in order. Undefined: copy them one by one.
   */
  private gatherer(order: Uint32Array, tab: number, limit: number): RecordGather | undefined {
    const n = this.n;
    const gather = this.pages.length === 1 ? this.opts.gather?.() : undefined;
    if (gather === undefined || tab + 12 * n > limit) return undefined;
    const arena = this.pages[0];
    const cols = new Uint32Array(arena.buffer, arena.byteOffset + tab, 3 * n);
    cols.set(order.subarray(0, n));
    cols.set(this.rStart.subarray(0, n), n);
    cols.set(this.rLen.subarray(0, n), 2 * n);
    return gather;
  }

  private spill(): void {
    this.spillDir ??= mkdtempSync(join(this.opts.tmpDir ?? tmpdir(), "ferry-run-"));
    const path = join(this.spillDir, `spill-${this.spillFiles.length}-${randomBytes(4).toString("hex")}`);
    const fd = openSync(path, "w");
    const segs: Array<SpillSegment | undefined> = new Array(this.opts.bucketCount).fill(undefined);
    const { order, starts } = this.sorted();
    const { pages, rPage, rStart, rLen } = this;
    const arena = pages[0];
    const stage = Math.max(4096, this.memoryBytes);
    let off = 0;
    try {
      const out = arena.subarray(stage, stage + OUT_BYTES);
      let o = 0;
      const flush = () => {
        let w = 0;
        while (w < o) w += writeSync(fd, out, w, o - w);
        off += o;
        o = 0;
      };
      // the tables between the records and the staging area (the budget counts RECORD_OVERHEAD_BYTES a record on
      // top of its bytes, so they fit), as writeAll does
      const n = this.n;
      const tab = (this.pos + 3) & ~3;
      const gather = this.gatherer(order, tab, stage);
      for (let b = 0; b < this.opts.bucketCount; b++) {
        if (starts[b + 1] === starts[b]) continue;
        const segStart = off + o;
        const end = starts[b + 1];
        for (let k = starts[b]; k < end; k++) {
          if (gather) {
            k = gather.copy(tab, tab + 4 * n, tab + 8 * n, k, end, stage + o, OUT_BYTES - o);
            o += gather.bytes;
            if (k === end) break;
          }
          const i = order[k];
          const page = pages[rPage[i]];
          const s = rStart[i];
          const len = rLen[i];
          if (len > out.length - o) flush();
          if (len > out.length) {
            let w = 0;
            while (w < len) w += writeSync(fd, page, s + w, len - w);
            off += len;
          } else if (rPage[i] === 0) {
            arena.copyWithin(stage + o, s, s + len);
            o += len;
          } else {
            out.set(page.subarray(s, s + len), o);
            o += len;
          }
        }
        segs[b] = { offset: segStart, length: off + o - segStart, count: starts[b + 1] - starts[b] };
      }
      flush();
    } finally {
      closeSync(fd);
    }
    this.spillFiles.push({ path, segs });
    // the arena is used again from its start
    this.pages.length = 1;
    this.cur = this.pages[0];
    this.limit = Math.max(4096, this.memoryBytes);
    this.pos = 0;
    this.n = 0;
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
    // with spills, the rest goes to disk too (before the staging area is used for output) and all are merged
    if (this.spillFiles.length > 0 && this.n > 0) this.spill();
    const nb = this.opts.bucketCount;
    const meta = Buffer.from(JSON.stringify(this.opts.meta), "utf8");
    const indexBytes = Buffer.alloc(nb * RUN_ENTRY_BYTES);
    const entries: RunEntry[] = [];
    let off = RUN_HEADER_BYTES + indexBytes.length + meta.length;
    for (let b = 0; b < nb; b++) {
      const length = this.counts[b] > 0 ? this.lengths[b] + 4 : 0;
      entries.push({ offset: off, length, count: this.counts[b] });
      indexBytes.writeBigUInt64LE(BigInt(off), b * RUN_ENTRY_BYTES);
      indexBytes.writeBigUInt64LE(BigInt(length), b * RUN_ENTRY_BYTES + 8);
      indexBytes.writeUInt32LE(this.counts[b], b * RUN_ENTRY_BYTES + 16);
      off += length;
    }
    const out = new SegmentOut(sink, this.pages[0], Math.max(4096, this.memoryBytes));
    await out.write(encodeHeader({ bucketCount: nb, chunkIndex: this.opts.meta.chunkIndex, metaLength: meta.length }));
    await out.write(indexBytes);
    await out.write(meta);
    if (this.spillFiles.length === 0) {
      const { order, starts } = this.sorted();
      const { pages, rPage, rStart, rLen } = this;
      const arena = pages[0];
      const stage = out.stage;
      // the tables after the staging area (the input stage, free now)
      const n = this.n;
      const tab = (stage + OUT_BYTES + 3) & ~3;
      const gather = this.gatherer(order, tab, this.pageBytes);
      for (let b = 0; b < nb; b++) {
        const end = starts[b + 1];
        let k = starts[b];
        if (k === end) continue;
        out.beginSegment();
        while (k < end) {
          if (gather) {
            k = gather.copy(tab, tab + 4 * n, tab + 8 * n, k, end, stage + out.o, OUT_BYTES - out.o);
            out.o += gather.bytes;
            if (k === end) break;
          }
          const i = order[k++];
          const s = rStart[i];
          const len = rLen[i];
          // an arena record that fits the staging area is moved within the arena; else (or the gatherer stopped at
          // a record that does not fit) it goes through put()
          if (!gather && rPage[i] === 0 && len <= OUT_BYTES - out.o) {
            arena.copyWithin(stage + out.o, s, s + len);
            out.o += len;
          } else await out.put(pages[rPage[i]].subarray(s, s + len));
        }
        await out.endSegment();
      }
    } else {
      const fds = this.spillFiles.map((f) => openSync(f.path, "r"));
      try {
        for (let b = 0; b < nb; b++) {
          if (this.counts[b] === 0) continue;
          out.beginSegment();
          // merge the spilled sub-segments in column form (Build's merge: every source is run 0 of this chunk, so
          // ties go by line, i.e. input order); each record is copied out as the bytes it was spilled as
          const sources: AsyncIterable<SegmentBatch>[] = [];
          this.spillFiles.forEach((f, k) => {
            const s = f.segs[b];
            if (s)
              sources.push(parseSegmentColumns(fileRangePieces(fds[k], s.offset, s.length), `${f.path} (spill)`, 0));
          });
          for await (const m of mergeSegmentColumns(sources)) {
            for (let x = 0; x < m.n; x++) {
              const bt = m.batch[x];
              const i = m.idx[x];
              // the record as spilled (writeRecordFrom), with no view and no await per record
              if (!out.putRecord(bt.buf, bt.keyStart[i], bt.keyEnd[i], bt.valEnd[i], bt.line[i])) {
                const ks = bt.keyStart[i];
                await out.put(
                  bt.buf.subarray(ks - varintLength(bt.keyEnd[i] - ks), bt.valEnd[i] + varintLength(bt.line[i])),
                );
              }
            }
          }
          await out.endSegment();
        }
      } finally {
        for (const fd of fds) closeSync(fd);
      }
    }
    await out.flush();
    await sink.close();
    return { bytes: off, records: this.records, spills: this.spillFiles.length, entries };
  }
}

/** Copies src[s, e) to dst at o (a loop for short ranges: cheaper than a native call), returns o + e - s. */
function copyRange(src: Uint8Array, s: number, e: number, dst: Uint8Array, o: number): number {
  if (e - s > 48) {
    dst.set(src.subarray(s, e), o);
    return o + e - s;
  }
  while (s < e) dst[o++] = src[s++];
  return o;
}

/** The size of a record re-encoded from parsed columns by writeRecordFrom. */
export function recordBytesFrom(ks: number, ke: number, ve: number, line: number): number {
  return varintLength(ke - ks) + (ve - ks) + varintLength(line);
}

/**
 * A record re-encoded at dst[o] from parsed columns (key src[ks, ke), value ending at ve, line): key length written,
 * then key, value-length varint and value copied in one range as parsed, then line written — every varint minimal
 * (writeVarint's; the WebAssembly append is held to the same bytes). Returns the end offset.
 */
export function writeRecordFrom(
  src: Uint8Array,
  ks: number,
  ke: number,
  ve: number,
  line: number,
  dst: Uint8Array,
  o: number,
): number {
  return writeVarint(dst, copyRange(src, ks, ve, dst, writeVarint(dst, o, ke - ks)), line);
}

/**
 * Coalesces writes into pieces of up to OUT_BYTES for the sink (a view of the staging area arena[stage, stage +
 * OUT_BYTES) when the sink consumes synchronously — the S3 multipart sink copies it into a part buffer — else a copy
 * the sink may keep) and checksums segments: between beginSegment() and endSegment() every byte goes into the CRC,
 * computed per piece, not per record.
 */
class SegmentOut {
  o = 0;
  /** start of the bytes in the staging area not yet in the CRC, -1 outside a segment */
  private mark = -1;
  private crc = 0;
  private readonly buf: Uint8Array;
  constructor(
    private readonly sink: ByteSink,
    arena: Uint8Array,
    readonly stage: number,
  ) {
    this.buf = arena.subarray(stage, stage + OUT_BYTES);
  }

  beginSegment(): void {
    this.crc = 0;
    this.mark = this.o;
  }

  async endSegment(): Promise<void> {
    this.crc = crc32c(this.buf.subarray(this.mark, this.o), this.crc);
    this.mark = -1;
    const c = Buffer.allocUnsafe(4);
    c.writeUInt32LE(this.crc >>> 0);
    await this.write(c);
  }

  /** bytes inside a segment */
  async put(bytes: Uint8Array): Promise<void> {
    if (bytes.length > OUT_BYTES - this.o) await this.flush();
    if (bytes.length >= OUT_BYTES) {
      this.crc = crc32c(bytes, this.crc);
      const p = this.sink.write(Uint8Array.from(bytes));
      if (p) await p;
      return;
    }
    this.buf.set(bytes, this.o);
    this.o += bytes.length;
  }

  /**
   * A record inside a segment from its parsed columns (key src[ks, ke), value ending at ve, line) when it fits the
   * staging area now: synchronous, no view; false when it does not (then put() its bytes).
   */
  putRecord(src: Uint8Array, ks: number, ke: number, ve: number, line: number): boolean {
    if (recordBytesFrom(ks, ke, ve, line) > OUT_BYTES - this.o) return false;
    this.o = writeRecordFrom(src, ks, ke, ve, line, this.buf, this.o);
    return true;
  }

  /** bytes outside segments */
  async write(bytes: Uint8Array): Promise<void> {
    if (bytes.length > OUT_BYTES - this.o) await this.flush();
    if (bytes.length >= OUT_BYTES) {
      const p = this.sink.write(Uint8Array.from(bytes));
      if (p) await p;
      return;
    }
    this.buf.set(bytes, this.o);
    this.o += bytes.length;
  }

  async flush(): Promise<void> {
    if (this.mark >= 0) {
      this.crc = crc32c(this.buf.subarray(this.mark, this.o), this.crc);
      this.mark = 0;
    }
    if (this.o === 0) return;
    // a sink that is done with a chunk when write() returns (or its promise resolves) gets a view of the staging
    // area, which is only written again after that; any other sink keeps what it is handed, so it gets a copy
    const chunk = this.sink.consumesSynchronously ? this.buf.subarray(0, this.o) : this.buf.slice(0, this.o);
    this.o = 0;
    const p = this.sink.write(chunk);
    if (p) await p;
  }
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

// ---------------------------------------------------------------------------------------------------------------
// Reading

/**
 * Parses a stream of segment record bytes into batches (one per piece). Keys/values are views safe to keep (plain
 * Uint8Array views: cheaper to make than Buffer views, which go through Buffer's species constructor). Varints are
 * decoded inline (decodeVarint: no array per number).
 */
export async function* parseRecordBatches(
  pieces: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  name: string,
  run: number,
  withRaw = false,
): AsyncIterable<Array<RunRecord & { raw?: Uint8Array }>> {
  let buf: Uint8Array = new Uint8Array(0);
  let pos = 0;
  const ve = varintEnd;
  for await (const p of pieces) {
    // the previous buffer is never written again: records handed out stay valid
    if (pos < buf.length) {
      const joined = new Uint8Array(buf.length - pos + p.length);
      joined.set(buf.subarray(pos), 0);
      joined.set(p, buf.length - pos);
      buf = joined;
    } else buf = p.constructor === Uint8Array ? p : new Uint8Array(p.buffer, p.byteOffset, p.length);
    pos = 0;
    const end = buf.length;
    if (withRaw) {
      const batch: Array<RunRecord & { raw: Uint8Array }> = [];
      for (;;) {
        const start = pos;
        const kl = decodeVarint(buf, pos, end);
        if (kl < 0) break;
        const ks = ve.pos;
        const ke = ks + kl;
        const vl = decodeVarint(buf, ke, end);
        if (vl < 0) break;
        const vs = ve.pos;
        const vEnd = vs + vl;
        if (vEnd > end) break;
        const line = decodeVarint(buf, vEnd, end);
        if (line < 0) break;
        pos = ve.pos;
        batch.push({
          key: buf.subarray(ks, ke),
          value: buf.subarray(vs, vEnd),
          line,
          run,
          raw: buf.subarray(start, pos),
        });
      }
      if (batch.length > 0) yield batch;
      continue;
    }
    const batch: RunRecord[] = [];
    for (;;) {
      const kl = decodeVarint(buf, pos, end);
      if (kl < 0) break;
      const ks = ve.pos;
      const ke = ks + kl;
      const vl = decodeVarint(buf, ke, end);
      if (vl < 0) break;
      const vs = ve.pos;
      const vEnd = vs + vl;
      if (vEnd > end) break;
      const line = decodeVarint(buf, vEnd, end);
      if (line < 0) break;
      pos = ve.pos;
      batch.push({ key: buf.subarray(ks, ke), value: buf.subarray(vs, vEnd), line, run });
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
export function readSegmentBatches(reader: ObjectReader, entry: RunEntry, run: number): AsyncIterable<RunRecord[]> {
  return checkedSegment(
    reader,
    entry,
    (pieces) => parseRecordBatches(pieces, reader.url, run),
    (b) => b.length,
  );
}

/**
 * A segment's bytes (without its checksum) through `parse`, batch by batch; after the last batch, the CRC of the
 * bytes read and the number of records (`count` per batch) are checked against the segment's checksum and index.
 */
async function* checkedSegment<B>(
  reader: ObjectReader,
  entry: RunEntry,
  parse: (pieces: AsyncIterable<Uint8Array>) => AsyncIterable<B>,
  count: (batch: B) => number,
): AsyncIterable<B> {
  if (entry.length === 0) return;
  if (entry.length < 4)
    throw new CorruptionError(`${reader.url}: segment shorter than its checksum`, { file: reader.url });
  const end = entry.offset + entry.length;
  const dataEnd = end - 4;
  let crc = 0;
  // the checksum is streamed with the records (no GET of its own): the bytes past dataEnd are kept aside
  const tail = Buffer.alloc(4);
  let tailLen = 0;
  async function* pieces(): AsyncIterable<Uint8Array> {
    let at = entry.offset;
    for await (const p of reader.stream(entry.offset, end)) {
      const data = Math.max(0, Math.min(p.length, dataEnd - at));
      for (let j = data; j < p.length && tailLen < 4; j++) tail[tailLen++] = p[j];
      at += p.length;
      if (data === 0) continue;
      const d = data === p.length ? p : p.subarray(0, data);
      crc = crc32c(d, crc);
      yield d;
    }
  }
  let n = 0;
  for await (const batch of parse(pieces())) {
    n += count(batch);
    yield batch;
  }
  if (tailLen !== 4 || tail.readUInt32LE(0) !== crc >>> 0) {
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

// ---------------------------------------------------------------------------------------------------------------
// Column form (Build's hot path): no object or view per record

/**
 * Records of one piece as columns into `buf`: record i's key is buf[keyStart[i], keyEnd[i]), its value
 * buf[valStart[i], valEnd[i]), its input position (run[i], line[i]); hi[i]/lo[i] are the key's first 8 bytes as two
 * big-endian u32s, zero-padded (the merge's integer comparison). Sorted as the segment is.
 */
export interface SegmentBatch {
  n: number;
  buf: Uint8Array;
  keyStart: Int32Array;
  keyEnd: Int32Array;
  valStart: Int32Array;
  valEnd: Int32Array;
  line: Float64Array;
  run: Int32Array;
  hi: Uint32Array;
  lo: Uint32Array;
}

/** growable columns for one batch */
class Columns {
  n = 0;
  keyStart: Int32Array;
  keyEnd: Int32Array;
  valStart: Int32Array;
  valEnd: Int32Array;
  line: Float64Array;
  run: Int32Array;
  hi: Uint32Array;
  lo: Uint32Array;
  constructor(private cap: number) {
    this.keyStart = new Int32Array(cap);
    this.keyEnd = new Int32Array(cap);
    this.valStart = new Int32Array(cap);
    this.valEnd = new Int32Array(cap);
    this.line = new Float64Array(cap);
    this.run = new Int32Array(cap);
    this.hi = new Uint32Array(cap);
    this.lo = new Uint32Array(cap);
  }

  push(buf: Uint8Array, ks: number, ke: number, vs: number, ve: number, line: number, run: number): void {
    if (this.n === this.cap) this.grow();
    const i = this.n++;
    this.keyStart[i] = ks;
    this.keyEnd[i] = ke;
    this.valStart[i] = vs;
    this.valEnd[i] = ve;
    this.line[i] = line;
    this.run[i] = run;
    if (ke - ks >= 8) {
      this.hi[i] = ((buf[ks] << 24) | (buf[ks + 1] << 16) | (buf[ks + 2] << 8) | buf[ks + 3]) >>> 0;
      this.lo[i] = ((buf[ks + 4] << 24) | (buf[ks + 5] << 16) | (buf[ks + 6] << 8) | buf[ks + 7]) >>> 0;
    } else {
      let h = 0;
      let w = 0;
      for (let j = 0; j < 4; j++) h = (h << 8) | (ks + j < ke ? buf[ks + j] : 0);
      for (let j = 4; j < 8; j++) w = (w << 8) | (ks + j < ke ? buf[ks + j] : 0);
      this.hi[i] = h >>> 0;
      this.lo[i] = w >>> 0;
    }
  }

  private grow(): void {
    const cap = this.cap * 2;
    const g = <A extends Int32Array | Uint32Array | Float64Array>(a: A, b: A): A => {
      b.set(a);
      return b;
    };
    this.keyStart = g(this.keyStart, new Int32Array(cap));
    this.keyEnd = g(this.keyEnd, new Int32Array(cap));
    this.valStart = g(this.valStart, new Int32Array(cap));
    this.valEnd = g(this.valEnd, new Int32Array(cap));
    this.line = g(this.line, new Float64Array(cap));
    this.run = g(this.run, new Int32Array(cap));
    this.hi = g(this.hi, new Uint32Array(cap));
    this.lo = g(this.lo, new Uint32Array(cap));
    this.cap = cap;
  }

  batch(buf: Uint8Array): SegmentBatch {
    const n = this.n;
    return {
      n,
      buf,
      keyStart: this.keyStart.subarray(0, n),
      keyEnd: this.keyEnd.subarray(0, n),
      valStart: this.valStart.subarray(0, n),
      valEnd: this.valEnd.subarray(0, n),
      line: this.line.subarray(0, n),
      run: this.run.subarray(0, n),
      hi: this.hi.subarray(0, n),
      lo: this.lo.subarray(0, n),
    };
  }
}

/**
 * parseRecordBatches in column form: one SegmentBatch per piece (none for a piece that completes no record).
 * `withRun` false: segment records (keyLen key valLen value line), all of run `run`; true: records carry a trailing
 * varint run (Build's temporary merge files) and `run` is ignored.
 */
export async function* parseSegmentColumns(
  pieces: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  name: string,
  run: number,
  withRun = false,
): AsyncIterable<SegmentBatch> {
  /** a copy of the bytes of the record the previous piece ended inside (empty: none) */
  let carry = EMPTY;
  for await (const p0 of pieces) {
    // pieces are never written again: batches handed out stay valid
    const p = p0.constructor === Uint8Array ? p0 : new Uint8Array(p0.buffer, p0.byteOffset, p0.length);
    let from = 0;
    if (carry.length > 0) {
      // finish the record that straddles the boundary in a small joined buffer of its own (one batch of one record),
      // then parse the rest of the piece where it is: no copy of the whole piece
      let take = Math.min(p.length, 64);
      for (;;) {
        const joined = new Uint8Array(carry.length + take);
        joined.set(carry, 0);
        joined.set(p.subarray(0, take), carry.length);
        const one = new Columns(1);
        const used = parseColumns(one, joined, 0, run, withRun, 1);
        if (one.n === 1) {
          yield one.batch(joined);
          from = used - carry.length;
          carry = EMPTY;
          break;
        }
        if (take === p.length) {
          // the record goes on past this piece too
          carry = joined;
          from = p.length;
          break;
        }
        take = Math.min(p.length, take * 4);
      }
      if (from === p.length) continue;
    }
    const cols = new Columns(Math.max(64, (p.length - from) >> 6));
    const pos = parseColumns(cols, p, from, run, withRun, Number.POSITIVE_INFINITY);
    if (cols.n > 0) yield cols.batch(p);
    if (pos < p.length) carry = p.slice(pos);
  }
  if (carry.length > 0) throw new CorruptionError(`${name}: segment ends inside a record`, { file: name });
}

const EMPTY = new Uint8Array(0);

/**
 * Appends to `cols` the whole records of buf[pos, buf.length), at most `max` of them; returns where it stopped (the
 * start of an unfinished record, or buf.length).
 */
function parseColumns(cols: Columns, buf: Uint8Array, pos: number, run: number, withRun: boolean, max: number): number {
  const ve = varintEnd;
  const end = buf.length;
  while (cols.n < max) {
    const kl = decodeVarint(buf, pos, end);
    if (kl < 0) break;
    const ks = ve.pos;
    const ke = ks + kl;
    const vl = decodeVarint(buf, ke, end);
    if (vl < 0) break;
    const vs = ve.pos;
    const vEnd = vs + vl;
    if (vEnd > end) break;
    const line = decodeVarint(buf, vEnd, end);
    if (line < 0) break;
    let r = run;
    if (withRun) {
      r = decodeVarint(buf, ve.pos, end);
      if (r < 0) break;
    }
    pos = ve.pos;
    cols.push(buf, ks, ke, vs, vEnd, line, r);
  }
  return pos;
}

/** readSegmentBatches in column form (same windows, checksum and record-count checks). */
export function readSegmentColumns(reader: ObjectReader, entry: RunEntry, run: number): AsyncIterable<SegmentBatch> {
  return checkedSegment(
    reader,
    entry,
    (pieces) => parseSegmentColumns(pieces, reader.url, run),
    (b) => b.n,
  );
}
