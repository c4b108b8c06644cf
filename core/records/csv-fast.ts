/**
 * CSV fast path: one CSV line's bytes → key and value bytes, without decoding the line to a string, splitting it
 * into field strings, building a record object or JSON.stringify, for the lines where the result is certain to be
 * byte-identical to the straightforward path (readers.ts csvRecords/csvFields → record object by header →
 * makeRecordMapper: canonical key bytes, JSON.stringify of the value object).
 *
 * Decided once per header (makeFastCsvMapper returns undefined, and every record takes the straightforward path):
 * a key, value or valueRaw column named like an Object.prototype property ("__proto__", "constructor", …: the
 * record object reads those through its prototype), a key or valueRaw column the header lacks (every record is bad),
 * duplicate header names. The value's member order is JavaScript's own (integer-like names first): it is taken from
 * an object built the way the straightforward path builds it, so "2021" or a "__proto__" header come out the same.
 *
 * Decided per line (map() returns false, and the caller hands the line to the straightforward path, which produces
 * the same output or names the bad record or malformed CSV with file and line): a blank line (not a record); a line
 * the straightforward path would not split cleanly (an unclosed quoted field — which includes a quoted field that
 * continues on the next line —, a quote inside an unquoted field, a closing quote not followed by a comma); a field
 * count other than the header's; bytes >= 0x80 that are not valid UTF-8 (the decode would replace them); an empty
 * key; a key or value over its size limit. Everything else is mapped: quoted fields with "" escapes, commas inside
 * quotes, control characters, '\' and '"' in values (JSON-escaped as JSON.stringify does: \" \\ \b \t \n \f \r,
 * \u00XX lowercase for the other controls), 0x00 in composite key components (escaped as the tuple encoding does).
 * The caller strips the line's '\n' and one trailing '\r' and never passes the object's first line (the header, or
 * a BOM). Property-tested against the straightforward path (test/unit/records-csv-fast.test.ts; whole Partition
 * runs: test/unit/partition-csv-fast.test.ts).
 *
 * Output: map() gives the key and value as byte ranges (RunWriter.addRanges); mapAppend() writes the record in the
 * run's encoded form straight into the writer's arena (csvRecordAdder, RunWriter.pushWritten). The value's constant
 * bytes (names, quotes, braces) are precomputed per header and written as 32-bit words.
 */
import { isUtf8 } from "node:buffer";
import { SST } from "../limits.js";
import type { RunWriter } from "../shuffle/run.js";
import { keyPrefix } from "../shuffle/sort.js";
import type { MappedRanges } from "./jsonl-fast.js";
import { varintLength, writeVarint } from "../shuffle/varint.js";

export interface FastCsvOptions {
  key: string[];
  value?: string[];
  valueRaw?: string;
  maxKeyBytes?: number;
  maxValueBytes?: number;
}

export interface FastCsvMapper extends MappedRanges {
  /**
   * Maps the record on line buf[start, end) (without '\n' and a trailing '\r'). true: the key is
   * keySrc[keyStart, keyEnd), the value the concatenation of valSrc[segs[2j], segs[2j+1]) for j < nsegs (valueLen
   * bytes); the ranges are valid until the next call. false: use the straightforward path for this line.
   */
  map(buf: Uint8Array, start: number, end: number): boolean;
  /**
   * map() that writes the record straight into `dst` at `pos` in the run writer's encoded form (varint key length,
   * key, varint value length, value, varint line; RunWriter.pushWritten), using at most dst[pos, limit). Returns its
   * length, with keySrc = dst and [keyStart, keyEnd) the key there; -1: use the straightforward path;
   * APPEND_NO_ROOM: the record is good but does not fit (use map() and RunWriter.addRanges).
   */
  mapAppend(
    buf: Uint8Array,
    start: number,
    end: number,
    line: number,
    dst: Uint8Array,
    pos: number,
    limit: number,
  ): number;
}

/** field flags: a quoted field holding "" pairs; a field JSON.stringify escapes ('\', control characters) */
const PAIRS = 1;
const ESCAPES = 2;

/** mapAppend: no room for the record at pos */
export const APPEND_NO_ROOM = -2;

const HEX = Uint8Array.from(Buffer.from("0123456789abcdef"));

/** The fast mapper for these options and this header, or undefined when the straightforward path must do it all. */
export function makeFastCsvMapper(opts: FastCsvOptions, header: string[]): FastCsvMapper | undefined {
  const names = [...opts.key, ...(opts.value ?? []), ...(opts.valueRaw !== undefined ? [opts.valueRaw] : [])];
  if (opts.key.length === 0 || names.some((n) => n in Object.prototype)) return undefined;
  if (new Set(header).size !== header.length) return undefined;
  const maxKey = opts.maxKeyBytes ?? SST.maxKeyBytes;
  const maxValue = opts.maxValueBytes ?? SST.maxValueBytes;
  // the record object as the straightforward path builds it (header name → field index), so that for...in gives
  // JavaScript's member order and drops what it drops (a "__proto__" header)
  const rec: Record<string, number> = {};
  for (let i = 0; i < header.length; i++) rec[header[i]] = i;
  const own = (c: string) => Object.hasOwn(rec, c);
  if (!opts.key.every(own)) return undefined;
  const keyIdx = Int32Array.from(opts.key, (c) => rec[c]);
  const nk = keyIdx.length;
  const mode = opts.valueRaw !== undefined ? 2 : opts.value ? 1 : 0; // 0 all but keys, 1 columns, 2 raw
  let rawIdx = -1;
  // value members in output order: field index (-1: null) and name
  const cols: number[] = [];
  const colNames: string[] = [];
  const member = (name: string, idx: number) => {
    colNames.push(name);
    cols.push(idx);
  };
  if (mode === 2) {
    if (!own(opts.valueRaw as string)) return undefined;
    rawIdx = rec[opts.valueRaw as string];
  } else if (mode === 1) {
    const o: Record<string, number> = {};
    for (const c of opts.value as string[]) o[c] = own(c) ? rec[c] : -1;
    for (const c in o) member(c, o[c]);
  } else {
    const keySet = new Set(opts.key);
    for (const c in rec) if (!keySet.has(c)) member(c, rec[c]);
  }
  const nc = cols.length;
  const colIdx = Int32Array.from(cols);
  // the value's constant bytes around the fields, in one array: piece k (before member k's field: '{' or the quote
  // closing the previous field and ',', the name, ':', the opening quote or null), then the tail (closing quote, '}')
  const pieces: string[] = [];
  for (let k = 0; k < nc; k++) {
    const before = k === 0 ? "{" : `${cols[k - 1] >= 0 ? '"' : ""},`;
    pieces.push(`${before}${JSON.stringify(colNames[k])}:${cols[k] >= 0 ? '"' : "null"}`);
  }
  pieces.push(nc === 0 ? "{}" : `${cols[nc - 1] >= 0 ? '"' : ""}}`);
  const pieceBytes = pieces.map((x) => Buffer.from(x, "utf8"));
  const pre = new Uint8Array(pieceBytes.reduce((a, x) => a + x.length, 0));
  const preOff = new Int32Array(nc + 2);
  for (let k = 0; k <= nc; k++) {
    pre.set(pieceBytes[k], preOff[k]);
    preOff[k + 1] = preOff[k] + pieceBytes[k].length;
  }
  const prefixBytes = pre.length;
  // the pieces as little-endian 32-bit words (written with a DataView: a quarter of the stores; the last word's spare
  // bytes land where the next field goes, or in valBuf's slack)
  const preWOff = new Int32Array(nc + 2);
  for (let k = 0; k <= nc; k++) preWOff[k + 1] = preWOff[k] + ((pieceBytes[k].length + 3) >> 2);
  const preW = new Uint32Array(preWOff[nc + 1]);
  for (let k = 0; k <= nc; k++) {
    const padded = new Uint8Array((preWOff[k + 1] - preWOff[k]) * 4);
    padded.set(pieceBytes[k]);
    const dv = new DataView(padded.buffer);
    for (let j = 0; j < padded.length; j += 4) preW[preWOff[k] + j / 4] = dv.getUint32(j, true);
  }
  const preLen = Int32Array.from(pieceBytes, (x) => x.length);
  const ncols = header.length;
  const fs = new Int32Array(ncols + 1);
  const fe = new Int32Array(ncols + 1);
  const ff = new Uint8Array(ncols + 1);
  // plain Uint8Arrays: the run writer copies from them with subarray(), cheaper than a Buffer's
  let keyBuf = new Uint8Array(256);
  let valBuf = new Uint8Array(4096);
  let valView = new DataView(valBuf.buffer);
  /** a DataView of the last line array seen (scanLines hands out one array per piece) */
  let lastB: Uint8Array | undefined;
  let bv: DataView<ArrayBufferLike> = new DataView(valBuf.buffer);
  /** mapAppend's destination and its DataView */
  let lastDst: Uint8Array | undefined;
  let dstView: DataView<ArrayBufferLike> = bv;

  /** field x's content as the straightforward path decodes it ("" → ") into keyBuf at o, 0x00 escaped when tuple */
  const keyBytes = (b: Uint8Array, x: number, o: number, tuple: boolean): number => {
    const s = fs[x];
    const z = fe[x];
    const f = ff[x];
    const kb = keyBuf;
    if (f === 0) {
      for (let i = s; i < z; i++) kb[o++] = b[i];
      return o;
    }
    for (let i = s; i < z; i++) {
      const c = b[i];
      kb[o++] = c;
      if (c === 34)
        i++; // "" → "
      else if (c === 0 && tuple) kb[o++] = 0xff;
    }
    return o;
  };

  /** the DataView of line array b (scanLines hands out one array per piece: made once per piece) */
  const lineView = (b: Uint8Array): DataView<ArrayBufferLike> => {
    if (b !== lastB) {
      lastB = b;
      bv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    }
    return bv;
  };

  /** bytes field x takes in the value: JSON-escaped (modes 0, 1) or raw ("" → ", mode 2) */
  const fieldLength = (b: Uint8Array, x: number): number => {
    const z = fe[x];
    if (ff[x] === 0) return z - fs[x];
    let n = 0;
    for (let y = fs[x]; y < z; y++) {
      const c = b[y];
      if (c === 34) {
        y++; // "" → \" (JSON) or " (raw)
        n += mode === 2 ? 1 : 2;
      } else if (mode === 2 || (c >= 32 && c !== 92)) n++;
      else if (c === 92 || c === 8 || c === 9 || c === 10 || c === 12 || c === 13) n += 2;
      else n += 6;
    }
    return n;
  };

  /** the value's exact length (parse() first) */
  const valueLength = (b: Uint8Array): number => {
    if (mode === 2) return fieldLength(b, rawIdx);
    let n = prefixBytes;
    for (let k = 0; k < nc; k++) if (colIdx[k] >= 0) n += fieldLength(b, colIdx[k]);
    return n;
  };

  /**
   * Writes the value (parse() first) to vb at o (dv: vb's DataView); returns its end. Up to 8 bytes after the end
   * may be overwritten (whole-word copies): vb must have them.
   */
  const writeValue = (b: Uint8Array, vb: Uint8Array, dv: DataView<ArrayBufferLike>, o: number): number => {
    if (mode === 2) {
      const x = rawIdx;
      if ((ff[x] & PAIRS) === 0) for (let y = fs[x]; y < fe[x]; y++) vb[o++] = b[y];
      else {
        // only "" pairs make a raw value differ from its bytes (ESCAPES is about JSON)
        for (let y = fs[x]; y < fe[x]; y++) {
          const c = b[y];
          vb[o++] = c;
          if (c === 34) y++;
        }
      }
      return o;
    }
    // a JSON object: piece 0, field 0, piece 1, field 1, …, the tail
    const lv = lineView(b);
    const blen = b.byteLength;
    for (let k = 0; k < nc; k++) {
      for (let w = preWOff[k], z = preWOff[k + 1], q = o; w < z; w++, q += 4) dv.setUint32(q, preW[w], true);
      o += preLen[k];
      const x = colIdx[k];
      if (x < 0) continue; // null: in the piece
      const z = fe[x];
      if (ff[x] === 0) {
        const y0 = fs[x];
        if (z + 3 <= blen) {
          // whole words (the spare bytes of the last are overwritten next, or land in the slack)
          for (let y = y0, q = o; y < z; y += 4, q += 4) dv.setUint32(q, lv.getUint32(y, true), true);
          o += z - y0;
        } else for (let y = y0; y < z; y++) vb[o++] = b[y];
        continue;
      }
      for (let y = fs[x]; y < z; y++) {
        const c = b[y];
        if (c >= 32 && c !== 92 && c !== 34) {
          vb[o++] = c;
          continue;
        }
        vb[o++] = 92;
        if (c === 34) {
          vb[o++] = 34;
          y++; // "" → \"
        } else if (c === 92) vb[o++] = 92;
        else if (c === 8) vb[o++] = 98;
        else if (c === 9) vb[o++] = 116;
        else if (c === 10) vb[o++] = 110;
        else if (c === 12) vb[o++] = 102;
        else if (c === 13) vb[o++] = 114;
        else {
          vb[o++] = 117;
          vb[o++] = 48;
          vb[o++] = 48;
          vb[o++] = HEX[c >> 4];
          vb[o++] = HEX[c & 15];
        }
      }
    }
    for (let w = preWOff[nc], z = preWOff[nc + 1], q = o; w < z; w++, q += 4) dv.setUint32(q, preW[w], true);
    return o + preLen[nc];
  };

  /** splits the line into fields as csvFields does and sets the key (out.keySrc…); false: decline */
  const parse = (b: Uint8Array, start: number, e: number): boolean => {
    if (start >= e) return false; // blank: not a record
    let nonAscii = false;
    let i = start;
    let n = 0;
    for (;;) {
      if (n >= ncols) return false;
      let f = 0;
      let s: number;
      if (i < e && b[i] === 34) {
        s = ++i;
        for (;;) {
          if (i >= e) return false; // not closed on this line
          const c = b[i];
          if (c === 34) {
            if (i + 1 < e && b[i + 1] === 34) {
              f |= PAIRS;
              i += 2;
              continue;
            }
            break;
          }
          if (c < 32 || c === 92) f |= ESCAPES;
          else if (c >= 128) nonAscii = true;
          i++;
        }
        fs[n] = s;
        fe[n] = i;
        i++;
        if (i < e && b[i] !== 44) return false;
      } else {
        s = i;
        while (i < e) {
          const c = b[i];
          if (c === 44) break;
          if (c === 34) return false;
          if (c < 32 || c === 92) f |= ESCAPES;
          else if (c >= 128) nonAscii = true;
          i++;
        }
        fs[n] = s;
        fe[n] = i;
      }
      ff[n++] = f;
      if (i >= e) break;
      i++; // the comma
      if (i === e) {
        if (n >= ncols) return false;
        fs[n] = e;
        fe[n] = e;
        ff[n++] = 0;
        break;
      }
    }
    if (n !== ncols) return false;
    if (nonAscii && !isUtf8(Buffer.from(b.buffer, b.byteOffset + start, e - start))) return false;
    // key
    if (nk === 1) {
      const x = keyIdx[0];
      if (fe[x] === fs[x]) return false; // empty
      if ((ff[x] & PAIRS) === 0) {
        if (fe[x] - fs[x] > maxKey) return false;
        out.keySrc = b;
        out.keyStart = fs[x];
        out.keyEnd = fe[x];
        return true;
      }
      if (keyBuf.length < fe[x] - fs[x]) keyBuf = new Uint8Array(2 * (fe[x] - fs[x]));
      const o = keyBytes(b, x, 0, false);
      if (o > maxKey) return false;
      out.keySrc = keyBuf;
      out.keyStart = 0;
      out.keyEnd = o;
      return true;
    }
    let bound = 0;
    for (let k = 0; k < nk; k++) {
      const x = keyIdx[k];
      if (fe[x] === fs[x]) return false; // empty
      bound += 2 * (fe[x] - fs[x]) + 2;
    }
    if (keyBuf.length < bound) keyBuf = new Uint8Array(bound);
    let o = 0;
    for (let k = 0; k < nk; k++) {
      o = keyBytes(b, keyIdx[k], o, true);
      keyBuf[o++] = 0;
      keyBuf[o++] = 1;
    }
    if (o > maxKey) return false;
    out.keySrc = keyBuf;
    out.keyStart = 0;
    out.keyEnd = o;
    return true;
  };

  const out: FastCsvMapper = {
    keySrc: keyBuf,
    keyStart: 0,
    keyEnd: 0,
    valSrc: valBuf,
    segs: new Int32Array(2),
    nsegs: 1,
    valueLen: 0,
    map(b: Uint8Array, start: number, e: number): boolean {
      if (!parse(b, start, e)) return false;
      const segs = out.segs;
      if (mode === 2 && (ff[rawIdx] & PAIRS) === 0) {
        // the raw field's bytes in place
        const x = rawIdx;
        if (fe[x] - fs[x] > maxValue) return false;
        out.valSrc = b;
        segs[0] = fs[x];
        segs[1] = fe[x];
        out.valueLen = fe[x] - fs[x];
        return true;
      }
      const vl = valueLength(b);
      if (vl > maxValue) return false;
      if (valBuf.length < vl + 8) {
        valBuf = new Uint8Array(Math.max(vl + 8, 2 * valBuf.length));
        valView = new DataView(valBuf.buffer);
      }
      writeValue(b, valBuf, valView, 0);
      out.valSrc = valBuf;
      segs[0] = 0;
      segs[1] = vl;
      out.valueLen = vl;
      return true;
    },
    mapAppend(b: Uint8Array, start: number, e: number, line: number, dst: Uint8Array, pos: number, limit: number) {
      if (!parse(b, start, e)) return -1;
      const vl = valueLength(b);
      if (vl > maxValue) return -1;
      const { keySrc, keyStart, keyEnd } = out;
      const kl = keyEnd - keyStart;
      const need = varintLength(kl) + kl + varintLength(vl) + vl + varintLength(line);
      if (pos + need + 8 > limit) return APPEND_NO_ROOM;
      if (dst !== lastDst) {
        lastDst = dst;
        dstView = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
      }
      let p = writeVarint(dst, pos, kl);
      const ks = p;
      for (let y = keyStart; y < keyEnd; y++) dst[p++] = keySrc[y];
      p = writeVarint(dst, p, vl);
      p = writeVarint(dst, writeValue(b, dst, dstView, p), line);
      out.keySrc = dst;
      out.keyStart = ks;
      out.keyEnd = ks + kl;
      return need;
    },
  };
  return out;
}

/** What csvRecordAdder needs of the run writer (core/shuffle/run.ts RunWriter). */
/** the part of RunWriter the CSV hot loop writes through */
export type CsvRunWriter = Pick<RunWriter, "appendPos" | "appendLimit" | "pushWritten" | "addRanges">;

/**
 * Partition's fast record function for forEachCsvRecord: maps the line into the writer's arena (page 0, `arena`)
 * in place when there is room (mapAppend, then pushWritten with the key's bucket and sort prefix), else through
 * map() and addRanges. false: declined (the straightforward path takes the line).
 */
export function csvRecordAdder(
  f: FastCsvMapper,
  writer: CsvRunWriter,
  route: (buf: Uint8Array, start: number, end: number) => number,
  arena: Uint8Array | undefined,
): (buf: Uint8Array, start: number, end: number, line: number) => boolean {
  const hi = new Uint32Array(1);
  const lo = new Uint32Array(1);
  const lc = new Uint8Array(1);
  return (buf, s, e, line) => {
    const pos = writer.appendPos;
    if (arena !== undefined && pos >= 0) {
      const len = f.mapAppend(buf, s, e, line, arena, pos, writer.appendLimit);
      if (len === -1) return false;
      if (len >= 0) {
        const ks = f.keyStart;
        const ke = f.keyEnd;
        keyPrefix(arena, ks, ke, hi, lo, lc, 0);
        writer.pushWritten(route(arena, ks, ke), len, ks, ke - ks, hi[0], lo[0], lc[0]);
        return true;
      }
    }
    if (!f.map(buf, s, e)) return false;
    const { keySrc, keyStart, keyEnd } = f;
    writer.addRanges(
      route(keySrc, keyStart, keyEnd),
      keySrc,
      keyStart,
      keyEnd,
      f.valSrc,
      f.segs,
      f.nsegs,
      f.valueLen,
      line,
    );
    return true;
  };
}
