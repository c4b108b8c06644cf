// AssemblyScript source of the WebAssembly JSONL scanner (core/records/jsonl-wasm.ts loads it). A port of map() in
// core/records/jsonl-fast.ts with the same semantics: a line is accepted only when the result is certain to equal
// the straightforward path (JSON.parse + the record mapper); anything else returns 0 and the caller takes that
// path. Built by `npm run build:wasm` (wasm/jsonl-scan/build.mjs) into core/records/wasm/jsonl-scan.gen.ts; a unit
// test rebuilds it and checks the committed artifact is byte-identical.
//
// No runtime, no allocation: all state lives in regions of the (imported) memory that the JS side lays out and
// passes to setup(). Positions are absolute addresses as i32; results are relative to `base` (the arena's start).
// String bodies are scanned 16 bytes at a time (SIMD); reads may run up to 15 bytes past the line's end, so the
// JS side keeps at least 16 readable bytes after every line it passes.
//
// Loops are `while (true)`, never `for (;;)`: asc 0.28.20 compiled some `for (;;)` loops here with an `unreachable`
// after them (a trap at run time, or "must return a value" at compile time).


/** JSON.stringify form check of a number token memory[p, p + n) (String(Number(tok)) === tok), done in JS */
@external("env", "numOk")
declare function numOk(p: i32, n: i32): i32;

const K_STRING: i32 = 0;
const K_ESCAPED: i32 = 1;
const K_NUMBER: i32 = 2;
const K_BOOL: i32 = 3;
const K_NULL: i32 = 4;
const K_OBJECT: i32 = 5;
const K_ARRAY: i32 = 6;

/** deeper nesting declines */
const MAX_DEPTH: i32 = 64;

// ---- configuration (setup) ----
let base: i32 = 0;
let mode: i32 = 0; // 0 all but keys, 1 value columns, 2 valueRaw
let nk: i32 = 0;
let nv: i32 = 0;
let maxKey: i32 = 0;
let maxValue: i32 = 0;
let escapedNamesOk: i32 = 0;
/** per column (keys, then value columns): name address, name length, signature, "name": address, its length */
let cols: i32 = 0;
/** keyStart, keyEnd, nsegs, valueLen (relative to base) */
let res: i32 = 0;
let segs: i32 = 0;
let gaps: i32 = 0;
let gapsCap: i32 = 0;
let nameSig: i32 = 0;
let nameStart: i32 = 0;
let nameCap: i32 = 0;
let keyS: i32 = 0;
let keyE: i32 = 0;
let valS: i32 = 0;
let valE: i32 = 0;
let scratch: i32 = 0;
let scratchSize: i32 = 0;
/** routing (mapAppend): shard count; per shard [first entry, entry count]; entries [lower key address, length, bucket] */
let rtShards: i32 = 0;
let rtShard: i32 = 0;
let rtEnt: i32 = 0;
/** mapAppend's results: record length, key start (relative to base), key length, sort prefix hi, lo, length class */
let app: i32 = 0;

// ---- per line ----
let e: i32 = 0;
let nonAscii: i32 = 0;
let lastKind: i32 = K_NULL;
let nameEsc: i32 = 0;
let ngaps: i32 = 0;
let nameTop: i32 = 0;
let nameSigLast: i32 = 0;
/** set when a fixed-size area overflowed: the line declines */
let full: i32 = 0;

@inline function u8at(i: i32): i32 {
  return <i32>load<u8>(<usize>i);
}
@inline function geti(a: i32, k: i32): i32 {
  return load<i32>(<usize>(a + (k << 2)));
}
@inline function seti(a: i32, k: i32, v: i32): void {
  store<i32>(<usize>(a + (k << 2)), v);
}

/** cfg: i32 words, see core/records/jsonl-wasm.ts */
export function setup(cfg: i32): void {
  base = geti(cfg, 0);
  mode = geti(cfg, 1);
  nk = geti(cfg, 2);
  nv = geti(cfg, 3);
  maxKey = geti(cfg, 4);
  maxValue = geti(cfg, 5);
  escapedNamesOk = geti(cfg, 6);
  cols = geti(cfg, 7);
  res = geti(cfg, 8);
  segs = geti(cfg, 9);
  gaps = geti(cfg, 10);
  gapsCap = geti(cfg, 11);
  nameSig = geti(cfg, 12);
  nameStart = geti(cfg, 13);
  nameCap = geti(cfg, 14);
  keyS = geti(cfg, 15);
  keyE = geti(cfg, 16);
  valS = geti(cfg, 17);
  valE = geti(cfg, 18);
  scratch = geti(cfg, 19);
  scratchSize = geti(cfg, 20);
  rtShards = geti(cfg, 21);
  rtShard = geti(cfg, 22);
  rtEnt = geti(cfg, 23);
  app = geti(cfg, 24);
  for (let k = 0; k < nk + nv; k++) {
    const c = cols + k * 20;
    seti(c, 2, signature(geti(c, 0), geti(c, 1)));
  }
}

function addGap(a: i32, z: i32): void {
  const n2 = 2 * ngaps;
  if (ngaps > 0 && geti(gaps, n2 - 1) >= a) {
    if (z > geti(gaps, n2 - 1)) seti(gaps, n2 - 1, z);
    return;
  }
  if (ngaps >= gapsCap) {
    full = 1;
    return;
  }
  seti(gaps, n2, a);
  seti(gaps, n2 + 1, z);
  ngaps++;
}

/** cuts [a, z) out of the value; gaps already recorded from `a` on are inside it (else the line declines) */
function cut(a: i32, z: i32): void {
  let g = ngaps;
  while (g > 0 && geti(gaps, 2 * g - 2) >= a) g--;
  const later = ngaps;
  ngaps = g;
  let k = g;
  while (k < later && geti(gaps, 2 * k) <= z) {
    if (geti(gaps, 2 * k + 1) > z) z = geti(gaps, 2 * k + 1);
    k++;
  }
  // gaps beyond [a, z) are not produced by the callers (the JS version keeps them); decline if it ever happens
  if (k != later) full = 1;
  addGap(a, z);
}

function wsRun(i: i32): i32 {
  const s = i;
  while (i < e) {
    const c = u8at(i);
    if (c != 32 && c != 9 && c != 13 && c != 10) break;
    i++;
  }
  if (i > s) addGap(s, i);
  return i;
}

@inline function ws(i: i32): i32 {
  if (i >= e || u8at(i) > 32) return i;
  return wsRun(i);
}

/** length of the escape at i when it is the form JSON.stringify writes, else 0 */
function escapeLength(i: i32): i32 {
  if (i + 1 >= e) return 0;
  const d = u8at(i + 1);
  if (d == 34 || d == 92 || d == 98 || d == 102 || d == 110 || d == 114 || d == 116) return 2;
  if (d == 117 && i + 5 < e && u8at(i + 2) == 48 && u8at(i + 3) == 48) {
    const h1 = u8at(i + 4);
    const h2 = u8at(i + 5);
    const lo = h2 >= 48 && h2 <= 57 ? h2 - 48 : h2 >= 97 && h2 <= 102 ? h2 - 87 : -1;
    const cu = (h1 == 48 ? 0 : h1 == 49 ? 16 : -100) + lo;
    if (lo >= 0 && cu >= 0 && cu != 8 && cu != 9 && cu != 10 && cu != 12 && cu != 13) return 6;
  }
  return 0;
}

/**
 * The first byte at or after i that is '"', '\\' or a control character, or some position >= e when there is none
 * before e. Notes non-ASCII bytes in nonAscii (possibly some past the string: that only costs a UTF-8 check).
 */
@inline function special(i: i32): i32 {
  const q = i8x16.splat(34);
  const bs = i8x16.splat(92);
  const sp = i8x16.splat(32);
  while (true) {
    const v = v128.load(<usize>i);
    const m = i8x16.bitmask(v128.or(v128.or(i8x16.eq(v, q), i8x16.eq(v, bs)), i8x16.lt_u(v, sp)));
    nonAscii |= i8x16.bitmask(v);
    if (m != 0) return i + ctz(m);
    i += 16;
    if (i >= e) break;
  }
  return i;
}

/** whether the last quoted() body had escapes */
let quotedEsc: i32 = 0;

/**
 * The body of a string or name from i (the byte after its opening '"'): the index of its closing '"', or -1 (no end,
 * a control character, an escape not in JSON.stringify's form). Sets quotedEsc.
 */
@inline function quoted(i: i32): i32 {
  quotedEsc = 0;
  while (true) {
    i = special(i);
    if (i >= e) return -1;
    const c = u8at(i);
    if (c == 34) return i;
    if (c == 92) {
      const n = escapeLength(i);
      if (n == 0) return -1;
      quotedEsc = 1;
      i += n;
      continue;
    }
    return -1; // a control character
  }
}

/** a string at i (b[i] is '"'): its end, or -1; sets lastKind */
@inline function str(i: i32): i32 {
  const q = quoted(i + 1);
  if (q < 0) return -1;
  lastKind = quotedEsc ? K_ESCAPED : K_STRING;
  return q + 1;
}

/** a cheap signature of the name b[s, s + len): equal names have equal signatures */
function signature(s: i32, len: i32): i32 {
  return len == 0 ? 0 : (len << 16) ^ (u8at(s) << 8) ^ (u8at(s + len - 1) * 0x1000003);
}

/** a member name at i (b[i] is '"'): its end, or -1 (integer-like, __proto__, a duplicate, a bad escape) */
@inline function name(i: i32, nbase: i32): i32 {
  const s = i + 1;
  i = quoted(s);
  nameEsc = quotedEsc;
  if (i < 0) return -1;
  const len = i - s;
  const c0 = u8at(s);
  if (len > 0 && c0 >= 48 && c0 <= 57) {
    // integer-like names: JavaScript orders them before the others
    let x = s + 1;
    while (x < i && u8at(x) >= 48 && u8at(x) <= 57) x++;
    if (x == i) return -1;
  }
  if (len == 9 && c0 == 95 && u8at(s + 1) == 95 && u8at(s + 2) == 112 && u8at(s + 7) == 95 && u8at(s + 8) == 95) {
    if (u8at(s + 3) == 114 && u8at(s + 4) == 111 && u8at(s + 5) == 116 && u8at(s + 6) == 111) return -1;
  }
  const sig = signature(s, len);
  for (let k = nbase; k < nameTop; k++) {
    if (geti(nameSig, k) != sig) continue;
    const o = geti(nameStart, k);
    let x = 0;
    while (x < len && u8at(o + x) == u8at(s + x)) x++;
    if (x == len) return -1;
  }
  if (nameTop >= nameCap) return -1;
  seti(nameSig, nameTop, sig);
  seti(nameStart, nameTop, s);
  nameTop++;
  nameSigLast = sig;
  return i + 1;
}

@inline function digits(i: i32): i32 {
  while (i < e) {
    const c = u8at(i);
    if (c < 48 || c > 57) break;
    i++;
  }
  return i;
}

@inline function num(i: i32): i32 {
  const st = i;
  const neg = u8at(i) == 45;
  if (neg) i++;
  if (i >= e) return -1;
  const c = u8at(i);
  if (c == 48) i++;
  else if (c >= 49 && c <= 57) i = digits(i + 1);
  else return -1;
  let simple = true;
  if (i < e && u8at(i) == 46) {
    simple = false;
    const f = digits(i + 1);
    if (f == i + 1) return -1;
    i = f;
  }
  if (i < e && (u8at(i) == 101 || u8at(i) == 69)) {
    simple = false;
    i++;
    if (i < e && (u8at(i) == 43 || u8at(i) == 45)) i++;
    const x = digits(i);
    if (x == i) return -1;
    i = x;
  }
  const nd = i - st - (neg ? 1 : 0);
  if (simple && nd <= 15) {
    if (neg && nd == 1 && u8at(st + 1) == 48) return -1; // -0
  } else if (!numOk(st, i - st)) return -1;
  lastKind = K_NUMBER;
  return i;
}

function lit(i: i32, c0: i32): i32 {
  if (c0 == 116) {
    if (i + 4 <= e && u8at(i + 1) == 114 && u8at(i + 2) == 117 && u8at(i + 3) == 101) {
      lastKind = K_BOOL;
      return i + 4;
    }
  } else if (c0 == 102) {
    if (i + 5 <= e && u8at(i + 1) == 97 && u8at(i + 2) == 108 && u8at(i + 3) == 115 && u8at(i + 4) == 101) {
      lastKind = K_BOOL;
      return i + 5;
    }
  } else if (c0 == 110) {
    if (i + 4 <= e && u8at(i + 1) == 117 && u8at(i + 2) == 108 && u8at(i + 3) == 108) {
      lastKind = K_NULL;
      return i + 4;
    }
  }
  return -1;
}

/** any JSON value at i (no leading whitespace): its end, or -1; sets lastKind */
function value(i: i32, depth: i32): i32 {
  if (i >= e) return -1;
  const c = u8at(i);
  if (c == 34) return str(i);
  if (c == 45 || (c >= 48 && c <= 57)) return num(i);
  if (c == 123) {
    if (depth >= MAX_DEPTH) return -1;
    const nbase = nameTop;
    i = ws(i + 1);
    if (i < e && u8at(i) == 125) {
      lastKind = K_OBJECT;
      return i + 1;
    }
    while (true) {
      if (i >= e || u8at(i) != 34) return -1;
      i = name(i, nbase);
      if (i < 0) return -1;
      i = ws(i);
      if (i >= e || u8at(i) != 58) return -1;
      i = value(ws(i + 1), depth + 1);
      if (i < 0) return -1;
      i = ws(i);
      if (i >= e) return -1;
      const d = u8at(i);
      if (d == 44) {
        i = ws(i + 1);
        continue;
      }
      if (d != 125) return -1;
      nameTop = nbase;
      lastKind = K_OBJECT;
      return i + 1;
    }
  }
  if (c == 91) {
    if (depth >= MAX_DEPTH) return -1;
    i = ws(i + 1);
    if (i < e && u8at(i) == 93) {
      lastKind = K_ARRAY;
      return i + 1;
    }
    while (true) {
      i = value(i, depth + 1);
      if (i < 0) return -1;
      i = ws(i);
      if (i >= e) return -1;
      const d = u8at(i);
      if (d == 44) {
        i = ws(i + 1);
        continue;
      }
      if (d != 93) return -1;
      lastKind = K_ARRAY;
      return i + 1;
    }
  }
  return lit(i, c);
}

/** index of the column named b[s, z) (signature sig) among columns [from, from + n), or -1 */
function find(from: i32, n: i32, sig: i32, s: i32, z: i32): i32 {
  const len = z - s;
  for (let k = 0; k < n; k++) {
    const c = cols + (from + k) * 20;
    if (geti(c, 2) != sig || geti(c, 1) != len) continue;
    const o = geti(c, 0);
    let x = 0;
    while (x < len && u8at(o + x) == u8at(s + x)) x++;
    if (x == len) return k;
  }
  return -1;
}

/** valid UTF-8 (as Node's buffer.isUtf8: no overlong forms, no surrogates, nothing past U+10FFFF) */
function utf8ok(i: i32, z: i32): bool {
  while (i < z) {
    if (i + 16 <= z && i8x16.bitmask(v128.load(<usize>i)) == 0) {
      i += 16;
      continue;
    }
    const c = u8at(i);
    if (c < 0x80) {
      i++;
      continue;
    }
    if (c < 0xc2) return false;
    if (c < 0xe0) {
      if (i + 1 >= z || (u8at(i + 1) & 0xc0) != 0x80) return false;
      i += 2;
      continue;
    }
    if (c < 0xf0) {
      if (i + 2 >= z) return false;
      const b1 = u8at(i + 1);
      const lo = c == 0xe0 ? 0xa0 : 0x80;
      const hi = c == 0xed ? 0x9f : 0xbf;
      if (b1 < lo || b1 > hi || (u8at(i + 2) & 0xc0) != 0x80) return false;
      i += 3;
      continue;
    }
    if (c < 0xf5) {
      if (i + 3 >= z) return false;
      const b1 = u8at(i + 1);
      const lo = c == 0xf0 ? 0x90 : 0x80;
      const hi = c == 0xf4 ? 0x8f : 0xbf;
      if (b1 < lo || b1 > hi || (u8at(i + 2) & 0xc0) != 0x80 || (u8at(i + 3) & 0xc0) != 0x80) return false;
      i += 4;
      continue;
    }
    return false;
  }
  return true;
}

/**
 * Maps the line at [start, end) (absolute addresses, without '\n' and a trailing '\r'). 1: results at res (key
 * range, segment count, value length; segments at segs, all relative to base); 0: take the straightforward path.
 */
export function map(start: i32, end: i32): i32 {
  e = end;
  nonAscii = 0;
  ngaps = 0;
  nameTop = 0;
  full = 0;
  for (let x = 0; x < nk; x++) seti(keyS, x, -1);
  for (let x = 0; x < nv; x++) seti(valS, x, -1);
  let i = ws(start);
  if (i >= e || u8at(i) != 123) return 0;
  i = ws(i + 1);
  let kept = 0;
  let comma = -1;
  if (i < e && u8at(i) == 125) return 0; // {}: no key
  while (true) {
    if (i >= e || u8at(i) != 34) return 0;
    const ms = i;
    const ne = name(i, 0);
    if (ne < 0) return 0;
    let k = -1;
    let v = -1;
    if (nameEsc) {
      if (!escapedNamesOk) return 0;
    } else {
      k = find(0, nk, nameSigLast, ms + 1, ne - 1);
      v = nv > 0 ? find(nk, nv, nameSigLast, ms + 1, ne - 1) : -1;
    }
    if (mode == 0 && k < 0) {
      // a kept member after only cut ones: its comma would lead the value
      if (kept == 0 && comma >= 0) cut(comma, comma + 1);
      kept++;
    }
    i = ws(ne);
    if (i >= e || u8at(i) != 58) return 0;
    const vs = ws(i + 1);
    const g0 = ngaps;
    // strings and numbers (most members) without the call through value()
    const c0 = vs < e ? u8at(vs) : 0;
    if (c0 == 34) i = str(vs);
    else if (c0 == 45 || (c0 >= 48 && c0 <= 57)) i = num(vs);
    else i = value(vs, 1);
    if (i < 0) return 0;
    if (k >= 0) {
      const kind = lastKind;
      if (kind == K_STRING) {
        if (i - vs == 2) return 0; // empty key
        seti(keyS, k, vs + 1);
        seti(keyE, k, i - 1);
      } else if (kind == K_NUMBER || kind == K_BOOL) {
        seti(keyS, k, vs);
        seti(keyE, k, i);
      } else return 0;
    }
    if (v >= 0) {
      const kind = lastKind;
      if (ngaps != g0 || (mode == 2 && kind == K_ESCAPED)) return 0;
      if (mode == 2) {
        if (kind == K_STRING) {
          seti(valS, 0, vs + 1);
          seti(valE, 0, i - 1);
        } else if (kind == K_NULL) {
          seti(valS, 0, vs);
          seti(valE, 0, vs);
        } else {
          seti(valS, 0, vs);
          seti(valE, 0, i);
        }
      } else {
        seti(valS, v, vs);
        seti(valE, v, i);
      }
    }
    // the value leaves out the key members with the comma before them (the first member: after it, see above)
    if (mode == 0 && k >= 0) cut(comma >= 0 ? comma : ms, i);
    i = ws(i);
    if (i >= e) return 0;
    const d = u8at(i);
    if (d == 44) {
      comma = i;
      i = ws(i + 1);
      continue;
    }
    if (d != 125) return 0;
    break;
  }
  i = ws(i + 1);
  if (i != e || full) return 0;
  if (nonAscii && !utf8ok(start, end)) return 0;
  // key
  let keyInScratch = 0;
  let ko = 0;
  if (nk == 1) {
    if (geti(keyS, 0) < 0) return 0;
    if (geti(keyE, 0) - geti(keyS, 0) > maxKey) return 0;
    seti(res, 0, geti(keyS, 0) - base);
    seti(res, 1, geti(keyE, 0) - base);
  } else {
    let kl = 0;
    for (let x = 0; x < nk; x++) {
      if (geti(keyS, x) < 0) return 0;
      kl += geti(keyE, x) - geti(keyS, x) + 2;
    }
    if (kl > maxKey || kl > scratchSize) return 0;
    // tuple: component bytes (raw JSON text never holds a 0x00 byte, so nothing to escape), then 0x00 0x01
    let o = scratch;
    for (let x = 0; x < nk; x++) {
      const a = geti(keyS, x);
      const n = geti(keyE, x) - a;
      memory.copy(<usize>o, <usize>a, <usize>n);
      o += n;
      store<u8>(<usize>o, 0);
      store<u8>(<usize>(o + 1), 1);
      o += 2;
    }
    seti(res, 0, scratch - base);
    seti(res, 1, o - base);
    keyInScratch = 1;
    ko = kl;
  }
  // value
  if (mode == 0) {
    let n = 0;
    let vl = 0;
    let from = start;
    for (let g = 0; g < ngaps; g++) {
      const a = geti(gaps, 2 * g);
      if (a > from) {
        seti(segs, 2 * n, from - base);
        seti(segs, 2 * n + 1, a - base);
        vl += a - from;
        n++;
      }
      from = geti(gaps, 2 * g + 1);
    }
    if (end > from) {
      seti(segs, 2 * n, from - base);
      seti(segs, 2 * n + 1, end - base);
      vl += end - from;
      n++;
    }
    if (vl > maxValue) return 0;
    seti(res, 2, n);
    seti(res, 3, vl);
  } else if (mode == 2) {
    if (geti(valS, 0) < 0) return 0;
    const vl = geti(valE, 0) - geti(valS, 0);
    if (vl > maxValue) return 0;
    seti(segs, 0, geti(valS, 0) - base);
    seti(segs, 1, geti(valE, 0) - base);
    seti(res, 2, 1);
    seti(res, 3, vl);
  } else {
    let vl = 2;
    for (let x = 0; x < nv; x++) {
      const c = cols + (nk + x) * 20;
      vl += geti(c, 4) + (geti(valS, x) >= 0 ? geti(valE, x) - geti(valS, x) : 4) + 1;
    }
    vl -= nv > 0 ? 1 : 0;
    if (vl > maxValue || ko + vl > scratchSize) return 0;
    // after the key (which may sit in scratch)
    const o0 = scratch + (keyInScratch ? ko : 0);
    let o = o0;
    store<u8>(<usize>(o++), 123);
    for (let x = 0; x < nv; x++) {
      if (x > 0) store<u8>(<usize>(o++), 44);
      const c = cols + (nk + x) * 20;
      const nj = geti(c, 4);
      memory.copy(<usize>o, <usize>geti(c, 3), <usize>nj);
      o += nj;
      const a = geti(valS, x);
      if (a >= 0) {
        const n = geti(valE, x) - a;
        memory.copy(<usize>o, <usize>a, <usize>n);
        o += n;
      } else {
        store<u32>(<usize>o, 0x6c6c756e); // "null"
        o += 4;
      }
    }
    store<u8>(<usize>(o++), 125);
    seti(segs, 0, o0 - base);
    seti(segs, 1, o - base);
    seti(res, 2, 1);
    seti(res, 3, o - o0);
  }
  return 1;
}

// ---- map + route + append (Partition) ----

/** murmur3_x86_32 of [s, z) with seed 0, as core/shuffle/shard.ts murmur3_32Range */
function murmur3(s: i32, z: i32): u32 {
  const len = z - s;
  const bend = s + ((len >>> 2) << 2);
  let h: u32 = 0;
  let o = s;
  while (o < bend) {
    let k = load<u32>(<usize>o);
    k *= 0xcc9e2d51;
    k = rotl<u32>(k, 15);
    k *= 0x1b873593;
    h ^= k;
    h = rotl<u32>(h, 13);
    h = h * 5 + 0xe6546b64;
    o += 4;
  }
  const rem = len & 3;
  if (rem > 0) {
    let k1: u32 = 0;
    if (rem == 3) k1 ^= (<u32>u8at(bend + 2)) << 16;
    if (rem >= 2) k1 ^= (<u32>u8at(bend + 1)) << 8;
    k1 ^= <u32>u8at(bend);
    k1 *= 0xcc9e2d51;
    k1 = rotl<u32>(k1, 15);
    k1 *= 0x1b873593;
    h ^= k1;
  }
  h ^= <u32>len;
  h ^= h >>> 16;
  h *= 0x85ebca6b;
  h ^= h >>> 13;
  h *= 0xc2b2ae35;
  h ^= h >>> 16;
  return h;
}

/** bytewise order of [a, a + la) against [s, s + ls) (as Buffer.compare): < 0, 0, > 0 */
function compareBytes(a: i32, la: i32, s: i32, ls: i32): i32 {
  const n = la < ls ? la : ls;
  let x = 0;
  while (x + 8 <= n && load<u64>(<usize>(a + x)) == load<u64>(<usize>(s + x))) x += 8;
  while (x < n) {
    const d = u8at(a + x) - u8at(s + x);
    if (d != 0) return d;
    x++;
  }
  return la - ls;
}

/**
 * The bucket of the key [s, z) (absolute addresses), as core/pipeline/sample.ts makeRangeRouter: shard = murmur3 mod
 * shards, then the last of the shard's buckets whose lower bound is <= the key.
 */
export function route(s: i32, z: i32): i32 {
  const sh = <i32>(murmur3(s, z) % <u32>rtShards);
  const first = geti(rtShard, 2 * sh);
  let lo = 0;
  let hi = geti(rtShard, 2 * sh + 1) - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    const en = rtEnt + (first + mid) * 12;
    if (compareBytes(geti(en, 0), geti(en, 1), s, z - s) <= 0) lo = mid;
    else hi = mid - 1;
  }
  return geti(rtEnt + (first + lo) * 12, 2);
}

@inline function varLen(n: i32): i32 {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

/** writes n (>= 0) as an unsigned LEB128 varint at p; returns the position after it */
function putVarint(p: i32, n: i32): i32 {
  let u = <u32>n;
  while (u >= 0x80) {
    store<u8>(<usize>p, (u & 0x7f) | 0x80);
    u >>>= 7;
    p++;
  }
  store<u8>(<usize>p, u);
  return p + 1;
}

/** copies n bytes from s to d (d before s or the ranges apart) */
@inline function copyBytes(d: i32, s: i32, n: i32): void {
  if (n > 64) {
    memory.copy(<usize>d, <usize>s, <usize>n);
    return;
  }
  while (n >= 16) {
    v128.store(<usize>d, v128.load(<usize>s));
    d += 16;
    s += 16;
    n -= 16;
  }
  if (n >= 8) {
    store<u64>(<usize>d, load<u64>(<usize>s));
    d += 8;
    s += 8;
    n -= 8;
  }
  while (n > 0) {
    store<u8>(<usize>d, load<u8>(<usize>s));
    d++;
    s++;
    n--;
  }
}

/**
 * map() the line [start, end) (absolute addresses); when it is accepted, route the key and append the record as
 * RunWriter encodes it (varint keyLen | key | varint valueLen | value | varint line) at [pos, limit) (relative to
 * base). Returns the bucket (>= 0) with the record length, key start and length and the key's sort prefix (as
 * core/shuffle/sort.ts keyPrefix) at `app`; -1: the line declines (take the straightforward path); -2: accepted but
 * the record does not fit (map()'s results are at res and segs, nothing was written).
 */
export function mapAppend(start: i32, end: i32, line: i32, pos: i32, limit: i32): i32 {
  if (map(start, end) == 0) return -1;
  const ks = geti(res, 0) + base;
  const ke = geti(res, 1) + base;
  const kl = ke - ks;
  const ns = geti(res, 2);
  const vl = geti(res, 3);
  const len = varLen(kl) + kl + varLen(vl) + vl + varLen(line);
  if (len > limit - pos) return -2;
  const b = route(ks, ke);
  let p = putVarint(base + pos, kl);
  const kStart = p;
  copyBytes(p, ks, kl);
  p = putVarint(p + kl, vl);
  let j = 0;
  while (j < ns) {
    const a = geti(segs, 2 * j) + base;
    const n = geti(segs, 2 * j + 1) + base - a;
    copyBytes(p, a, n);
    p += n;
    j++;
  }
  putVarint(p, line);
  seti(app, 0, len);
  seti(app, 1, kStart - base);
  seti(app, 2, kl);
  // sort prefix: the first 8 key bytes big-endian (zero-padded), length class min(length, 8) or 9 past 8
  if (kl >= 8) {
    seti(app, 3, <i32>bswap<u32>(load<u32>(<usize>kStart)));
    seti(app, 4, <i32>bswap<u32>(load<u32>(<usize>(kStart + 4))));
    seti(app, 5, kl > 8 ? 9 : 8);
  } else {
    let h: u32 = 0;
    let w: u32 = 0;
    let x = 0;
    while (x < kl) {
      const c = <u32>u8at(kStart + x);
      if (x < 4) h |= c << (24 - 8 * x);
      else w |= c << (56 - 8 * x);
      x++;
    }
    seti(app, 3, <i32>h);
    seti(app, 4, <i32>w);
    seti(app, 5, kl);
  }
  return b;
}

/** the first '\n' in [i, z), or z (reads up to 15 bytes past z, as special()) */
@inline function newline(i: i32, z: i32): i32 {
  const nl = i8x16.splat(10);
  while (i < z) {
    const m = i8x16.bitmask(i8x16.eq(v128.load(<usize>i), nl));
    if (m != 0) {
      const p = i + ctz(m);
      return p < z ? p : z;
    }
    i += 16;
  }
  return z;
}

/**
 * mapAppend() over the lines of [from, end) (relative to base) one after another, for as long as each is accepted:
 * line `line` first, then line + 1, ...; a line is the bytes before a '\n' (and a '\r' before it). Appends each
 * record at pos, pos + its length, ... within `limit`, and writes a row of 7 i32 per record at `out` (at most `cap`
 * rows): bucket, then mapAppend's 6 results. Stops before a line that starts at or after `stop`, a line without its
 * '\n' before `end`, a line that declines or does not fit, and a record whose length + `overhead` exceeds what is
 * left of `room` (then that record's bytes may have been written at its position: nothing is accounted for them).
 * Returns the rows written; app[6] = where it stopped (the start of the first line not taken, relative to base),
 * app[7] = why: 0 rows full, 1 no complete line left, 2 stop reached, 3 the line declines, 4 no room.
 */
export function mapAppendLines(
  from: i32,
  end: i32,
  stop: i32,
  line: i32,
  pos: i32,
  limit: i32,
  room: i32,
  overhead: i32,
  out: i32,
  cap: i32,
): i32 {
  let i = from + base;
  const z = end + base;
  const st = stop + base;
  let k = 0;
  let why = 0;
  while (true) {
    if (k >= cap) break;
    if (i >= st) {
      why = 2;
      break;
    }
    const nl = newline(i, z);
    if (nl >= z) {
      why = 1;
      break;
    }
    const le = nl > i && u8at(nl - 1) == 13 ? nl - 1 : nl;
    const b = mapAppend(i, le, line, pos, limit);
    if (b < 0) {
      why = b == -1 ? 3 : 4;
      break;
    }
    const len = geti(app, 0);
    if (len + overhead > room) {
      why = 4;
      break;
    }
    room -= len + overhead;
    const r = out + k * 28;
    seti(r, 0, b);
    seti(r, 1, len);
    seti(r, 2, geti(app, 1));
    seti(r, 3, geti(app, 2));
    seti(r, 4, geti(app, 3));
    seti(r, 5, geti(app, 4));
    seti(r, 6, geti(app, 5));
    pos += len;
    line++;
    k++;
    i = nl + 1;
  }
  seti(app, 6, i - base);
  seti(app, 7, why);
  return k;
}

/**
 * RunWriter's copy-out of sorted records (core/shuffle/run.ts): copies the records order[k], order[k + 1], ... (u32
 * record indexes at `order`; record i is the bytes [base + start[i], + len[i]), u32 columns at `starts` and `lens`)
 * back to back to [dst, dst + room), up to index `end` of the order or the first record that does not fit. Returns
 * the order index reached; the bytes written are at res[0]. Absolute addresses; the source records lie apart from
 * the destination.
 */
export function gather(order: i32, starts: i32, lens: i32, k: i32, end: i32, dst: i32, room: i32): i32 {
  let o = dst;
  const stop = dst + room;
  while (k < end) {
    const i = load<i32>(<usize>(order + (k << 2)));
    const n = load<i32>(<usize>(lens + (i << 2)));
    if (n > stop - o) break;
    copyBytes(o, base + load<i32>(<usize>(starts + (i << 2))), n);
    o += n;
    k++;
  }
  seti(res, 0, o - dst);
  return k;
}
