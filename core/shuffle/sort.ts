/**
 * Sorting a chunk's records by (bucket, key bytes, input order) without per-record objects or comparator calls.
 *
 * Records are described by typed arrays (where each key's bytes are). The sort is a counting sort by bucket, then
 * per bucket an LSD radix sort over the first 8 key bytes (zero-padded) and a length class (0..8 = the key ends
 * within these bytes and has that many, 9 = longer), digits that are the same for every record skipped. Records
 * whose 8 bytes and length class tie are either equal (length class ≤ 8) or sorted again on the next 8 bytes; groups
 * of at most SMALL records are finished by an insertion sort on the remaining bytes. Every step is stable and starts
 * from input order, so records with equal keys keep their input order (index ascending).
 */

export interface KeyTable {
  /** number of records */
  n: number;
  /** byte arrays holding the keys: record i's key is pages[page[i]][keyStart[i] .. keyStart[i] + keyLen[i]) */
  pages: ReadonlyArray<Uint8Array>;
  page: Uint32Array;
  keyStart: Uint32Array;
  keyLen: Uint32Array;
  /** bucket of each record (< bucketCount); omitted = all records in bucket 0 */
  bucket?: Uint32Array;
  bucketCount?: number;
  /**
   * the depth-0 prefixes of every record, when the caller computed them while the key was at hand (saves a random
   * read of every key): see keyPrefix
   */
  prefixHi?: Uint32Array;
  prefixLo?: Uint32Array;
  prefixLen?: Uint8Array;
}

/**
 * The sort's view of a key's first 8 bytes: hi = bytes 0..3, lo = bytes 4..7 (big-endian, zero-padded), len = the
 * length class (the key's length when ≤ 8, 9 when longer). Writes them to the arrays at index i.
 */
export function keyPrefix(
  key: Uint8Array,
  ks: number,
  ke: number,
  hiOut: Uint32Array,
  loOut: Uint32Array,
  lenOut: Uint8Array,
  i: number,
): void {
  const l = ke - ks;
  if (l >= 8) {
    hiOut[i] = ((key[ks] << 24) | (key[ks + 1] << 16) | (key[ks + 2] << 8) | key[ks + 3]) >>> 0;
    loOut[i] = ((key[ks + 4] << 24) | (key[ks + 5] << 16) | (key[ks + 6] << 8) | key[ks + 7]) >>> 0;
    lenOut[i] = l > 8 ? 9 : 8;
    return;
  }
  let h = 0;
  let w = 0;
  for (let x = 0; x < l; x++) {
    if (x < 4) h |= key[ks + x] << (24 - 8 * x);
    else w |= key[ks + x] << (56 - 8 * x);
  }
  hiOut[i] = h >>> 0;
  loOut[i] = w >>> 0;
  lenOut[i] = l;
}

/** groups this small are insertion-sorted */
const SMALL = 24;
/** groups up to this size are sorted natively on packed 64-bit words (21 bits of position), larger ones by radix */
const MAX_NATIVE = 1 << 21;
/**
 * a native level's words are put in order by an LSD radix sort (4 passes of 11 bits at most, digits the same for
 * every word skipped) from this many words on; fewer go to the engine's sort of the 64-bit words (same order: the
 * radix sort is stable and the words' low 21 bits are their position)
 */
const MIN_RADIX_WORDS = 512;
/** at depth 0 with the prefixes, native-level groups tied on 5 bytes up to this size are finished from the prefixes */
const PREFIX_GROUP = 64;
/** digits of one radix level: length class, then bytes 7..0 (least significant first) */
const DIGITS = 9;

/**
 * Returns record indexes in (bucket, key, index) order. `bucketStarts`, when given (length bucketCount + 1), receives
 * where each bucket's records begin in the returned order.
 */
export function sortKeys(
  t: KeyTable,
  bucketStarts?: Uint32Array,
  /** tests: the largest group sorted natively (default and maximum 2^21; smaller exercises the radix path) */
  maxNative: number = MAX_NATIVE,
  /** tests: the fewest words a native level sorts by radix (default MIN_RADIX_WORDS) */
  minRadix: number = MIN_RADIX_WORDS,
): Uint32Array {
  const { n, pages, page, keyStart, keyLen } = t;
  const nb = t.bucket ? (t.bucketCount ?? 1) : 1;
  const order = new Uint32Array(n);
  // counting sort by bucket (stable)
  const starts = bucketStarts ?? new Uint32Array(nb + 1);
  starts.fill(0);
  if (t.bucket) {
    const bucket = t.bucket;
    for (let i = 0; i < n; i++) starts[bucket[i] + 1]++;
    for (let b = 0; b < nb; b++) starts[b + 1] += starts[b];
    const next = starts.slice(0, nb);
    for (let i = 0; i < n; i++) order[next[bucket[i]]++] = i;
  } else {
    starts[1] = n;
    for (let i = 0; i < n; i++) order[i] = i;
  }
  if (n < 2) return order;

  // per-position prefixes of the range being sorted, and their scatter targets
  let hiA = new Uint32Array(n);
  let loA = new Uint32Array(n);
  let lcA = new Uint8Array(n);
  let ordA = order;
  let hiB = new Uint32Array(n);
  let loB = new Uint32Array(n);
  let lcB = new Uint8Array(n);
  let ordB = new Uint32Array(n);
  const hist = new Uint32Array(DIGITS * 256);

  const cmpFrom = (i: number, j: number, d: number): number => {
    const a = pages[page[i]];
    const b = pages[page[j]];
    const sa = keyStart[i] + d;
    const sb = keyStart[j] + d;
    const la = keyLen[i] - d;
    const lb = keyLen[j] - d;
    const m = la < lb ? la : lb;
    for (let x = 0; x < m; x++) {
      const c = a[sa + x] - b[sb + x];
      if (c !== 0) return c;
    }
    return la - lb;
  };

  const insertion = (lo: number, hi: number, d: number) => {
    const o = ordA;
    for (let k = lo + 1; k < hi; k++) {
      const x = o[k];
      let j = k - 1;
      while (j >= lo && cmpFrom(o[j], x, d) > 0) {
        o[j + 1] = o[j];
        j--;
      }
      o[j + 1] = x;
    }
  };

  // ranges still to sort: (lo, hi, depth) triples
  const stack: number[] = [];

  /**
   * One level of the sort with the engine's native sort of 64-bit words (no comparator calls): per record
   * bytes d..d+3 | byte d+4 | length class min(len - d, 6) (3 bits) | position in the range (21 bits). The position
   * makes every word unique and keeps equal prefixes in their current order; length class 6 (longer than 5 bytes)
   * ties go one level deeper, d + 5.
   */
  let words = new BigUint64Array(0);
  let w32 = new Uint32Array(0);
  /** the radix sort's scatter target (as long as w32) and digit counts */
  let w32b = new Uint32Array(0);
  const wordHist = new Uint32Array(2048 + 3 * 4096);
  /**
   * Sorts the first m words of w32 (pairs: low word at 2k, high word at 2k + 1) by their top 43 bits, stably: a digit
   * of low bits 21..31, then the high word's bits that differ between words (`hVary`: the bits set in some words and
   * not in all) in digits of at most 12 bits (constant bits around them order nothing). Leaves them in w32.
   */
  const radixWords = (m: number, hVary: number) => {
    if (w32b.length < w32.length) w32b = new Uint32Array(w32.length);
    // the high word's digits: from its lowest to its highest varying bit
    let nd = 0;
    let width = 0;
    let low = 0;
    if (hVary !== 0) {
      low = 31 - Math.clz32(hVary & -hVary);
      const span = 32 - Math.clz32(hVary) - low;
      nd = Math.ceil(span / 12);
      width = Math.ceil(span / nd);
    }
    const mask = width === 32 ? -1 : (1 << width) - 1;
    const s1 = low;
    const s2 = low + width;
    const s3 = low + 2 * width;
    const h = wordHist;
    h.fill(0);
    for (let k = 0; k < m; k++) {
      const x = w32[2 * k + 1];
      h[w32[2 * k] >>> 21]++;
      if (nd > 0) h[2048 + ((x >>> s1) & mask)]++;
      if (nd > 1) h[6144 + ((x >>> s2) & mask)]++;
      if (nd > 2) h[10240 + ((x >>> s3) & mask)]++;
    }
    let src = w32;
    let dst = w32b;
    for (let dg = 0; dg <= nd; dg++) {
      const base = dg === 0 ? 0 : 2048 + (dg - 1) * 4096;
      const size = dg === 0 ? 2048 : 1 << width;
      let constant = false;
      for (let v = 0; v < size; v++) {
        const c = h[base + v];
        if (c !== 0) {
          constant = c === m;
          break;
        }
      }
      if (constant) continue;
      let sum = 0;
      for (let v = 0; v < size; v++) {
        const c = h[base + v];
        h[base + v] = sum;
        sum += c;
      }
      if (dg === 0) {
        for (let k = 0; k < m; k++) {
          const a = src[2 * k];
          const to = 2 * h[a >>> 21]++;
          dst[to] = a;
          dst[to + 1] = src[2 * k + 1];
        }
      } else {
        const shift = dg === 1 ? s1 : dg === 2 ? s2 : s3;
        for (let k = 0; k < m; k++) {
          const x = src[2 * k + 1];
          const to = 2 * h[base + ((x >>> shift) & mask)]++;
          dst[to] = src[2 * k];
          dst[to + 1] = x;
        }
      }
      const t = src;
      src = dst;
      dst = t;
    }
    if (src !== w32) {
      // the sorted words are in the scratch array: it becomes w32
      w32b = w32;
      w32 = src;
      words = new BigUint64Array(w32.buffer);
    }
  };
  /** per position in a depth-0 native level: key bytes 5..7 of the prefix (zero-padded) << 4 | length class */
  let rest = new Uint32Array(0);
  const gKey = new Uint32Array(PREFIX_GROUP);
  const gIdx = new Uint32Array(PREFIX_GROUP);
  /**
   * A group of a depth-0 native level, sorted positions [k, j) of the range at lo, tied on 5 bytes with keys longer
   * than 5: ordered (stably, by insertion) on the rest of the 8-byte prefix and the length class, from the words'
   * positions and `rest` (no key bytes read); records still tied on 8 bytes with longer keys go on from depth 8.
   */
  const prefixGroup = (lo: number, k: number, j: number) => {
    const g = j - k;
    for (let x = 0; x < g; x++) {
      const v = rest[w32[2 * (k + x)] & 0x1fffff];
      const id = ordA[lo + k + x];
      let y = x - 1;
      while (y >= 0 && gKey[y] > v) {
        gKey[y + 1] = gKey[y];
        gIdx[y + 1] = gIdx[y];
        y--;
      }
      gKey[y + 1] = v;
      gIdx[y + 1] = id;
    }
    let a = 0;
    while (a < g) {
      const v = gKey[a];
      ordA[lo + k + a] = gIdx[a];
      let b = a + 1;
      while (b < g && gKey[b] === v) {
        ordA[lo + k + b] = gIdx[b];
        b++;
      }
      if (b - a > 1 && (v & 15) === 9) stack.push(lo + k + a, lo + k + b, 8);
      a = b;
    }
  };
  const nativeLevel = (lo: number, hi: number, d: number) => {
    const m = hi - lo;
    if (words.length < m) {
      words = new BigUint64Array(Math.min(n, Math.max(m, 2 * words.length)));
      w32 = new Uint32Array(words.buffer);
    }
    const pre = d === 0 && t.prefixHi && t.prefixLo && t.prefixLen;
    if (pre && rest.length < m) rest = new Uint32Array(words.length);
    let hAnd = -1;
    let hOr = 0;
    for (let k = 0; k < m; k++) {
      const i = ordA[lo + k];
      let h: number;
      let b4: number;
      let lc: number;
      if (pre) {
        h = (t.prefixHi as Uint32Array)[i];
        const w = (t.prefixLo as Uint32Array)[i];
        b4 = w >>> 24;
        const pl = (t.prefixLen as Uint8Array)[i];
        lc = pl > 5 ? 6 : pl;
        rest[k] = ((w & 0xffffff) << 4) | pl;
      } else {
        const p = pages[page[i]];
        const s = keyStart[i] + d;
        const l = keyLen[i] - d;
        if (l >= 5) {
          h = ((p[s] << 24) | (p[s + 1] << 16) | (p[s + 2] << 8) | p[s + 3]) >>> 0;
          b4 = p[s + 4];
          lc = l > 5 ? 6 : 5;
        } else {
          h = 0;
          b4 = 0;
          lc = l > 0 ? l : 0;
          for (let x = 0; x < lc; x++) h |= p[s + x] << (24 - 8 * x);
          h >>>= 0;
        }
      }
      w32[2 * k + 1] = h;
      w32[2 * k] = ((b4 << 24) | (lc << 21) | k) >>> 0;
      hAnd &= h;
      hOr |= h;
    }
    if (m >= minRadix) radixWords(m, hAnd ^ hOr);
    else words.subarray(0, m).sort();
    for (let k = 0; k < m; k++) ordB[k] = ordA[lo + (w32[2 * k] & 0x1fffff)];
    ordA.set(ordB.subarray(0, m), lo);
    // groups tied on 5 bytes with longer keys
    let k = 0;
    while (k < m) {
      const h = w32[2 * k + 1];
      const top = w32[2 * k] >>> 21;
      let j = k + 1;
      while (j < m && w32[2 * j + 1] === h && w32[2 * j] >>> 21 === top) j++;
      if (j - k > 1 && (top & 7) === 6) {
        if (j - k === m && allEqual(lo, hi, d)) return; // one key throughout: input order is the order
        if (pre && j - k <= PREFIX_GROUP) prefixGroup(lo, k, j);
        else stack.push(lo + k, lo + j, d + 5);
      }
      k = j;
    }
  };

  /** whether every key in the range equals the first from byte d on (then nothing is left to sort) */
  const allEqual = (lo: number, hi: number, d: number): boolean => {
    const f = ordA[lo];
    for (let k = lo + 1; k < hi; k++) if (cmpFrom(f, ordA[k], d) !== 0) return false;
    return true;
  };
  for (let b = nb - 1; b >= 0; b--) if (starts[b + 1] - starts[b] > 1) stack.push(starts[b], starts[b + 1], 0);

  while (stack.length > 0) {
    const d = stack.pop() as number;
    const hi = stack.pop() as number;
    const lo = stack.pop() as number;
    if (hi - lo <= SMALL) {
      insertion(lo, hi, d);
      continue;
    }
    if (hi - lo <= Math.min(maxNative, MAX_NATIVE)) {
      nativeLevel(lo, hi, d);
      continue;
    }
    // prefixes at depth d, histograms of every digit
    hist.fill(0);
    const pre = d === 0 && t.prefixHi && t.prefixLo && t.prefixLen;
    for (let k = lo; k < hi; k++) {
      const i = ordA[k];
      if (pre) {
        const h = (t.prefixHi as Uint32Array)[i];
        const w = (t.prefixLo as Uint32Array)[i];
        const lc = (t.prefixLen as Uint8Array)[i];
        hiA[k] = h;
        loA[k] = w;
        lcA[k] = lc;
        hist[lc]++;
        hist[256 + (w & 255)]++;
        hist[512 + ((w >>> 8) & 255)]++;
        hist[768 + ((w >>> 16) & 255)]++;
        hist[1024 + (w >>> 24)]++;
        hist[1280 + (h & 255)]++;
        hist[1536 + ((h >>> 8) & 255)]++;
        hist[1792 + ((h >>> 16) & 255)]++;
        hist[2048 + (h >>> 24)]++;
        continue;
      }
      const p = pages[page[i]];
      const s = keyStart[i] + d;
      const l = keyLen[i] - d;
      let h = 0;
      let w = 0;
      let lc: number;
      if (l >= 8) {
        h = ((p[s] << 24) | (p[s + 1] << 16) | (p[s + 2] << 8) | p[s + 3]) >>> 0;
        w = ((p[s + 4] << 24) | (p[s + 5] << 16) | (p[s + 6] << 8) | p[s + 7]) >>> 0;
        lc = l > 8 ? 9 : 8;
      } else {
        lc = l > 0 ? l : 0;
        for (let x = 0; x < lc; x++) {
          if (x < 4) h |= p[s + x] << (24 - 8 * x);
          else w |= p[s + x] << (56 - 8 * x);
        }
        h >>>= 0;
        w >>>= 0;
      }
      hiA[k] = h;
      loA[k] = w;
      lcA[k] = lc;
      hist[lc]++;
      hist[256 + (w & 255)]++;
      hist[512 + ((w >>> 8) & 255)]++;
      hist[768 + ((w >>> 16) & 255)]++;
      hist[1024 + (w >>> 24)]++;
      hist[1280 + (h & 255)]++;
      hist[1536 + ((h >>> 8) & 255)]++;
      hist[1792 + ((h >>> 16) & 255)]++;
      hist[2048 + (h >>> 24)]++;
    }
    const m = hi - lo;
    for (let dg = 0; dg < DIGITS; dg++) {
      const base = dg * 256;
      // a digit the same for every record orders nothing
      let constant = false;
      for (let v = 0; v < 256; v++) {
        const c = hist[base + v];
        if (c !== 0) {
          constant = c === m;
          break;
        }
      }
      if (constant) continue;
      // exclusive prefix sums → scatter positions
      let sum = lo;
      for (let v = 0; v < 256; v++) {
        const c = hist[base + v];
        hist[base + v] = sum;
        sum += c;
      }
      const src = dg === 0 ? lcA : dg < 5 ? loA : hiA;
      const shift = dg === 0 ? 0 : ((dg - 1) & 3) * 8;
      for (let k = lo; k < hi; k++) {
        const v = dg === 0 ? src[k] : (src[k] >>> shift) & 255;
        const to = hist[base + v]++;
        ordB[to] = ordA[k];
        hiB[to] = hiA[k];
        loB[to] = loA[k];
        lcB[to] = lcA[k];
      }
      let t32 = ordA;
      ordA = ordB;
      ordB = t32;
      t32 = hiA;
      hiA = hiB;
      hiB = t32;
      t32 = loA;
      loA = loB;
      loB = t32;
      const t8 = lcA;
      lcA = lcB;
      lcB = t8;
    }
    if (ordA !== order) {
      // the sorted range sits in the scratch arrays: bring it home (the prefixes too: groups are found from them)
      order.set(ordA.subarray(lo, hi), lo);
      ordB = ordA;
      ordA = order;
      let t32 = hiA;
      hiA = hiB;
      hiB = t32;
      hiA.set(hiB.subarray(lo, hi), lo);
      t32 = loA;
      loA = loB;
      loB = t32;
      loA.set(loB.subarray(lo, hi), lo);
      const t8 = lcA;
      lcA = lcB;
      lcB = t8;
      lcA.set(lcB.subarray(lo, hi), lo);
    }
    // ties on all 8 bytes and a length class of 9 (longer keys) are sorted on the next 8 bytes
    let k = lo;
    while (k < hi) {
      const h = hiA[k];
      const w = loA[k];
      const lc = lcA[k];
      let j = k + 1;
      while (j < hi && hiA[j] === h && loA[j] === w && lcA[j] === lc) j++;
      if (j - k > 1 && lc === 9) stack.push(k, j, d + 8);
      k = j;
    }
  }
  return order;
}
