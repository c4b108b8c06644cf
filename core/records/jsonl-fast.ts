/**
 * JSONL fast path: one line's bytes → key and value byte ranges, without JSON.parse, JSON.stringify or a UTF-8
 * decode, for the lines where the result is certain to be byte-identical to the straightforward path (jsonlRecord:
 * JSON.parse; makeRecordMapper: canonical key bytes, JSON.stringify of the value object).
 *
 * A line is mapped here only when it is valid JSON already in the form JSON.stringify would write (apart from
 * whitespace between tokens, which is left out): strings and names without escapes other than \" \\ \b \f \n \r \t
 * and \u00XX for the other control characters (lowercase hex), numbers in their shortest round-trip form (not 1.0,
 * 1e5, -0, 1E2, 0.10), no duplicate member names, no integer-like names (JavaScript orders those first), no
 * "__proto__", valid UTF-8, and keys/values that are good and within the limits. Anything else — including every malformed line and every bad record — makes map() return false and the
 * caller takes the straightforward path, which produces the same output or names the bad record (file, line,
 * field). Property-tested against that path (test/unit/records-jsonl-fast.test.ts).
 *
 * Values: default (all members but the key columns) = the line with the key members, their commas and all
 * whitespace between tokens cut out (a list of byte ranges of the line, no copy); `value` columns = a JSON object
 * assembled in a scratch buffer from the members' bytes (`null` for absent ones); `valueRaw` = the member's string
 * content or token bytes.
 */
import { isUtf8 } from "node:buffer";
import { SST } from "../limits.js";

export interface FastJsonlOptions {
  key: string[];
  value?: string[];
  valueRaw?: string;
  maxKeyBytes?: number;
  maxValueBytes?: number;
}

/** Where a fast mapper left its last record: key keySrc[keyStart, keyEnd), value the concatenation of
 * valSrc[segs[2j], segs[2j+1]) for j < nsegs (valueLen bytes), valid until its next call (JSONL and CSV). */
export interface MappedRanges {
  keySrc: Uint8Array;
  keyStart: number;
  keyEnd: number;
  valSrc: Uint8Array;
  segs: Int32Array;
  nsegs: number;
  valueLen: number;
}

export interface FastJsonlMapper extends MappedRanges {
  /**
   * Maps line buf[start, end) (without '\n' and trailing '\r'). true: the key is keySrc[keyStart, keyEnd), the value
   * the concatenation of valSrc[segs[2j], segs[2j+1]) for j < nsegs (valueLen bytes); the ranges are valid until the
   * next call. false: use the straightforward path for this line.
   */
  map(buf: Uint8Array, start: number, end: number): boolean;
}

enum Kind {
  String = 0,
  EscapedString = 1,
  Number = 2,
  Bool = 3,
  Null = 4,
  Object = 5,
  Array = 6,
}

/** deeper nesting takes the straightforward path */
const MAX_DEPTH = 64;
/** objects with more members take the straightforward path (duplicate detection is quadratic) */
const MAX_MEMBERS = 512;

const utf8 = (s: string) => Buffer.from(s, "utf8");

/**
 * The fast mapper for these options, or undefined when they rule the fast path out (a column name that is also an
 * Object.prototype property: the straightforward path reads those through the prototype).
 */
export function makeFastJsonlMapper(opts: FastJsonlOptions): FastJsonlMapper | undefined {
  const names = [...opts.key, ...(opts.value ?? []), ...(opts.valueRaw !== undefined ? [opts.valueRaw] : [])];
  if (opts.key.length === 0 || names.some((n) => n in Object.prototype)) return undefined;
  const maxKey = opts.maxKeyBytes ?? SST.maxKeyBytes;
  const maxValue = opts.maxValueBytes ?? SST.maxValueBytes;
  const mode = opts.valueRaw !== undefined ? 2 : opts.value ? 1 : 0; // 0 all but keys, 1 columns, 2 raw
  const keyNames = opts.key.map(utf8);
  const nk = keyNames.length;
  const single = nk === 1;
  const valCols = mode === 1 ? [...new Set(opts.value)] : mode === 2 ? [opts.valueRaw as string] : [];
  const valNames = valCols.map(utf8);
  const valNameJson = valCols.map((c) => utf8(`${JSON.stringify(c)}:`));
  const nv = valNames.length;

  // per line
  let b: Uint8Array = Buffer.alloc(0);
  let e = 0;
  let nonAscii = false;
  let lastKind: Kind = Kind.Null;
  let nameEsc = false;
  // an escaped name decodes to a string holding '"', '\\' or a control character: it can only equal a column name
  // that holds one too, and then escaped names take the straightforward path
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are the point
  const escapedNamesOk = !names.some((n) => /["\\\u0000-\u001f]/.test(n));
  let gaps = new Int32Array(64);
  let ngaps = 0;
  const nameSig = new Int32Array(MAX_DEPTH * 8 + MAX_MEMBERS);
  const nameStart = new Int32Array(MAX_DEPTH * 8 + MAX_MEMBERS);
  let nameSigLast = 0;
  let nameTop = 0;
  const keyS = new Int32Array(nk);
  const keyE = new Int32Array(nk);
  const valS = new Int32Array(nv);
  const valE = new Int32Array(nv);
  let scratch = Buffer.allocUnsafe(4096);

  const addGap = (a: number, z: number) => {
    const n2 = 2 * ngaps;
    if (ngaps > 0 && gaps[n2 - 1] >= a) {
      if (z > gaps[n2 - 1]) gaps[n2 - 1] = z;
      return;
    }
    if (n2 + 2 > gaps.length) {
      const g = new Int32Array(gaps.length * 2);
      g.set(gaps);
      gaps = g;
    }
    gaps[n2] = a;
    gaps[n2 + 1] = z;
    ngaps++;
  };

  /** cuts [a, z) out of the value; gaps already recorded from `a` on are inside it or follow it */
  const cut = (a: number, z: number) => {
    let g = ngaps;
    while (g > 0 && gaps[2 * g - 2] >= a) g--;
    const later = ngaps;
    ngaps = g;
    // gaps that start inside or right after [a, z) join it; any beyond (not produced by callers) are kept
    let k = g;
    while (k < later && gaps[2 * k] <= z) {
      if (gaps[2 * k + 1] > z) z = gaps[2 * k + 1];
      k++;
    }
    if (k === later) {
      addGap(a, z);
      return;
    }
    const rest = gaps.slice(2 * k, 2 * later);
    addGap(a, z);
    for (let x = 0; x < rest.length; x += 2) addGap(rest[x], rest[x + 1]);
  };

  /** skips whitespace from i (recorded as a gap); compact JSON has none, so the first byte decides cheaply */
  const ws = (i: number): number => {
    if (i >= e || b[i] > 32) return i;
    return wsRun(i);
  };

  const wsRun = (i: number): number => {
    const s = i;
    const b_ = b;
    const e_ = e;
    while (i < e_) {
      const c = b_[i];
      if (c !== 32 && c !== 9 && c !== 13 && c !== 10) break;
      i++;
    }
    if (i > s) addGap(s, i);
    return i;
  };

  /**
   * Length of the escape at i (b[i] is a backslash) when it is the form JSON.stringify writes, else 0: \" \\ \b \f \n
   * \r \t, and \u00XX (lowercase hex) for the other control characters.
   */
  const escapeLength = (i: number): number => {
    const b_ = b;
    if (i + 1 >= e) return 0;
    const d = b_[i + 1];
    if (d === 34 || d === 92 || d === 98 || d === 102 || d === 110 || d === 114 || d === 116) return 2;
    if (d === 117 && i + 5 < e && b_[i + 2] === 48 && b_[i + 3] === 48) {
      const h1 = b_[i + 4];
      const h2 = b_[i + 5];
      const lo = h2 >= 48 && h2 <= 57 ? h2 - 48 : h2 >= 97 && h2 <= 102 ? h2 - 87 : -1;
      const cu = (h1 === 48 ? 0 : h1 === 49 ? 16 : -100) + lo;
      if (lo >= 0 && cu >= 0 && cu !== 8 && cu !== 9 && cu !== 10 && cu !== 12 && cu !== 13) return 6;
    }
    return 0;
  };

  /** a string at i (b[i] is '"'): its end, or -1; sets lastKind */
  const str = (i: number): number => {
    let esc = false;
    const b_ = b;
    const e_ = e;
    i++;
    for (;;) {
      if (i >= e_) return -1;
      const c = b_[i];
      if (c === 34) break;
      if (c === 92) {
        const n = escapeLength(i);
        if (n === 0) return -1;
        esc = true;
        i += n;
        continue;
      }
      if (c < 32) return -1;
      if (c >= 128) nonAscii = true;
      i++;
    }
    lastKind = esc ? Kind.EscapedString : Kind.String;
    return i + 1;
  };

  /** a cheap signature of the name b[s, s + len): equal names have equal signatures */
  const signature = (s: number, len: number): number =>
    len === 0 ? 0 : ((len << 16) ^ (b[s] << 8) ^ (b[s + len - 1] * 0x1000003)) | 0;

  /**
   * A member name at i (b[i] is '"'): its end, or -1 (integer-like, __proto__, a duplicate, a non-canonical escape).
   * Sets nameEsc when it has escapes: such a name cannot equal a column name (see escapedNamesOk), and nameSig.
   */
  const name = (i: number, base: number): number => {
    const s = i + 1;
    const b_ = b;
    const e_ = e;
    nameEsc = false;
    i = s;
    for (;;) {
      if (i >= e_) return -1;
      const c = b_[i];
      if (c === 34) break;
      if (c === 92) {
        const n = escapeLength(i);
        if (n === 0) return -1;
        nameEsc = true;
        i += n;
        continue;
      }
      if (c < 32) return -1;
      if (c >= 128) nonAscii = true;
      i++;
    }
    const len = i - s;
    const c0 = b_[s];
    if (len > 0 && c0 >= 48 && c0 <= 57) {
      // integer-like names: JavaScript orders them before the others
      let x = s + 1;
      while (x < i && b_[x] >= 48 && b_[x] <= 57) x++;
      if (x === i) return -1;
    }
    if (len === 9 && c0 === 95 && b_[s + 1] === 95 && b_[s + 2] === 112 && b_[s + 7] === 95 && b_[s + 8] === 95) {
      if (b_[s + 3] === 114 && b_[s + 4] === 111 && b_[s + 5] === 116 && b_[s + 6] === 111) return -1;
    }
    const sig = signature(s, len);
    // a duplicate name (escapes are canonical, so equal names have equal bytes)
    for (let k = base; k < nameTop; k++) {
      if (nameSig[k] !== sig) continue;
      const o = nameStart[k];
      let x = 0;
      while (x < len && b_[o + x] === b_[s + x]) x++;
      if (x === len) return -1;
    }
    if (nameTop >= nameSig.length) return -1;
    nameSig[nameTop] = sig;
    nameStart[nameTop++] = s;
    nameSigLast = sig;
    return i + 1;
  };

  /** the end of the digits from i */
  const digits = (i: number): number => {
    const b_ = b;
    const e_ = e;
    while (i < e_) {
      const c = b_[i];
      if (c < 48 || c > 57) break;
      i++;
    }
    return i;
  };

  const num = (i: number): number => {
    const st = i;
    const neg = b[i] === 45;
    if (neg) i++;
    if (i >= e) return -1;
    const c = b[i];
    if (c === 48) i++;
    else if (c >= 49 && c <= 57) i = digits(i + 1);
    else return -1;
    let simple = true;
    if (i < e && b[i] === 46) {
      simple = false;
      const f = digits(i + 1);
      if (f === i + 1) return -1;
      i = f;
    }
    if (i < e && (b[i] === 101 || b[i] === 69)) {
      simple = false;
      i++;
      if (i < e && (b[i] === 43 || b[i] === 45)) i++;
      const x = digits(i);
      if (x === i) return -1;
      i = x;
    }
    const nd = i - st - (neg ? 1 : 0);
    if (simple && nd <= 15) {
      if (neg && nd === 1 && b[st + 1] === 48) return -1; // -0
    } else {
      // JSON.stringify writes numbers as String(n): the token must be that already
      const tok = Buffer.from(b.buffer, b.byteOffset + st, i - st).toString("latin1");
      if (String(Number(tok)) !== tok) return -1;
    }
    lastKind = Kind.Number;
    return i;
  };

  const lit = (i: number, c0: number): number => {
    if (c0 === 116) {
      if (i + 4 <= e && b[i + 1] === 114 && b[i + 2] === 117 && b[i + 3] === 101) {
        lastKind = Kind.Bool;
        return i + 4;
      }
    } else if (c0 === 102) {
      if (i + 5 <= e && b[i + 1] === 97 && b[i + 2] === 108 && b[i + 3] === 115 && b[i + 4] === 101) {
        lastKind = Kind.Bool;
        return i + 5;
      }
    } else if (c0 === 110) {
      if (i + 4 <= e && b[i + 1] === 117 && b[i + 2] === 108 && b[i + 3] === 108) {
        lastKind = Kind.Null;
        return i + 4;
      }
    }
    return -1;
  };

  /** any JSON value at i (no leading whitespace): its end, or -1; sets lastKind */
  const value = (i: number, depth: number): number => {
    if (i >= e) return -1;
    const c = b[i];
    if (c === 34) return str(i);
    if (c === 45 || (c >= 48 && c <= 57)) return num(i);
    if (c === 123) {
      if (depth >= MAX_DEPTH) return -1;
      const base = nameTop;
      i = ws(i + 1);
      if (i < e && b[i] === 125) {
        lastKind = Kind.Object;
        return i + 1;
      }
      for (;;) {
        if (i >= e || b[i] !== 34) return -1;
        i = name(i, base);
        if (i < 0) return -1;
        i = ws(i);
        if (i >= e || b[i] !== 58) return -1;
        i = value(ws(i + 1), depth + 1);
        if (i < 0) return -1;
        i = ws(i);
        if (i >= e) return -1;
        const d = b[i];
        if (d === 44) {
          i = ws(i + 1);
          continue;
        }
        if (d !== 125) return -1;
        nameTop = base;
        lastKind = Kind.Object;
        return i + 1;
      }
    }
    if (c === 91) {
      if (depth >= MAX_DEPTH) return -1;
      i = ws(i + 1);
      if (i < e && b[i] === 93) {
        lastKind = Kind.Array;
        return i + 1;
      }
      for (;;) {
        i = value(i, depth + 1);
        if (i < 0) return -1;
        i = ws(i);
        if (i >= e) return -1;
        const d = b[i];
        if (d === 44) {
          i = ws(i + 1);
          continue;
        }
        if (d !== 93) return -1;
        lastKind = Kind.Array;
        return i + 1;
      }
    }
    return lit(i, c);
  };

  /** index of the column named b[s, z) (signature sig) in `list`, or -1 */
  const find = (list: Uint8Array[], sigs: Int32Array, sig: number, s: number, z: number): number => {
    const len = z - s;
    for (let k = 0; k < list.length; k++) {
      if (sigs[k] !== sig) continue;
      const n = list[k];
      if (n.length !== len) continue;
      let x = 0;
      while (x < len && n[x] === b[s + x]) x++;
      if (x === len) return k;
    }
    return -1;
  };

  const sigsOf = (list: Uint8Array[]) =>
    Int32Array.from(list, (n) => {
      b = n;
      return signature(0, n.length);
    });
  const keySigs = sigsOf(keyNames);
  const valSigs = sigsOf(valNames);
  b = Buffer.alloc(0);

  const out: FastJsonlMapper = {
    keySrc: b,
    keyStart: 0,
    keyEnd: 0,
    valSrc: b,
    segs: new Int32Array(64),
    nsegs: 0,
    valueLen: 0,
    map(buf: Uint8Array, start: number, end: number): boolean {
      b = buf;
      e = end;
      nonAscii = false;
      ngaps = 0;
      nameTop = 0;
      for (let x = 0; x < nk; x++) keyS[x] = -1;
      for (let x = 0; x < nv; x++) valS[x] = -1;
      let i = ws(start);
      if (i >= e || b[i] !== 123) return false;
      i = ws(i + 1);
      let kept = 0;
      let comma = -1;
      if (i < e && b[i] === 125) return false; // {}: no key
      for (;;) {
        if (i >= e || b[i] !== 34) return false;
        const ms = i;
        const ne = name(i, 0);
        if (ne < 0) return false;
        let k = -1;
        let v = -1;
        if (nameEsc) {
          if (!escapedNamesOk) return false;
        } else {
          k = find(keyNames, keySigs, nameSigLast, ms + 1, ne - 1);
          v = nv > 0 ? find(valNames, valSigs, nameSigLast, ms + 1, ne - 1) : -1;
        }
        if (mode === 0 && k < 0) {
          // a kept member after only cut ones: its comma would lead the value
          if (kept === 0 && comma >= 0) cut(comma, comma + 1);
          kept++;
        }
        i = ws(ne);
        if (i >= e || b[i] !== 58) return false;
        const vs = ws(i + 1);
        const g0 = ngaps;
        i = value(vs, 1);
        if (i < 0) return false;
        if (k >= 0) {
          const kind = lastKind;
          if (kind === Kind.String) {
            if (i - vs === 2) return false; // empty key
            keyS[k] = vs + 1;
            keyE[k] = i - 1;
          } else if (kind === Kind.Number || kind === Kind.Bool) {
            keyS[k] = vs;
            keyE[k] = i;
          } else return false;
        }
        if (v >= 0) {
          const kind = lastKind;
          if (ngaps !== g0 || (mode === 2 && kind === Kind.EscapedString)) return false;
          if (mode === 2) {
            if (kind === Kind.String) {
              valS[0] = vs + 1;
              valE[0] = i - 1;
            } else if (kind === Kind.Null) {
              valS[0] = vs;
              valE[0] = vs;
            } else {
              valS[0] = vs;
              valE[0] = i;
            }
          } else {
            valS[v] = vs;
            valE[v] = i;
          }
        }
        // the value leaves out the key members with the comma before them (the first member: after it, see above)
        if (mode === 0 && k >= 0) cut(comma >= 0 ? comma : ms, i);
        i = ws(i);
        if (i >= e) return false;
        const d = b[i];
        if (d === 44) {
          comma = i;
          i = ws(i + 1);
          continue;
        }
        if (d !== 125) return false;
        i = ws(i + 1);
        break;
      }
      if (i !== e) return false;
      if (nonAscii && !isUtf8(Buffer.from(b.buffer, b.byteOffset + start, end - start))) return false;
      // key
      if (single) {
        if (keyS[0] < 0) return false;
        if (keyE[0] - keyS[0] > maxKey) return false;
        out.keySrc = b;
        out.keyStart = keyS[0];
        out.keyEnd = keyE[0];
      } else {
        let kl = 0;
        for (let x = 0; x < nk; x++) {
          if (keyS[x] < 0) return false;
          kl += keyE[x] - keyS[x] + 2;
        }
        if (kl > maxKey) return false;
        // tuple: component bytes (raw JSON text never holds a 0x00 byte, so nothing to escape), then 0x00 0x01
        if (scratch.length < kl) scratch = Buffer.allocUnsafe(Math.max(kl, scratch.length * 2));
        let o = 0;
        for (let x = 0; x < nk; x++) {
          for (let y = keyS[x]; y < keyE[x]; y++) scratch[o++] = b[y];
          scratch[o++] = 0;
          scratch[o++] = 1;
        }
        out.keySrc = scratch;
        out.keyStart = 0;
        out.keyEnd = kl;
      }
      // value
      let segs = out.segs;
      if (mode === 0) {
        let n = 0;
        let vl = 0;
        let from = start;
        if (2 * ngaps + 2 > segs.length) segs = out.segs = new Int32Array(2 * ngaps + 2);
        for (let g = 0; g < ngaps; g++) {
          const a = gaps[2 * g];
          if (a > from) {
            segs[2 * n] = from;
            segs[2 * n + 1] = a;
            vl += a - from;
            n++;
          }
          from = gaps[2 * g + 1];
        }
        if (end > from) {
          segs[2 * n] = from;
          segs[2 * n + 1] = end;
          vl += end - from;
          n++;
        }
        if (vl > maxValue) return false;
        out.valSrc = b;
        out.nsegs = n;
        out.valueLen = vl;
      } else if (mode === 2) {
        if (valS[0] < 0) return false;
        const vl = valE[0] - valS[0];
        if (vl > maxValue) return false;
        out.valSrc = b;
        segs[0] = valS[0];
        segs[1] = valE[0];
        out.nsegs = 1;
        out.valueLen = vl;
      } else {
        let vl = 2;
        for (let x = 0; x < nv; x++) vl += valNameJson[x].length + (valS[x] >= 0 ? valE[x] - valS[x] : 4) + 1;
        vl -= nv > 0 ? 1 : 0;
        if (vl > maxValue) return false;
        // after the key (which may sit in scratch)
        const ko = out.keySrc === scratch ? out.keyEnd : 0;
        if (scratch.length < ko + vl) {
          const s2 = Buffer.allocUnsafe(Math.max(ko + vl, scratch.length * 2));
          scratch.copy(s2, 0, 0, ko);
          if (out.keySrc === scratch) out.keySrc = s2;
          scratch = s2;
        }
        let o = ko;
        scratch[o++] = 123;
        for (let x = 0; x < nv; x++) {
          if (x > 0) scratch[o++] = 44;
          const nj = valNameJson[x];
          for (let y = 0; y < nj.length; y++) scratch[o++] = nj[y];
          if (valS[x] >= 0) for (let y = valS[x]; y < valE[x]; y++) scratch[o++] = b[y];
          else {
            scratch[o++] = 110;
            scratch[o++] = 117;
            scratch[o++] = 108;
            scratch[o++] = 108;
          }
        }
        scratch[o++] = 125;
        out.valSrc = scratch;
        segs[0] = ko;
        segs[1] = o;
        out.nsegs = 1;
        out.valueLen = o - ko;
      }
      return true;
    },
  };
  return out;
}
