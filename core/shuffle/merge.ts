import type { SegmentBatch } from "./run.js";

/**
 * k-way merge over sorted async sources with a binary heap. Ties are broken by source position (the source listed
 * first wins), so a merge is deterministic; callers that need input order put it in `compare`.
 */
export async function* kWayMerge<T>(
  sources: ReadonlyArray<AsyncIterable<T>>,
  compare: (a: T, b: T) => number,
): AsyncIterable<T> {
  const iters = sources.map((s) => s[Symbol.asyncIterator]());
  const heads: T[] = [];
  const { heap, up, down } = sourceHeap((i, j) => compare(heads[i], heads[j]));
  try {
    const firsts = await Promise.all(iters.map((it) => it.next()));
    firsts.forEach((r, i) => {
      if (!r.done) {
        heads[i] = r.value;
        heap.push(i);
        up(heap.length - 1);
      }
    });
    while (heap.length > 0) {
      const i = heap[0];
      yield heads[i];
      const r = await iters[i].next();
      if (r.done) {
        const last = heap.pop() as number;
        if (heap.length > 0) {
          heap[0] = last;
          down(0);
        }
      } else {
        heads[i] = r.value;
        down(0);
      }
    }
  } finally {
    await Promise.all(iters.map((it) => it.return?.()));
  }
}

/**
 * A binary min-heap of source indexes ordered by `compareSources(i, j)` (their current heads), ties broken by the
 * lower index so merges are deterministic. `up`/`down` restore the order after a push or a change at the root.
 */
function sourceHeap(compareSources: (i: number, j: number) => number) {
  const heap: number[] = [];
  const less = (i: number, j: number): boolean => {
    const c = compareSources(i, j);
    return c < 0 || (c === 0 && i < j);
  };
  const up = (k: number) => {
    while (k > 0) {
      const p = (k - 1) >> 1;
      if (!less(heap[k], heap[p])) break;
      [heap[k], heap[p]] = [heap[p], heap[k]];
      k = p;
    }
  };
  const down = (k: number) => {
    const n = heap.length;
    for (;;) {
      const l = 2 * k + 1;
      if (l >= n) break;
      let m = l;
      if (l + 1 < n && less(heap[l + 1], heap[l])) m = l + 1;
      if (!less(heap[m], heap[k])) break;
      [heap[k], heap[m]] = [heap[m], heap[k]];
      k = m;
    }
  };
  return { heap, up, down };
}

/** Bytewise comparison of two byte arrays (memcmp order, shorter prefix first). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/**
 * The batched form of kWayMerge: sources yield arrays of sorted items, the merge yields arrays of up to `outBatch`
 * items. Only an exhausted batch costs an await, so per-item overhead is a heap step, not a promise.
 */
export async function* kWayMergeBatches<T>(
  sources: ReadonlyArray<AsyncIterable<T[]>>,
  compare: (a: T, b: T) => number,
  outBatch = 1024,
): AsyncIterable<T[]> {
  const iters = sources.map((s) => s[Symbol.asyncIterator]());
  const batches: T[][] = [];
  const pos: number[] = [];
  const { heap, up, down } = sourceHeap((i, j) => compare(batches[i][pos[i]], batches[j][pos[j]]));
  /** next non-empty batch of source i, or undefined when it is done */
  const refill = async (i: number): Promise<boolean> => {
    const b = await nextNonEmpty(iters[i], (x) => x.length);
    if (!b) return false;
    batches[i] = b;
    pos[i] = 0;
    return true;
  };
  try {
    const ok = await Promise.all(iters.map((_, i) => refill(i)));
    ok.forEach((has, i) => {
      if (has) {
        heap.push(i);
        up(heap.length - 1);
      }
    });
    let out: T[] = [];
    while (heap.length > 0) {
      const i = heap[0];
      out.push(batches[i][pos[i]]);
      if (out.length >= outBatch) {
        yield out;
        out = [];
      }
      if (++pos[i] < batches[i].length) {
        if (heap.length > 1) down(0);
        continue;
      }
      if (await refill(i)) down(0);
      else {
        const last = heap.pop() as number;
        if (heap.length > 0) {
          heap[0] = last;
          down(0);
        }
      }
    }
    if (out.length > 0) yield out;
  } finally {
    await Promise.all(iters.map((it) => it.return?.()));
  }
}

/**
 * kWayMergeBatches for items with a byte key whose order is the key bytewise first (`compare` decides the rest and is
 * only called when the first 8 key bytes tie). Each source's head caches its key's first 8 bytes as two u32s (zero-
 * padded: a zero pad sorts no later than any real byte, so unequal prefixes order the keys as the full keys do), so
 * most heap comparisons are two integer compares. The heap is a typed array of source indexes; ties go to the lower
 * source index, as in kWayMergeBatches. Same output as kWayMergeBatches(sources, compare, outBatch) when `compare`
 * orders by key bytewise first (property-tested).
 */
export async function* kWayMergeKeyed<T extends { key: Uint8Array }>(
  sources: ReadonlyArray<AsyncIterable<T[]>>,
  compare: (a: T, b: T) => number,
  outBatch = 1024,
): AsyncIterable<T[]> {
  const k = sources.length;
  const iters = sources.map((s) => s[Symbol.asyncIterator]());
  const batches: T[][] = new Array(k);
  const pos = new Int32Array(k);
  const hi = new Uint32Array(k);
  const lo = new Uint32Array(k);
  const heap = new Int32Array(k);
  let n = 0;
  const setPrefix = (i: number, key: Uint8Array): void => {
    const l = key.length;
    if (l >= 8) {
      hi[i] = ((key[0] << 24) | (key[1] << 16) | (key[2] << 8) | key[3]) >>> 0;
      lo[i] = ((key[4] << 24) | (key[5] << 16) | (key[6] << 8) | key[7]) >>> 0;
      return;
    }
    let h = 0;
    let w = 0;
    for (let j = 0; j < 4; j++) h = (h << 8) | (j < l ? key[j] : 0);
    for (let j = 4; j < 8; j++) w = (w << 8) | (j < l ? key[j] : 0);
    hi[i] = h >>> 0;
    lo[i] = w >>> 0;
  };
  const less = (i: number, j: number): boolean => {
    const a = hi[i];
    const b = hi[j];
    if (a !== b) return a < b;
    const c = lo[i];
    const d = lo[j];
    if (c !== d) return c < d;
    const r = compare(batches[i][pos[i]], batches[j][pos[j]]);
    return r < 0 || (r === 0 && i < j);
  };
  const up = (x: number): void => {
    const s = heap[x];
    while (x > 0) {
      const p = (x - 1) >> 1;
      if (!less(s, heap[p])) break;
      heap[x] = heap[p];
      x = p;
    }
    heap[x] = s;
  };
  const down = (x: number): void => {
    const s = heap[x];
    for (;;) {
      const l = 2 * x + 1;
      if (l >= n) break;
      let m = l;
      if (l + 1 < n && less(heap[l + 1], heap[l])) m = l + 1;
      if (!less(heap[m], s)) break;
      heap[x] = heap[m];
      x = m;
    }
    heap[x] = s;
  };
  const refill = async (i: number): Promise<boolean> => {
    const b = await nextNonEmpty(iters[i], (x) => x.length);
    if (!b) return false;
    batches[i] = b;
    pos[i] = 0;
    setPrefix(i, b[0].key);
    return true;
  };
  try {
    const ok = await Promise.all(iters.map((_, i) => refill(i)));
    for (let i = 0; i < k; i++) {
      if (!ok[i]) continue;
      heap[n++] = i;
      up(n - 1);
    }
    let out: T[] = [];
    while (n > 0) {
      const i = heap[0];
      const b = batches[i];
      out.push(b[pos[i]]);
      if (out.length >= outBatch) {
        yield out;
        out = [];
      }
      const p = ++pos[i];
      if (p < b.length) {
        if (n > 1) {
          setPrefix(i, b[p].key);
          down(0);
        }
        continue;
      }
      if (await refill(i)) down(0);
      else {
        heap[0] = heap[--n];
        if (n > 0) down(0);
      }
    }
    if (out.length > 0) yield out;
  } finally {
    await Promise.all(iters.map((it) => it.return?.()));
  }
}

/** Merge output in column form: record x is record idx[x] of batch[x]. */
export interface MergedBatch {
  n: number;
  batch: SegmentBatch[];
  idx: Int32Array;
}

/**
 * Compares record i of a with record j of b in the run order (key bytewise, then run, then line), by offsets.
 * Assumes nothing about the prefixes (the merge calls it when they tie).
 */
export function compareColumns(a: SegmentBatch, i: number, b: SegmentBatch, j: number): number {
  const ba = a.buf;
  const bb = b.buf;
  let x = a.keyStart[i];
  let y = b.keyStart[j];
  const la = a.keyEnd[i] - x;
  const lb = b.keyEnd[j] - y;
  const e = x + (la < lb ? la : lb);
  for (; x < e; x++, y++) {
    const d = ba[x] - bb[y];
    if (d !== 0) return d;
  }
  return la - lb || a.run[i] - b.run[j] || a.line[i] - b.line[j];
}

/**
 * kWayMergeKeyed over SegmentBatch sources (run order: key, run, line; ties on all three go to the lower source
 * index): comparisons read the parsed prefixes hi/lo and fall back to compareColumns on a tie. A loser tree picks
 * the next record: ceil(log2 k) comparisons per record, where a binary heap's sift-down takes up to twice as many
 * (both pick the least head under the same strict total order, so the output is the same). No object per record;
 * yields MergedBatch of up to `outBatch` records (batches referenced stay valid: sources never reuse them).
 */
export async function* mergeSegmentColumns(
  sources: ReadonlyArray<AsyncIterable<SegmentBatch>>,
  outBatch = 1024,
): AsyncIterable<MergedBatch> {
  const k = sources.length;
  const iters = sources.map((s) => s[Symbol.asyncIterator]());
  const cur: SegmentBatch[] = new Array(k);
  const pos = new Int32Array(k);
  const hi = new Uint32Array(k);
  const lo = new Uint32Array(k);
  /** 1: the source is exhausted (it loses to every live one) */
  const dead = new Uint8Array(k);
  /** loser tree: tree[1..k-1] hold the loser of each match; source s is leaf k + s */
  const tree = new Int32Array(Math.max(1, k));
  const less = (i: number, j: number): boolean => {
    if (dead[i] !== 0) return false;
    if (dead[j] !== 0) return true;
    const a = hi[i];
    const b = hi[j];
    if (a !== b) return a < b;
    const c = lo[i];
    const d = lo[j];
    if (c !== d) return c < d;
    const r = compareColumns(cur[i], pos[i], cur[j], pos[j]);
    return r < 0 || (r === 0 && i < j);
  };
  /** winner of the subtree at `node`; stores the losers below it */
  const build = (node: number): number => {
    if (node >= k) return node - k;
    const a = build(2 * node);
    const b = build(2 * node + 1);
    if (less(b, a)) {
      tree[node] = a;
      return b;
    }
    tree[node] = b;
    return a;
  };
  const refill = async (i: number): Promise<boolean> => {
    const b = await nextNonEmpty(iters[i], (x) => x.n);
    if (!b) return false;
    cur[i] = b;
    pos[i] = 0;
    hi[i] = b.hi[0];
    lo[i] = b.lo[0];
    return true;
  };
  try {
    if (k === 0) return;
    const ok = await Promise.all(iters.map((_, i) => refill(i)));
    for (let i = 0; i < k; i++) if (!ok[i]) dead[i] = 1;
    let w = build(1);
    let outB: SegmentBatch[] = new Array(outBatch);
    let outI = new Int32Array(outBatch);
    let o = 0;
    while (dead[w] === 0) {
      const b = cur[w];
      const p = pos[w];
      outB[o] = b;
      outI[o++] = p;
      if (o === outBatch) {
        yield { n: o, batch: outB, idx: outI };
        outB = new Array(outBatch);
        outI = new Int32Array(outBatch);
        o = 0;
      }
      if (p + 1 < b.n) {
        pos[w] = p + 1;
        hi[w] = b.hi[p + 1];
        lo[w] = b.lo[p + 1];
      } else if (!(await refill(w))) dead[w] = 1;
      // replay w's path: each match's loser stays, the winner moves up
      let win = w;
      for (let node = (k + w) >> 1; node >= 1; node >>= 1) {
        const c = tree[node];
        if (less(c, win)) {
          tree[node] = win;
          win = c;
        }
      }
      w = win;
    }
    if (o > 0) yield { n: o, batch: outB, idx: outI };
  } finally {
    await Promise.all(iters.map((it) => it.return?.()));
  }
}

/** The iterator's next batch holding records (`size` > 0), skipping empty ones; undefined when it is done. */
async function nextNonEmpty<B>(it: AsyncIterator<B>, size: (b: B) => number): Promise<B | undefined> {
  for (;;) {
    const r = await it.next();
    if (r.done) return undefined;
    if (size(r.value) > 0) return r.value;
  }
}
