/**
 * Partition (one chunk): read records, map them to key/value bytes, route each to its bucket (shard by murmur3, then
 * the range within the shard), sort per bucket, write one run object at staging/<d>/<v>/runs/<chunkId>.run.
 * Deterministic: the same chunk gives the same bytes at the same key, so a retry overwrites, never duplicates.
 */
import { JSONL_WASM, PIPELINE } from "../limits.js";
import { stagingPrefix } from "../manifest/schema.js";
import { isSkipped, makeRecordMapper } from "../records/mapper.js";
import type { FastJsonlMapper } from "../records/jsonl-fast.js";
import {
  APPEND_NO_FIT,
  APPEND_STOP_DECLINED,
  APPEND_STOP_ROWS,
  makeJsonlMapper,
  type WasmJsonlMapper,
} from "../records/jsonl-wasm.js";
import { csvRecordAdder, makeFastCsvMapper } from "../records/csv-fast.js";
import {
  chunkIndex,
  forEachCsvRecord,
  forEachJsonlLine,
  jsonlRecord,
  type LineTaker,
  readChunk,
} from "../records/readers.js";
import type { OpenObject } from "../records/source.js";
import { type OpenSink, openS3Sink } from "../shuffle/io.js";
import { RECORD_OVERHEAD_BYTES, RunWriter } from "../shuffle/run.js";
import { makeRangeRouter, makeRouter } from "./sample.js";
import type { Chunk, PartitionResult, Plan } from "./types.js";

export function runKey(dataset: string, version: string, chunkId: string): string {
  return `${stagingPrefix(dataset, version)}runs/${chunkId}.run`;
}

/** the input stage holds the longest line plus this (scanLinesStaged needs more than 1 MiB over it) */
const STAGE_EXTRA_BYTES = 4 << 20;

export interface PartitionArgs {
  plan: Plan;
  chunk: Chunk;
  dataBucket: string;
  /** how input objects are opened (default S3 ranged reads) */
  open?: OpenObject;
  /** where the run object goes (default S3 multipart upload) */
  openSink?: OpenSink;
  /** memory budget before spilling sorted sub-runs to local disk (default PIPELINE.partitionMemoryBytes) */
  memoryBytes?: number;
  tmpDir?: string;
  /** JSONL/CSV: map lines from their bytes when certain of the result (default true; false = the record-object path) */
  fastPath?: boolean;
}

export async function partitionChunk(
  args: PartitionArgs,
): Promise<PartitionResult & { spills: number; runBytes: number }> {
  const { plan, chunk } = args;
  const req = plan.request;
  const unit = req.format === "parquet" ? "row" : "line";
  const mapper = makeRecordMapper({
    key: req.key,
    value: req.value,
    valueRaw: req.valueRaw,
    badRecords: req.badRecords,
    maxBadRecords: req.maxBadRecords,
    unit,
    typedValues: req.format === "parquet",
  });
  const route = makeRouter(plan.buckets, req.shards);
  const source = `s3://${chunk.bucket}/${chunk.key}`;
  const ranged = chunk.start !== undefined && chunk.start > 0;
  const jsonlFast = req.format === "jsonl" && args.fastPath !== false;
  // JSONL: the mapper (WebAssembly unless FERRY_JSONL_WASM=0 or unavailable, else JS) is made with the writer's page
  // 0 (records, output staging, input stage) in its memory, so lines are scanned where they are read in
  const made: { mapper?: FastJsonlMapper | WasmJsonlMapper; csvArena?: Uint8Array } = {};
  const csvFast = req.format === "csv" && args.fastPath !== false;
  const writer = new RunWriter({
    bucketCount: plan.buckets.length,
    meta: {
      chunkId: chunk.id,
      chunkIndex: chunkIndex(chunk),
      source,
      ...(ranged ? { chunkStart: chunk.start } : {}),
      unit,
    },
    memoryBytes: args.memoryBytes,
    tmpDir: args.tmpDir,
    ...(jsonlFast
      ? {
          inputStageBytes: PIPELINE.maxRecordBytes + STAGE_EXTRA_BYTES,
          arena: (bytes: number) => {
            const m = makeJsonlMapper(req, bytes, { buckets: plan.buckets, shards: req.shards });
            made.mapper = m;
            return m && "arena" in m ? m.arena : new Uint8Array(bytes);
          },
          // WebAssembly: the sorted records are copied out by the module
          gather: () => (made.mapper && "gather" in made.mapper ? made.mapper.gather : undefined),
        }
      : csvFast
        ? // CSV: fast-mapped records are written into page 0 in place (csvRecordAdder)
          { arena: (bytes: number) => (made.csvArena = new Uint8Array(bytes)) }
        : {}),
  });
  const readOpts = { open: args.open, compression: req.compression };
  const fast = made.mapper;
  if (fast) {
    // JSONL: lines mapped from their bytes (core/records/jsonl-fast.ts); a line the fast path is not certain about
    // goes the straightforward way (JSON.parse, mapper), which gives the same bytes or names the bad record
    const routeRange = makeRangeRouter(plan.buckets, req.shards);
    // WebAssembly: map, route and append the record into the arena in one call (mapAppend); JS then records the
    // columns (pushWritten). A record that does not fit in page 0 goes through addRanges (new page, as before).
    const fused = "mapAppend" in fast ? fast : undefined;
    const mapAppend = fused?.mapAppend;
    const appended = fused?.appended;
    /** the record the mapper's ranges describe (after map(), or mapAppend's no-fit), routed, into the writer */
    const addMapped = (line: number) =>
      writer.addRanges(
        routeRange(fast.keySrc, fast.keyStart, fast.keyEnd),
        fast.keySrc,
        fast.keyStart,
        fast.keyEnd,
        fast.valSrc,
        fast.segs,
        fast.nsegs,
        fast.valueLen,
        line,
      );
    // WebAssembly, batched: runs of lines are mapped, routed and appended in one call (appendLines), the writer
    // records their rows (pushWrittenRows); the line it stops at comes to the per-line callback below
    const appendLines = fused?.appendLines;
    const rows = fused?.rows;
    const stopped = fused?.appendStop;
    /** the arena index of a line appendLines just declined: the callback goes straight to the JSON.parse path */
    let declinedAt = -1;
    const taker: LineTaker | undefined =
      appendLines && rows && stopped
        ? {
            taken: 0,
            take(buf, from, end, stop, line) {
              taker!.taken = 0;
              if (buf !== fused.arena) return from;
              let at = from;
              for (;;) {
                const pos = writer.appendPos;
                if (pos < 0 || line + JSONL_WASM.appendRows >= 0x80000000) return at;
                const k = appendLines(
                  at,
                  end,
                  stop,
                  line,
                  pos,
                  writer.appendLimit,
                  writer.appendRoom,
                  RECORD_OVERHEAD_BYTES,
                );
                writer.pushWrittenRows(rows, k);
                taker!.taken += k;
                line += k;
                at = stopped[0];
                if (stopped[1] !== APPEND_STOP_ROWS) {
                  if (stopped[1] === APPEND_STOP_DECLINED) declinedAt = at;
                  return at;
                }
              }
            },
          }
        : undefined;
    let where: { source: string; chunkStart?: number } = { source };
    await forEachJsonlLine(
      chunk,
      // lines are read into the writer's arena, so records are moved with copyWithin
      {
        ...readOpts,
        stage: (maxRecordBytes) => writer.inputStage(maxRecordBytes + STAGE_EXTRA_BYTES),
        takeLines: process.env.FERRY_PARTITION_BATCH === "0" ? undefined : taker,
      },
      (w) => {
        where = w;
      },
      (buf, s, e, line) => {
        let declined = s === declinedAt;
        declinedAt = -1;
        if (!declined && mapAppend && appended && buf === fused.arena && line < 0x80000000) {
          const pos = writer.appendPos;
          if (pos >= 0) {
            const b = mapAppend(s, e, line, pos, writer.appendLimit);
            if (b >= 0) {
              writer.pushWritten(b, appended[0], appended[1], appended[2], appended[3], appended[4], appended[5]);
              return;
            }
            // no room left in the arena: the mapper's ranges are set, the writer finds the record a page
            if (b === APPEND_NO_FIT) return addMapped(line);
            declined = true;
          }
        }
        if (!declined && fast.map(buf, s, e)) return addMapped(line);
        const rec = jsonlRecord(
          Buffer.from(buf.buffer, buf.byteOffset + s, e - s),
          where.source,
          line,
          where.chunkStart,
        );
        if (!rec) return;
        const m = mapper(rec);
        if (isSkipped(m)) return;
        writer.add(route(m.key), m.key, m.value, line);
      },
    );
  } else if (csvFast) {
    // CSV: lines mapped from their bytes when certain (core/records/csv-fast.ts), else the record object and mapper
    const routeRange = makeRangeRouter(plan.buckets, req.shards);
    await forEachCsvRecord(
      chunk,
      readOpts,
      (header) => {
        const f = makeFastCsvMapper(req, header);
        return f && csvRecordAdder(f, writer, routeRange, made.csvArena);
      },
      (rec) => {
        const m = mapper(rec);
        if (!isSkipped(m)) writer.add(route(m.key), m.key, m.value, rec.line);
      },
    );
  } else {
    for await (const rec of readChunk(chunk, req.format, readOpts)) {
      const m = mapper(rec);
      if (isSkipped(m)) continue;
      writer.add(route(m.key), m.key, m.value, rec.line);
    }
  }
  const key = runKey(req.dataset, req.version, chunk.id);
  const sink = await (args.openSink ?? openS3Sink)(args.dataBucket, key);
  const summary = await writer.finish(sink);
  return {
    chunkId: chunk.id,
    runKey: key,
    records: summary.records,
    skipped: mapper.skipped,
    skippedExamples: mapper.examples.slice(0, PIPELINE.maxExamples),
    bytesIn: chunk.start !== undefined ? (chunk.end ?? chunk.size) - chunk.start : chunk.size,
    spills: summary.spills,
    runBytes: summary.bytes,
  };
}
