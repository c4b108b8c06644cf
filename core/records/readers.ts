/**
 * Input readers: JSONL, CSV (header row; quoted fields with embedded newlines and quotes), Parquet (hyparquet; one
 * chunk = a range of row groups), each optionally gzip or zstd compressed. `planChunks` splits a listing into
 * Partition work units; `readChunk` streams one chunk's records. Memory does not grow with the object size
 * (Parquet: one row group at a time).
 */
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { decompress as zstdDecompress } from "fzstd";
import { type AsyncBuffer, type FileMetaData, parquetMetadataAsync } from "hyparquet";
import { ParquetRowGroup } from "./parquet-rows.js";
import { InputError } from "../errors.js";
import { PIPELINE } from "../limits.js";
import type { Chunk, InputCompression, InputFormat } from "../pipeline/types.js";
import { compressionFromMagic, compressionFromName, decompress } from "./compression.js";
import { type LineStage, scanLines, scanLinesStaged, skipPartialLine, splitLines } from "./lines.js";
import { type ObjectReader, type OpenObject, openS3Object, s3Url } from "./source.js";

/** One input record with where it came from. */
export interface SourceRecord {
  /** field name → value (JSONL: parsed JSON object; CSV: strings by header; Parquet: decoded row) */
  record: Record<string, unknown>;
  /** s3://bucket/key */
  source: string;
  /**
   * 1-based line (JSONL, CSV: the file line where the record starts; Parquet: the row number). When `chunkStart` is
   * set, the chunk began mid-object and `line` counts lines from that byte offset (counting from the object start
   * would mean reading everything before it).
   */
  line: number;
  chunkStart?: number;
  /** the record could not be parsed (bad JSON, wrong CSV column count): a bad record, `record` is empty */
  problem?: string;
}

/** "s3://b/k line 12" or "s3://b/k line 12 of the chunk starting at byte 134217728" (Parquet: "row 12"). */
export function where(r: Pick<SourceRecord, "source" | "line" | "chunkStart">, unit = "line"): string {
  return r.chunkStart
    ? `${r.source} ${unit} ${r.line} of the chunk starting at byte ${r.chunkStart}`
    : `${r.source} ${unit} ${r.line}`;
}

export interface ReadOptions {
  /** how objects are opened (default: S3 ranged reads) */
  open?: OpenObject;
  /** override the chunk's/name's compression */
  compression?: InputCompression;
  /** longest line/record accepted (default PIPELINE.maxRecordBytes) */
  maxRecordBytes?: number;
}

export interface PlanChunksOptions {
  open?: OpenObject;
  /** compression for every object (default: from the name, and the first bytes of objects that would be split) */
  compression?: InputCompression;
  /** split large uncompressed CSV objects by byte range (default PIPELINE.csvSplit); see docs/data-plane.md */
  csvSplit?: boolean;
}

export interface InputObject {
  bucket: string;
  key: string;
  size: number;
}

export function chunkId(index: number): string {
  return `c${String(index).padStart(7, "0")}`;
}

/** The chunk's index in input order (Chunk.index, else parsed from the id). */
export function chunkIndex(chunk: Pick<Chunk, "id" | "index">): number {
  if (chunk.index !== undefined) return chunk.index;
  const m = /(\d+)$/.exec(chunk.id);
  if (!m) throw new InputError(`chunk id ${chunk.id} has no index`, { field: "chunk.id" });
  return Number(m[1]);
}

/**
 * Splits input objects into chunks, in (bucket, key) order, ids c0000000, c0000001, … (deterministic: the same
 * listing gives the same chunks). Uncompressed JSONL (and CSV when csvSplit) larger than chunkBytes is split into
 * byte ranges; compressed objects are one chunk; Parquet objects are split into row-group ranges of about chunkBytes
 * (footer read with ranged GETs). Empty objects produce no chunk.
 */
export async function planChunks(
  objects: InputObject[],
  format: InputFormat,
  chunkBytes: number = PIPELINE.chunkBytes,
  opts: PlanChunksOptions = {},
): Promise<Chunk[]> {
  const open = opts.open ?? openS3Object;
  const csvSplit = opts.csvSplit ?? PIPELINE.csvSplit;
  const sorted = [...objects].sort((a, b) =>
    a.bucket === b.bucket ? (a.key < b.key ? -1 : a.key > b.key ? 1 : 0) : a.bucket < b.bucket ? -1 : 1,
  );
  const out: Chunk[] = [];
  const push = (c: Omit<Chunk, "id" | "index">) => {
    const index = out.length;
    out.push({ id: chunkId(index), index, ...c });
  };
  for (const o of sorted) {
    if (o.size === 0) continue;
    let compression = opts.compression ?? compressionFromName(o.key);
    if (format === "parquet") {
      if (compression !== "none") {
        throw new InputError(
          `${s3Url(o.bucket, o.key)}: a compressed Parquet object is not supported (Parquet compresses its pages itself)`,
          {
            source: s3Url(o.bucket, o.key),
            field: "compression",
          },
        );
      }
      const reader = await open(o.bucket, o.key, o.size);
      const meta = await readParquetMetadata(reader);
      let first = 0;
      let acc = 0;
      const groups = meta.row_groups;
      for (let g = 0; g < groups.length; g++) {
        acc += Number(groups[g].total_compressed_size ?? groups[g].total_byte_size);
        if (acc >= chunkBytes || g === groups.length - 1) {
          push({ bucket: o.bucket, key: o.key, size: o.size, rowGroups: [first, g] });
          first = g + 1;
          acc = 0;
        }
      }
      continue;
    }
    const splittable = format === "jsonl" || (format === "csv" && csvSplit);
    if (compression === "none" && splittable && o.size > chunkBytes && opts.compression === undefined) {
      const reader = await open(o.bucket, o.key, o.size);
      compression = compressionFromMagic(await reader.read(0, 4));
    }
    if (compression !== "none" || !splittable || o.size <= chunkBytes) {
      push({ bucket: o.bucket, key: o.key, size: o.size, ...(compression !== "none" ? { compression } : {}) });
      continue;
    }
    for (let s = 0; s < o.size; s += chunkBytes) {
      push({ bucket: o.bucket, key: o.key, size: o.size, start: s, end: Math.min(o.size, s + chunkBytes) });
    }
  }
  return out;
}

/** Streams the records of one chunk. */
export async function* readChunk(
  chunk: Chunk,
  format: InputFormat,
  opts: ReadOptions = {},
): AsyncIterable<SourceRecord> {
  const open = opts.open ?? openS3Object;
  const reader = await open(chunk.bucket, chunk.key, chunk.size);
  if (format === "parquet") {
    yield* readParquet(reader, chunk.rowGroups);
    return;
  }
  const { pieces, ctx } = await openTextChunk(reader, chunk, opts);
  if (format === "jsonl") yield* readJsonl(pieces, ctx);
  else if (format === "csv") yield* readCsv(pieces, ctx, reader);
  else throw new InputError(`unknown input format ${String(format)}`, { field: "format" });
}

/** The byte stream of a JSONL/CSV chunk (decompressed; ranged chunks read past `end` only to finish a line). */
/**
 * `reuse`: the caller is done with each piece before it pulls the next (see ObjectReader.stream); honoured for
 * byte-range chunks only (never compressed). A whole object may turn out compressed by its magic bytes, and the
 * decompressor may hold input pieces, so it always gets pieces of its own.
 */
async function openTextChunk(
  reader: ObjectReader,
  chunk: Chunk,
  opts: ReadOptions,
  reuse = false,
): Promise<{ pieces: AsyncIterable<Uint8Array>; ctx: LineCtx }> {
  const maxRecordBytes = opts.maxRecordBytes ?? PIPELINE.maxRecordBytes;
  const ranged = chunk.start !== undefined && (chunk.start > 0 || (chunk.end ?? reader.size) < reader.size);
  const start = ranged ? (chunk.start ?? 0) : 0;
  const end = ranged ? (chunk.end ?? reader.size) : reader.size;
  let compression = opts.compression ?? chunk.compression ?? compressionFromName(chunk.key);
  if (ranged && compression !== "none") {
    throw new InputError(`${reader.url}: a compressed object cannot be read by byte ranges`, { source: reader.url });
  }
  // whole uncompressed objects: trust the magic bytes over the name
  let pieces: AsyncIterable<Uint8Array>;
  if (!ranged && compression === "none") {
    const { head, rest } = await peek(reader.stream(0, reader.size));
    compression = compressionFromMagic(head);
    pieces = decompress(rest, compression);
  } else if (!ranged) {
    pieces = decompress(reader.stream(0, reader.size), compression);
  } else {
    // read past `end` only to finish the last owned line
    pieces = reader.stream(
      start > 0 ? start - 1 : 0,
      Math.min(reader.size, end + maxRecordBytes),
      reuse ? { reuse } : undefined,
    );
  }
  const ctx: LineCtx = {
    source: reader.url,
    start,
    end: ranged ? end : Number.POSITIVE_INFINITY,
    ranged,
    maxRecordBytes,
    compressed: compression !== "none",
  };
  return { pieces, ctx };
}

/**
 * A consumer of runs of lines (forEachJsonlLine's `takeLines`): take() is TakeLines (core/records/lines.ts) whose
 * first line is numbered `line` (as onLine's), and sets `taken` to the number of lines it took. Lines are what
 * onLine would get: a '\r' before the '\n' is not part of the line.
 */
export interface LineTaker {
  take(buf: Uint8Array, from: number, end: number, stop: number, line: number): number;
  taken: number;
}

/**
 * The lines of a JSONL chunk for hot loops: `onLine(buf, start, end, line)` for every line the chunk owns, in order,
 * synchronously per piece (see scanLines). `buf[start, end)` is the line without '\n' and a trailing '\r', valid
 * only during the call; `line` is what SourceRecord.line would be. Blank lines are passed too (jsonlRecord skips
 * them). Returning true stops reading. `onStart` is told where the lines come from first: `source` and `chunkStart`
 * (as in SourceRecord).
 */
export async function forEachJsonlLine(
  chunk: Chunk,
  opts: ReadOptions & {
    /** copy the input into this region first and hand out lines as its ranges (see scanLinesStaged) */
    stage?: (maxRecordBytes: number) => LineStage;
    /** with `stage`: runs of lines go here first (see TakeLines); onLine gets the lines it leaves */
    takeLines?: LineTaker;
  },
  onStart: (where: { source: string; chunkStart?: number }) => void,
  onLine: (buf: Uint8Array, start: number, end: number, line: number) => unknown,
): Promise<void> {
  const reader = await (opts.open ?? openS3Object)(chunk.bucket, chunk.key, chunk.size);
  // staged: scanLinesStaged copies each piece into the stage before it pulls the next (skipPartialLine and peek hand
  // a piece on before pulling another), so the reader may lend its pieces
  const { pieces, ctx } = await openTextChunk(reader, chunk, opts, opts.stage !== undefined);
  const skip = ctx.ranged && ctx.start > 0;
  onStart({ source: ctx.source, chunkStart: skip ? ctx.start : undefined });
  const { offset, rest } = await skipPartialLine(pieces, skip ? ctx.start - 1 : 0, skip);
  let line = 0;
  const each = (buf: Uint8Array, s: number, e: number) => {
    line++;
    return onLine(buf, s, e > s && buf[e - 1] === 13 ? e - 1 : e, line);
  };
  if (opts.stage) {
    const stage = opts.stage(ctx.maxRecordBytes);
    const t = opts.takeLines;
    const take =
      t &&
      ((buf: Uint8Array, from: number, end: number, stop: number) => {
        const at = t.take(buf, from, end, stop, line + 1);
        line += t.taken;
        return at;
      });
    await scanLinesStaged(rest, offset, ctx.end, ctx.maxRecordBytes, ctx.source, stage, each, take);
  } else await scanLines(rest, offset, ctx.end, ctx.maxRecordBytes, ctx.source, each);
}

/**
 * One JSONL line (without '\n' and a trailing '\r') as a SourceRecord: the parsed object, or a record with a
 * `problem` (not JSON, not an object); undefined for a blank line (not a record).
 */
export function jsonlRecord(
  b: Buffer,
  source: string,
  line: number,
  chunkStart: number | undefined,
): SourceRecord | undefined {
  // blank lines are not records
  let blank = true;
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (c !== 32 && c !== 9) {
      blank = false;
      break;
    }
  }
  if (blank) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(b.toString("utf8"));
  } catch (e) {
    return { record: {}, source, line, chunkStart, problem: `is not valid JSON (${(e as Error).message})` };
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    return { record: {}, source, line, chunkStart, problem: "is not a JSON object" };
  }
  return { record: v as Record<string, unknown>, source, line, chunkStart };
}

interface LineCtx {
  source: string;
  start: number;
  end: number;
  ranged: boolean;
  maxRecordBytes: number;
  compressed: boolean;
}

async function peek(it: AsyncIterable<Uint8Array>): Promise<{ head: Uint8Array; rest: AsyncIterable<Uint8Array> }> {
  const iter = it[Symbol.asyncIterator]();
  const first = await iter.next();
  const head = first.done ? new Uint8Array(0) : first.value;
  let pending: Uint8Array | undefined = first.done ? undefined : first.value;
  return {
    head,
    rest: {
      [Symbol.asyncIterator]: () => ({
        async next() {
          if (pending) {
            const v = pending;
            pending = undefined;
            return { done: false, value: v };
          }
          return iter.next();
        },
        async return() {
          await iter.return?.();
          return { done: true, value: undefined };
        },
      }),
    },
  };
}

async function* readJsonl(pieces: AsyncIterable<Uint8Array>, ctx: LineCtx): AsyncIterable<SourceRecord> {
  const skip = ctx.ranged && ctx.start > 0;
  const { offset, rest } = await skipPartialLine(pieces, skip ? ctx.start - 1 : 0, skip);
  const chunkStart = skip ? ctx.start : undefined;
  let line = 0;
  for await (const l of splitLines(rest, offset, ctx.maxRecordBytes, ctx.source)) {
    if (l.offset >= ctx.end) break;
    line++;
    let b = l.bytes;
    if (b.length > 0 && b[b.length - 1] === 13) b = b.subarray(0, b.length - 1);
    const rec = jsonlRecord(b, ctx.source, line, chunkStart);
    if (rec) yield rec;
  }
}

// ---- CSV (RFC 4180): records are lines, joined while a quoted field is open (odd number of '"' so far) ----

interface CsvRecord {
  fields: string[];
  /** file line (relative to where reading began) of the record's first line */
  line: number;
  /** physical lines the record spans */
  lines: number;
  /** absolute byte offset of the record's first byte */
  offset: number;
}

function countQuotes(b: Buffer): number {
  let n = 0;
  let i = b.indexOf(34);
  while (i >= 0) {
    n++;
    i = b.indexOf(34, i + 1);
  }
  return n;
}

/** Splits one complete record (without its final newline) into fields; throws a message on malformed quoting. */
function csvFields(s: string): string[] {
  const fields: string[] = [];
  const n = s.length;
  let i = 0;
  for (;;) {
    let val: string;
    if (s.charCodeAt(i) === 34) {
      let j = i + 1;
      val = "";
      for (;;) {
        const k = s.indexOf('"', j);
        if (k < 0) throw new Error("a quoted field is not closed");
        if (s.charCodeAt(k + 1) === 34) {
          val += s.slice(j, k + 1);
          j = k + 2;
          continue;
        }
        val += s.slice(j, k);
        i = k + 1;
        break;
      }
      if (i < n && s.charCodeAt(i) !== 44) {
        throw new Error(
          `a closing quote is followed by ${JSON.stringify(s[i])} instead of a comma or the end of the line`,
        );
      }
    } else {
      let k = s.indexOf(",", i);
      if (k < 0) k = n;
      val = s.slice(i, k);
      if (val.includes('"')) throw new Error(`a quote inside the unquoted field ${JSON.stringify(val)}`);
      i = k;
    }
    fields.push(val);
    if (i >= n) return fields;
    i++; // the comma
    if (i === n) {
      fields.push("");
      return fields;
    }
  }
}

/**
 * csvRecords' state, fed one line at a time (synchronous: the async reader and forEachCsvRecord's hot loop share it).
 * Line numbers count from the first line given.
 */
class CsvAssembler {
  /** lines given so far */
  lineNo = 0;
  private open: { parts: string[]; quotes: number; line: number; offset: number; bytes: number } | undefined;

  constructor(
    private readonly source: string,
    private readonly chunkStart: number | undefined,
    private readonly end: number,
    private readonly maxRecordBytes: number,
  ) {}

  /** a record is open (a quoted field continues on the next line) */
  get isOpen(): boolean {
    return this.open !== undefined;
  }

  /**
   * The next line (without '\n'), at absolute offset `offset`: the record it completes, undefined when none (a blank
   * line, or a quoted field still open), null when reading stops (a record would start at or past `end`).
   */
  push(bytes: Buffer, offset: number): CsvRecord | undefined | null {
    const { source, chunkStart } = this;
    const lineNo = ++this.lineNo;
    const open = this.open;
    if (!open) {
      if (offset >= this.end) return null;
      const q = countQuotes(bytes);
      let str = bytes.toString("utf8");
      if (offset === 0 && str.charCodeAt(0) === 0xfeff) str = str.slice(1);
      if (q % 2 === 0) {
        if (str.endsWith("\r")) str = str.slice(0, -1);
        if (str.length === 0) return undefined;
        return { fields: csvFieldsAt(str, source, lineNo, chunkStart), line: lineNo, lines: 1, offset };
      }
      this.open = { parts: [str], quotes: q, line: lineNo, offset, bytes: bytes.length };
      return undefined;
    }
    open.parts.push(bytes.toString("utf8"));
    open.quotes += countQuotes(bytes);
    open.bytes += bytes.length + 1;
    if (open.bytes > this.maxRecordBytes) {
      throw new InputError(
        `${where({ source, line: open.line, chunkStart })}: a CSV record is longer than ${this.maxRecordBytes} bytes (an unclosed quote?)`,
        { source, line: open.line, chunkStart },
      );
    }
    if (open.quotes % 2 !== 0) return undefined;
    let str = open.parts.join("\n");
    if (str.endsWith("\r")) str = str.slice(0, -1);
    this.open = undefined;
    return {
      fields: csvFieldsAt(str, source, open.line, chunkStart),
      line: open.line,
      lines: lineNo - open.line + 1,
      offset: open.offset,
    };
  }

  /** the end of the input: throws when a quoted field is still open */
  finish(): void {
    const open = this.open;
    if (!open) return;
    const { source, chunkStart } = this;
    throw new InputError(
      `${where({ source, line: open.line, chunkStart })}: CSV is malformed: a quoted field is not closed before the end of the input`,
      {
        source,
        line: open.line,
        chunkStart,
      },
    );
  }
}

/** Complete CSV records from lines (line numbers count from the first line given). */
async function* csvRecords(
  lines: AsyncIterable<{ bytes: Buffer; offset: number }>,
  source: string,
  chunkStart: number | undefined,
  end: number,
  maxRecordBytes: number,
): AsyncIterable<CsvRecord> {
  const a = new CsvAssembler(source, chunkStart, end, maxRecordBytes);
  for await (const l of lines) {
    const r = a.push(l.bytes, l.offset);
    if (r === null) return;
    if (r) yield r;
  }
  a.finish();
}

function csvFieldsAt(str: string, source: string, line: number, chunkStart: number | undefined): string[] {
  try {
    return csvFields(str);
  } catch (e) {
    throw new InputError(`${where({ source, line, chunkStart })}: CSV is malformed: ${(e as Error).message}`, {
      source,
      line,
      chunkStart,
    });
  }
}

async function readCsvHeader(reader: ObjectReader, maxRecordBytes: number): Promise<string[]> {
  const pieces = reader.stream(0, Math.min(reader.size, maxRecordBytes));
  for await (const r of csvRecords(
    splitLines(pieces, 0, maxRecordBytes, reader.url),
    reader.url,
    undefined,
    Number.POSITIVE_INFINITY,
    maxRecordBytes,
  )) {
    return r.fields;
  }
  throw new InputError(`${reader.url}: CSV has no header row`, { source: reader.url, line: 1 });
}

function checkHeader(header: string[], source: string): void {
  const seen = new Set<string>();
  header.forEach((h, i) => {
    if (h.trim() === "")
      throw new InputError(`${source} line 1: CSV header column ${i + 1} is empty`, {
        source,
        line: 1,
        field: `#${i + 1}`,
      });
    if (seen.has(h))
      throw new InputError(`${source} line 1: CSV header names column '${h}' twice`, { source, line: 1, field: h });
    seen.add(h);
  });
}

/** A data record (not the header) as a SourceRecord: the object by header, or a `problem` (wrong field count). */
function csvSourceRecord(header: string[], r: CsvRecord, ctx: LineCtx, chunkStart: number | undefined): SourceRecord {
  if (ctx.ranged && r.lines > 1) {
    throw new InputError(
      `${where({ source: ctx.source, line: r.line, chunkStart })}: a quoted CSV field spans lines, so this object cannot be split by byte ranges safely; load it with csvSplit=false (one chunk per object)`,
      { source: ctx.source, line: r.line, chunkStart, field: "csvSplit" },
    );
  }
  const rec = r.fields;
  if (rec.length !== header.length) {
    return {
      record: {},
      source: ctx.source,
      line: r.line,
      chunkStart,
      problem: `has ${rec.length} fields, the header has ${header.length}`,
    };
  }
  const o: Record<string, unknown> = {};
  for (let i = 0; i < header.length; i++) o[header[i]] = rec[i];
  return { record: o, source: ctx.source, line: r.line, chunkStart };
}

async function* readCsv(
  pieces: AsyncIterable<Uint8Array>,
  ctx: LineCtx,
  reader: ObjectReader,
): AsyncIterable<SourceRecord> {
  const skip = ctx.ranged && ctx.start > 0;
  let header: string[] | undefined;
  if (skip) {
    header = await readCsvHeader(reader, ctx.maxRecordBytes);
    checkHeader(header, ctx.source);
  }
  const { offset, rest } = await skipPartialLine(pieces, skip ? ctx.start - 1 : 0, skip);
  const chunkStart = skip ? ctx.start : undefined;
  const lines = splitLines(rest, offset, ctx.maxRecordBytes, ctx.source);
  for await (const r of csvRecords(lines, ctx.source, chunkStart, ctx.end, ctx.maxRecordBytes)) {
    if (!header) {
      header = r.fields;
      checkHeader(header, ctx.source);
      continue;
    }
    yield csvSourceRecord(header, r, ctx, chunkStart);
  }
}

/**
 * The records of a CSV chunk for hot loops, synchronously per piece (see scanLines). Once the header is known,
 * `onHeader(header)` may return a fast mapping function: each later line that is not inside a multi-line record
 * (buf[start, end) without '\n' and a trailing '\r', valid only during the call; `line` is what SourceRecord.line
 * would be) is offered to it first, and it returns true when it took the line. Every other record (declined lines,
 * records spanning lines, wrong field counts) reaches `onRecord` as readChunk would give it; blank lines reach
 * neither. Malformed CSV throws as readChunk does.
 */
export async function forEachCsvRecord(
  chunk: Chunk,
  opts: ReadOptions,
  onHeader: (header: string[]) => ((buf: Uint8Array, start: number, end: number, line: number) => boolean) | undefined,
  onRecord: (rec: SourceRecord) => void,
): Promise<void> {
  const reader = await (opts.open ?? openS3Object)(chunk.bucket, chunk.key, chunk.size);
  const { pieces, ctx } = await openTextChunk(reader, chunk, opts);
  const skip = ctx.ranged && ctx.start > 0;
  let header: string[] | undefined;
  let fast: ((buf: Uint8Array, start: number, end: number, line: number) => boolean) | undefined;
  if (skip) {
    header = await readCsvHeader(reader, ctx.maxRecordBytes);
    checkHeader(header, ctx.source);
    fast = onHeader(header);
  }
  const { offset, rest } = await skipPartialLine(pieces, skip ? ctx.start - 1 : 0, skip);
  const chunkStart = skip ? ctx.start : undefined;
  const a = new CsvAssembler(ctx.source, chunkStart, ctx.end, ctx.maxRecordBytes);
  const end = ctx.end;
  let off = offset;
  // stopAt: the assembler stops (a record may run past ctx.end, as in csvRecords)
  await scanLines(rest, offset, Number.POSITIVE_INFINITY, ctx.maxRecordBytes, ctx.source, (buf, s, e) => {
    const lineOff = off;
    off += e - s + 1;
    if (fast !== undefined && lineOff > 0 && lineOff < end && !a.isOpen) {
      const line = a.lineNo + 1;
      if (fast(buf, s, e > s && buf[e - 1] === 13 ? e - 1 : e, line)) {
        a.lineNo = line;
        return;
      }
    }
    const r = a.push(Buffer.from(buf.buffer, buf.byteOffset + s, e - s), lineOff);
    if (r === null) return true;
    if (!r) return;
    if (!header) {
      header = r.fields;
      checkHeader(header, ctx.source);
      fast = onHeader(header);
      return;
    }
    onRecord(csvSourceRecord(header, r, ctx, chunkStart));
  });
  a.finish();
}

// ---- Parquet ----

const PARQUET_COMPRESSORS = {
  GZIP: (input: Uint8Array) => new Uint8Array(gunzipSync(input)),
  BROTLI: (input: Uint8Array) => new Uint8Array(brotliDecompressSync(input)),
  ZSTD: (input: Uint8Array, outputLength: number) => zstdDecompress(input, new Uint8Array(outputLength)),
};

function asyncBuffer(reader: ObjectReader): AsyncBuffer {
  return {
    byteLength: reader.size,
    async slice(start: number, end?: number): Promise<ArrayBuffer> {
      const b = await reader.read(start, end ?? reader.size);
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
    },
  };
}

/** Reads a Parquet footer with ranged reads (the last 512 KiB, more only when the footer is larger). */
export async function readParquetMetadata(reader: ObjectReader): Promise<FileMetaData> {
  try {
    return await parquetMetadataAsync(asyncBuffer(reader));
  } catch (e) {
    throw new InputError(`${reader.url}: not a readable Parquet file (${(e as Error).message})`, {
      source: reader.url,
    });
  }
}

/** Row groups with their first row and row count. */
export async function parquetRowGroups(
  reader: ObjectReader,
): Promise<Array<{ rowStart: number; rows: number; bytes: number }>> {
  const meta = await readParquetMetadata(reader);
  let rowStart = 0;
  return meta.row_groups.map((g) => {
    const r = { rowStart, rows: Number(g.num_rows), bytes: Number(g.total_compressed_size ?? g.total_byte_size) };
    rowStart += r.rows;
    return r;
  });
}

async function* readParquet(reader: ObjectReader, rowGroups?: [number, number]): AsyncIterable<SourceRecord> {
  const meta = await readParquetMetadata(reader);
  const file = asyncBuffer(reader);
  const [first, last] = rowGroups ?? [0, meta.row_groups.length - 1];
  let rowStart = 0;
  for (let g = 0; g < first; g++) rowStart += Number(meta.row_groups[g].num_rows);
  for (let g = first; g <= last && g < meta.row_groups.length; g++) {
    const n = Number(meta.row_groups[g].num_rows);
    let rows: ParquetRowGroup;
    try {
      rows = await ParquetRowGroup.read({
        file,
        metadata: meta,
        rowStart,
        rowEnd: rowStart + n,
        compressors: PARQUET_COMPRESSORS,
      });
    } catch (e) {
      throw new InputError(`${reader.url} row group ${g}: cannot decode (${(e as Error).message})`, {
        source: reader.url,
        rowGroup: g,
      });
    }
    for (let i = 0; i < n; i++) yield { record: rows.row(rowStart + i), source: reader.url, line: rowStart + i + 1 };
    rowStart += n;
  }
}
