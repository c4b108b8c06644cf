/**
 * Record → key/value bytes, with the bad-record policy.
 *
 * Key: one column → "utf8" (canonical string form as UTF-8); several → "tuple" (core/records/key.ts).
 * Value: `valueRaw` → the bytes of that one column (strings as UTF-8, byte arrays raw, other scalars canonical,
 * objects as JSON); else a JSON object of `value` columns (default: every field but the key columns, in record
 * order). JSON: bigints within the safe range as numbers, beyond as strings; byte arrays as base64; dates ISO-8601.
 */
import { InputError } from "../errors.js";
import { PIPELINE, SST } from "../limits.js";
import type { BadRecordPolicy } from "../pipeline/types.js";
import { canonicalString, encodeTupleKey, keyProblem, scalarBytes } from "./key.js";
import { type SourceRecord, where } from "./readers.js";

export interface RecordMapperOptions {
  key: string[];
  value?: string[];
  valueRaw?: string;
  badRecords: BadRecordPolicy;
  maxBadRecords: number;
  /** "line" (JSONL/CSV) or "row" (Parquet), for messages */
  unit?: string;
  maxKeyBytes?: number;
  maxValueBytes?: number;
  /**
   * records may hold bigints, byte arrays or dates (Parquet): values are serialized with a replacer. JSONL and CSV
   * records never do, and JSON.stringify without a replacer is several times faster. Default true (safe).
   */
  typedValues?: boolean;
}

export interface MappedRecord {
  key: Uint8Array;
  value: Uint8Array;
}
export interface SkippedRecord {
  skip: string;
  field?: string;
}
export type MapResult = MappedRecord | SkippedRecord;

export interface RecordMapper {
  (rec: SourceRecord): MapResult;
  /** records skipped so far */
  readonly skipped: number;
  /** up to PIPELINE.maxExamples messages "s3://b/k line 12: column 'id' is empty" */
  readonly examples: string[];
}

/** UTF-8 bytes of a string (Buffer.from is faster than TextEncoder in Node) */
const utf8 = (s: string): Uint8Array => Buffer.from(s, "utf8");

function jsonReplacer(_k: string, v: unknown): unknown {
  if (typeof v === "bigint") return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (v instanceof Uint8Array) return Buffer.from(v).toString("base64");
  return v;
}

export function valueJson(obj: Record<string, unknown>): string {
  return JSON.stringify(obj, plainValues(obj) ? undefined : jsonReplacer);
}

/**
 * True when no value of `obj` needs jsonReplacer: strings, numbers, booleans, null/undefined and Dates (serialized
 * through their toJSON before a replacer would see them). A bigint, a byte array or any nested object (which might
 * hold one) says false. JSON.stringify without a replacer keeps V8's fast serializer: measured on Parquet rows of six
 * scalar columns, valueJson took ~3.5 of a partition's ~8 busy CPU-s with the replacer on every record.
 */
function plainValues(obj: Record<string, unknown>): boolean {
  for (const k in obj) {
    const v = obj[k];
    if (typeof v === "object" ? v !== null && !(v instanceof Date) : typeof v === "bigint") return false;
  }
  return true;
}

function rawValueBytes(v: unknown): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (v === null || v === undefined) return new Uint8Array(0);
  if (typeof v === "object" && !(v instanceof Date)) return utf8(valueJson(v as Record<string, unknown>));
  return utf8(canonicalString(v));
}

/**
 * Builds the per-record mapping function. Bad records (unparseable, missing/empty/non-scalar key, key or value too
 * large): policy "fail" throws an InputError naming source, line and field at the first; "skip" returns
 * `{skip}` and throws once more than maxBadRecords were skipped, with examples.
 */
export function makeRecordMapper(opts: RecordMapperOptions): RecordMapper {
  if (opts.key.length === 0) throw new InputError("at least one key column is required", { field: "key" });
  const keyCols = opts.key;
  const keySet = new Set(keyCols);
  const valueCols = opts.value;
  const maxKey = opts.maxKeyBytes ?? SST.maxKeyBytes;
  const maxValue = opts.maxValueBytes ?? SST.maxValueBytes;
  const unit = opts.unit ?? "line";
  const single = keyCols.length === 1;
  const toJson = opts.typedValues === false ? (o: Record<string, unknown>) => JSON.stringify(o) : valueJson;
  let skipped = 0;
  const examples: string[] = [];

  const bad = (rec: SourceRecord, reason: string, field?: string): SkippedRecord => {
    const msg = `${where(rec, unit)}: ${reason}`;
    if (opts.badRecords === "fail") {
      throw new InputError(`${msg} (badRecords=fail; use badRecords=skip with maxBadRecords to tolerate some)`, {
        source: rec.source,
        line: rec.line,
        chunkStart: rec.chunkStart,
        field,
      });
    }
    skipped++;
    if (examples.length < PIPELINE.maxExamples) examples.push(msg);
    if (skipped > opts.maxBadRecords) {
      throw new InputError(
        `more than maxBadRecords=${opts.maxBadRecords} bad records; examples: ${examples.join("; ")}`,
        { source: rec.source, line: rec.line, field, skipped, examples: [...examples] },
      );
    }
    return { skip: msg, field };
  };

  const fn = ((rec: SourceRecord): MapResult => {
    if (rec.problem) return bad(rec, `record ${rec.problem}`);
    const r = rec.record;
    let key: Uint8Array;
    if (single) {
      const v = r[keyCols[0]];
      const p = keyProblem(v);
      if (p) return bad(rec, `key column '${keyCols[0]}' ${p}`, keyCols[0]);
      key = scalarBytes(v);
    } else {
      const comps: Uint8Array[] = [];
      for (const c of keyCols) {
        const v = r[c];
        const p = keyProblem(v);
        if (p) return bad(rec, `key column '${c}' ${p}`, c);
        comps.push(scalarBytes(v));
      }
      key = encodeTupleKey(comps);
    }
    if (key.length > maxKey)
      return bad(rec, `key is ${key.length} bytes, more than the ${maxKey} allowed`, keyCols.join(","));
    let value: Uint8Array;
    if (opts.valueRaw !== undefined) {
      if (!(opts.valueRaw in r)) return bad(rec, `value column '${opts.valueRaw}' is missing`, opts.valueRaw);
      value = rawValueBytes(r[opts.valueRaw]);
    } else {
      const o: Record<string, unknown> = {};
      if (valueCols) {
        for (const c of valueCols) o[c] = r[c] === undefined ? null : r[c];
      } else {
        for (const c in r) if (!keySet.has(c)) o[c] = r[c];
      }
      value = utf8(toJson(o));
    }
    if (value.length > maxValue) {
      return bad(rec, `value is ${value.length} bytes, more than the ${maxValue} allowed`, opts.valueRaw ?? "value");
    }
    return { key, value };
  }) as RecordMapper;
  Object.defineProperty(fn, "skipped", { get: () => skipped });
  Object.defineProperty(fn, "examples", { get: () => examples });
  return fn;
}

export function isSkipped(r: MapResult): r is SkippedRecord {
  return (r as SkippedRecord).skip !== undefined;
}
