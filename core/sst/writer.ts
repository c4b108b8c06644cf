/**
 * SstWriter: streams a RocksDB block-based table (format_version 5, CRC32c) into a ByteSink.
 *
 * Hot path (add): order check + shared-prefix in one loop, varints written inline into a preallocated block
 * buffer, block cut by RocksDB's own flush policy (size >= blockSize, or the next entry would overflow it and the
 * block is > 90% full), whole-block compression and CRC, output gathered in 1 MiB chunks handed to the sink.
 * Memory: one block buffer, one output chunk, the index entries (one per ~4 KiB block) and 8 bytes per key for the
 * bloom filter hashes. Nothing grows with value bytes.
 */
import { crc32c as nativeCrc32c } from "@node-rs/crc32";
import { createHash, randomBytes, randomInt } from "node:crypto";
import { hostname } from "node:os";
import { InputError, LimitError } from "../errors.js";
import { SST } from "../limits.js";
import type { BloomBuilder } from "./bloom.js";
import { makeBloomBuilder, WasmBloomBuilder } from "./bloom-wasm.js";
import { checkCompression, preloadCodec, rawCompressor } from "./codecs.js";
import { BlockRing, parallelSealingAvailable, YIELD_EVERY } from "./compress-pool.js";
import {
  ByteBuf,
  CHECKSUM_CRC32C,
  COMPRESSION_NAME,
  COMPRESSION_TYPE,
  FOOTER_SIZE,
  FORMAT_VERSION,
  FULL_FILTER_BLOCK,
  MAGIC_HI,
  MAGIC_LO,
  PROPERTIES_BLOCK,
  previewKey,
  varintLength,
} from "./format.js";
import { hashBlockKeys, type RawCompressor, sealBlock } from "./seal.js";
import { xxph3_64Parts } from "./xxph3.js";
import type { ByteSink, SstCompression, SstFileInfo, SstFileSetWriterOptions, SstWriterOptions } from "./types.js";

const CHUNK = 1 << 20;
/** block rings (pipelined compression) only for block sizes up to this; larger ones seal in place */
const RING_MAX_BLOCK = SST.sealRingMaxBlockSize;
/** ring memory target: K slots of ~2 x blockSize each, 4 <= K <= 128 (128 x 8 KiB for 4 KiB blocks) */
const RING_BYTES = SST.sealRingBytes;

/** Separator for the index: RocksDB BytewiseComparator::FindShortestSeparator on user keys (start < limit). */
export function shortestSeparator(start: Uint8Array, startLen: number, limit: Uint8Array): Uint8Array {
  const minLen = Math.min(startLen, limit.length);
  let d = 0;
  while (d < minLen && start[d] === limit[d]) d++;
  if (d >= minLen) return start.slice(0, startLen);
  const sb = start[d];
  const lb = limit[d];
  if (sb >= lb) return start.slice(0, startLen);
  if (d < limit.length - 1 || sb + 1 < lb) {
    const out = start.slice(0, d + 1);
    out[d]++;
    return out;
  }
  d++;
  while (d < startLen) {
    if (start[d] < 0xff) {
      const out = start.slice(0, d + 1);
      out[d]++;
      return out;
    }
    d++;
  }
  return start.slice(0, startLen);
}

/**
 * Shared bytes of the internal keys when the previous user key (length n) is a proper prefix of the current one,
 * kb[ks, ks+klen): prev internal = prev ‖ 01 00.. ; cur internal = key ‖ 01 00..
 */
function sharedPastPrefix(kb: Uint8Array, ks: number, klen: number, n: number): number {
  let j = n;
  const end = n + 8;
  while (j < end) {
    const prevAt = j === n ? 1 : 0;
    const curAt = j < klen ? kb[ks + j] : j === klen ? 1 : 0;
    if (prevAt !== curAt) break;
    j++;
  }
  return j;
}

function randomSessionId(): string {
  // RocksDB db session ids: 20 chars of base-36 (upper case)
  const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  const b = randomBytes(20);
  let s = "";
  for (let i = 0; i < 20; i++) s += alphabet[b[i] % 36];
  return s;
}

export class SstWriter {
  private readonly sink: ByteSink;
  private readonly name: string;
  private readonly compression: SstCompression;
  private readonly ctype: number;
  private readonly blockSize: number;
  private readonly deviationLimit: number;
  private readonly restartInterval: number;
  private readonly bloom: BloomBuilder | WasmBloomBuilder | undefined;
  private readonly opts: SstWriterOptions;

  // compression: raw codec (undefined for "none") and the block ring that seals blocks, possibly on a worker
  private readonly rawCompress: RawCompressor | undefined;
  private readonly ring: BlockRing | undefined;
  /** index separators of the blocks in the ring, by slot */
  private readonly ringSeps: Array<Uint8Array | undefined> = [];
  /** raw bytes (+ trailers) of blocks published to the ring and not collected yet */
  private inflight = 0;
  /** lz4/zstd: native codecs whose output buffers are freed only on an event-loop turn (see nativeSealed) */
  private readonly codecNeedsTurns: boolean;
  /** blocks compressed on this thread since the last event-loop turn */
  private nativeSealed = 0;
  /**
   * bloom hashes computed in add() (JS builder, no ring); else per block: by the WebAssembly builder when the block
   * is cut (hashPerBlock), or when it is sealed (hashInRing: JS builder with a ring)
   */
  private hashInAdd = true;
  private hashPerBlock = false;
  private hashInRing = false;
  private hashScratch: Uint8Array | undefined;

  // current data block
  private blk: Uint8Array;
  private pos = 0;
  private restarts: Uint32Array;
  private nRestarts = 0;
  private counter = 0; // entries since the last restart
  private blockEntries = 0;

  // previous key (user key), kept in a reusable buffer
  private last: Uint8Array;
  private lastLen = 0;
  private first: Uint8Array | undefined;

  // output
  private chunk: Uint8Array;
  private cpos = 0;
  private offset = 0; // file offset of chunk[0]
  private pending: Promise<void> | undefined;
  private readonly sha = createHash("sha256");

  // index (user-key separators, handles)
  private readonly index = new ByteBuf(4096);

  // stats
  private entries = 0;
  private rawKeyBytes = 0;
  private rawValueBytes = 0;
  private dataBlocks = 0;
  private dataSize = 0;
  private state: "open" | "finished" | "aborted" | "failed" = "open";

  constructor(sink: ByteSink, opts: SstWriterOptions = {}) {
    this.sink = sink;
    this.opts = opts;
    this.name = opts.name ?? "sst";
    this.compression = checkCompression(opts.compression);
    preloadCodec(this.compression);
    this.ctype = COMPRESSION_TYPE[this.compression];
    const bs = opts.blockSize ?? SST.blockSize;
    if (!Number.isInteger(bs) || bs < 64 || bs > 256 * 1024 * 1024) {
      throw new LimitError(`blockSize ${bs} is out of range (64 B .. 256 MiB)`, { limit: "blockSize", actual: bs });
    }
    this.blockSize = bs;
    // block_size_deviation = 10 (RocksDB default)
    this.deviationLimit = Math.floor((bs * (100 - 10) + 99) / 100);
    this.restartInterval = SST.restartInterval;
    const bits = opts.bloomBitsPerKey ?? SST.bloomBitsPerKey;
    if (!(bits >= 0 && bits <= 100)) {
      throw new LimitError(`bloomBitsPerKey ${bits} is out of range (0..100)`, {
        limit: "bloomBitsPerKey",
        actual: bits,
      });
    }
    this.bloom = bits > 0 ? makeBloomBuilder(bits) : undefined;
    this.rawCompress = this.ctype !== 0 ? rawCompressor(this.compression) : undefined;
    this.codecNeedsTurns = this.compression === "lz4" || this.compression === "zstd";
    // "none" uses the ring (the worker then computes CRCs and key hashes) only when asked for explicitly: measured
    // (1.16M keys, bloom on), handing blocks over cost the writer's thread about what the worker saved it, and the
    // worker's ~0.4 CPU-s came on top. For "none" a block's stored size is its raw size, so the file-size estimate
    // (rollover) is the same either way.
    const parallel = opts.parallelCompression ?? true;
    const ringForNone = opts.parallelCompression === true && this.bloom !== undefined && parallelSealingAvailable();
    if ((this.rawCompress !== undefined || ringForNone) && bs <= RING_MAX_BLOCK) {
      const cap = Math.ceil((Math.max(bs * 2, 8192) + 64) / 8) * 8; // slots at 8-byte aligned offsets
      const k = Math.max(4, Math.min(128, Math.floor(RING_BYTES / cap)));
      // JS bloom: the hashes come from each block's keys at sealing time (on the worker when attached): measured,
      // this balances the threads best (2M keys, snappy: writer thread 1.6 s + worker 1.3 s, vs 1.9 s + 0.9 s
      // hashing in add()). The WebAssembly builder hashes each block on the writer's thread when it is cut (below):
      // cheaper than the worker's JS hashing
      const hashInRing = this.bloom !== undefined && !(this.bloom instanceof WasmBloomBuilder);
      this.ring = new BlockRing(this.ctype, this.rawCompress, cap, k, parallel, hashInRing);
      this.hashInAdd = !hashInRing;
      this.hashInRing = hashInRing;
    }
    if (this.bloom instanceof WasmBloomBuilder) {
      // one call per block into the module (it decodes and hashes the block's keys) instead of one hash per add()
      this.hashInAdd = false;
      this.hashPerBlock = true;
    }
    // the block is built in private memory: stores into shared memory (the ring) take V8's slow relaxed-copy path
    this.blk = new Uint8Array(Math.max(bs * 2, 8192));
    this.restarts = new Uint32Array(Math.max(64, (bs >> 4) + 16));
    this.last = new Uint8Array(256);
    this.chunk = new Uint8Array(CHUNK);
  }

  /**
   * Adds one entry (user keys strictly ascending bytewise). Returns a promise only when the sink asked for
   * back-pressure: `const p = w.add(k, v); if (p) await p;`. Do not call add() again before that promise settles.
   */
  add(key: Uint8Array, value: Uint8Array): void | Promise<void> {
    return this.put(key, 0, key.length, value, 0, value.length);
  }

  /**
   * add(buf[ks, ke), buf[vs, ve)) without the two views: for callers that hold records as offsets into one buffer
   * (Build's segment batches). Same bytes as add(); same promise contract.
   */
  addRange(buf: Uint8Array, ks: number, ke: number, vs: number, ve: number): void | Promise<void> {
    return this.put(buf, ks, ke - ks, buf, vs, ve - vs);
  }

  /** The entry kb[ks, ks+klen) -> vb[vs, vs+vlen). */
  private put(
    kb: Uint8Array,
    ks: number,
    klen: number,
    vb: Uint8Array,
    vs: number,
    vlen: number,
  ): void | Promise<void> {
    if (this.state !== "open") throw new InputError(`${this.name}: add() after ${this.state}`);
    if (klen > SST.maxKeyBytes) {
      throw new LimitError(
        `${this.name}: key #${this.entries} is ${klen} bytes, over the ${SST.maxKeyBytes}-byte limit`,
        {
          limit: "SST.maxKeyBytes",
          max: SST.maxKeyBytes,
          actual: klen,
        },
      );
    }
    if (vlen > SST.maxValueBytes) {
      throw new LimitError(
        `${this.name}: value of key #${this.entries} ${previewKey(kb.subarray(ks, ks + klen))} is ${vlen} bytes, over the ${SST.maxValueBytes}-byte limit`,
        { limit: "SST.maxValueBytes", max: SST.maxValueBytes, actual: vlen },
      );
    }
    const last = this.last;
    const lastLen = this.lastLen;
    let shared = 0;
    if (this.entries > 0) {
      const m = Math.min(klen, lastLen);
      let i = 0;
      while (i < m && kb[ks + i] === last[i]) i++;
      if (i === m ? klen <= lastLen : kb[ks + i] < last[i]) this.orderError(kb.subarray(ks, ks + klen));
      shared = i;
      // flush policy (FlushBlockBySizePolicy): checked before the key goes in
      const est = this.pos + this.nRestarts * 4 + 4;
      if (
        est >= this.blockSize ||
        (est > this.deviationLimit &&
          est +
            klen +
            8 +
            vlen +
            (this.counter >= this.restartInterval ? 4 : 0) +
            4 +
            varintLength(klen + 8) +
            varintLength(vlen) >
            this.blockSize)
      ) {
        this.flushBlock(kb.subarray(ks, ks + klen));
      }
      if (i === lastLen && i < klen) shared = sharedPastPrefix(kb, ks, klen, lastLen);
    }
    if (this.blockEntries === 0 || this.counter >= this.restartInterval) {
      if (this.nRestarts === this.restarts.length) {
        const r = new Uint32Array(this.nRestarts * 2);
        r.set(this.restarts);
        this.restarts = r;
      }
      this.restarts[this.nRestarts++] = this.pos;
      this.counter = 0;
      shared = 0;
    }
    const nonShared = klen + 8 - shared;
    // ensure room: 3 varints (<= 15 bytes) + key + suffix + value
    const need = this.pos + 15 + nonShared + vlen;
    if (need > this.blk.length) this.growBlock(need);
    const b = this.blk;
    let p = this.pos;
    // shared
    if (shared < 128) b[p++] = shared;
    else {
      let v = shared;
      while (v >= 128) {
        b[p++] = (v & 127) | 128;
        v >>>= 7;
      }
      b[p++] = v;
    }
    if (nonShared < 128) b[p++] = nonShared;
    else {
      let v = nonShared;
      while (v >= 128) {
        b[p++] = (v & 127) | 128;
        v >>>= 7;
      }
      b[p++] = v;
    }
    if (vlen < 128) b[p++] = vlen;
    else {
      let v = vlen;
      while (v >= 128) {
        b[p++] = (v & 127) | 128;
        v >>>= 7;
      }
      b[p++] = v;
    }
    // the previous key buffer must hold this key (it becomes the previous key below)
    if (klen > last.length) {
      const nl = new Uint8Array(Math.max(klen, last.length * 2));
      nl.set(last.subarray(0, lastLen));
      this.last = nl;
    }
    const lk = this.last;
    // key delta (user key part), then the 8-byte internal suffix (seqno 0, Put). The delta also goes into the
    // previous-key buffer: its bytes before `shared` already equal the key's (up to lastLen, see below).
    if (shared < klen) {
      if (klen - shared <= 32) {
        for (let j = shared; j < klen; j++) {
          const c = kb[ks + j];
          b[p++] = c;
          lk[j] = c;
        }
      } else {
        const d = kb.subarray(ks + shared, ks + klen);
        b.set(d, p);
        lk.set(d, shared);
        p += klen - shared;
      }
      b[p] = 1;
      b[p + 1] = 0;
      b[p + 2] = 0;
      b[p + 3] = 0;
      b[p + 4] = 0;
      b[p + 5] = 0;
      b[p + 6] = 0;
      b[p + 7] = 0;
      p += 8;
    } else {
      // shared reaches into the suffix (previous key is a prefix of this one): rare
      const suffixStart = shared - klen;
      for (let j = suffixStart; j < 8; j++) b[p++] = j === 0 ? 1 : 0;
    }
    if (vlen <= 32) for (let j = vs, e = vs + vlen; j < e; j++) b[p++] = vb[j];
    else {
      b.set(vs === 0 && vlen === vb.length ? vb : vb.subarray(vs, vs + vlen), p);
      p += vlen;
    }
    this.pos = p;
    this.counter++;
    this.blockEntries++;
    // remember the key: the bytes from `shared` on went in with the delta; shared past the previous key's end (the
    // previous key is a prefix of this one, shared reaching into the internal suffix: rare) leaves a gap
    for (let j = lastLen, e = shared < klen ? shared : klen; j < e; j++) lk[j] = kb[ks + j];
    this.lastLen = klen;
    if (this.entries === 0) this.first = kb.slice(ks, ks + klen);
    this.entries++;
    this.rawKeyBytes += klen + 8;
    this.rawValueBytes += vlen;
    if (this.hashInAdd && this.bloom) this.bloom.add(kb, ks, klen);
    const pend = this.pending;
    if (pend !== undefined) {
      this.pending = undefined;
      return pend;
    }
  }

  private orderError(key: Uint8Array): never {
    const prev = this.last.slice(0, this.lastLen);
    const dup = prev.length === key.length && Buffer.compare(prev, key) === 0;
    this.state = "failed";
    throw new InputError(
      `${this.name}: keys must be strictly ascending (bytewise): key #${this.entries} ${previewKey(key)} ${
        dup ? "duplicates" : "sorts before"
      } key #${this.entries - 1} ${previewKey(prev)}`,
      { source: this.name, key: Buffer.from(key).toString("hex"), previousKey: Buffer.from(prev).toString("hex") },
    );
  }

  private growBlock(need: number): void {
    let cap = this.blk.length * 2;
    while (cap < need + 64) cap *= 2;
    const nb = new Uint8Array(cap);
    nb.set(this.blk.subarray(0, this.pos));
    this.blk = nb;
  }

  /** Ends the current data block; `nextKey` (if any) is the first key of the next block (for the separator). */
  private flushBlock(nextKey: Uint8Array | undefined): void {
    if (this.blockEntries === 0) return;
    if (this.hashPerBlock) (this.bloom as WasmBloomBuilder).addBlock(this.blk, this.pos);
    // restart array + count (+ room for the trailer, sealed in place)
    const need = this.pos + this.nRestarts * 4 + 4 + 5;
    if (need > this.blk.length) this.growBlock(need);
    const b = this.blk;
    let p = this.pos;
    for (let i = 0; i < this.nRestarts; i++) {
      const r = this.restarts[i];
      b[p] = r & 0xff;
      b[p + 1] = (r >>> 8) & 0xff;
      b[p + 2] = (r >>> 16) & 0xff;
      b[p + 3] = (r >>> 24) & 0xff;
      p += 4;
    }
    const n = this.nRestarts;
    b[p] = n & 0xff;
    b[p + 1] = (n >>> 8) & 0xff;
    b[p + 2] = (n >>> 16) & 0xff;
    b[p + 3] = (n >>> 24) & 0xff;
    p += 4;
    // index entry: separator between this block's last key and the next block's first key
    const sep =
      nextKey === undefined ? this.last.slice(0, this.lastLen) : shortestSeparator(this.last, this.lastLen, nextKey);
    const ring = this.ring;
    if (ring !== undefined && p + 5 <= ring.cap) {
      // hand the block over (sealed later, maybe on the worker); collect the oldest first when every slot is taken
      if (ring.full) this.collectOne();
      this.ringSeps[ring.producedCount % ring.k] = sep;
      ring.publish(b, p);
      this.inflight += p + 5;
    } else {
      // no ring, or a block that outgrew its slot: everything before it first, then seal it here
      if (ring !== undefined) while (ring.inFlight > 0) this.collectOne();
      if (this.hashInRing) this.hashBlock(b, p);
      const start = this.offset + this.cpos;
      const size = this.emitBlock(b.subarray(0, p), true);
      this.dataBlocks++;
      this.dataSize += size + 5;
      this.addIndexEntry(sep, start, size);
    }
    this.pos = 0;
    this.nRestarts = 0;
    this.counter = 0;
    this.blockEntries = 0;
  }

  private addIndexEntry(sep: Uint8Array, offset: number, size: number): void {
    // index block, restart interval 1, delta-encoded values: shared=0, non_shared, key, handle (no value length)
    const ix = this.index;
    ix.varint(0);
    ix.varint(sep.length);
    ix.bytes(sep);
    ix.varint(offset);
    ix.varint(size);
    this.indexRestarts.push(this.indexRestartPos);
    this.indexRestartPos = ix.len;
  }
  private indexRestarts: number[] = [];
  private indexRestartPos = 0;

  /** Bloom hashes of the keys of a raw block built outside the ring (a block that outgrew its slot). */
  private hashBlock(b: Uint8Array, len: number): void {
    const bloom = this.bloom as BloomBuilder;
    const keys = Math.floor(len / 11) + 1;
    const out = new Uint32Array(2 * keys);
    if (!this.hashScratch || this.hashScratch.length < len) this.hashScratch = new Uint8Array(len);
    const n = hashBlockKeys(b, 0, len, out, 0, this.hashScratch, xxph3_64Parts, new Uint32Array(2));
    bloom.addHashes(out, 0, n);
  }

  /** The oldest block in the ring, sealed, copied into the output; its index entry. */
  private collectOne(): void {
    const ring = this.ring as BlockRing;
    const slot = ring.collectedCount % ring.k;
    const sep = this.ringSeps[slot] as Uint8Array;
    this.ringSeps[slot] = undefined;
    const b = ring.collect();
    if (b.inline) this.countNativeSeal();
    if (b.hashes !== undefined)
      (this.bloom as BloomBuilder | WasmBloomBuilder).addHashes(b.hashes, b.hashOff, b.hashCount);
    const n = b.size + 5;
    if (this.cpos + n > this.chunk.length) {
      this.flushChunk();
      if (n > this.chunk.length) this.chunk = new Uint8Array(n);
    }
    const start = this.offset + this.cpos;
    this.chunk.set(b.bytes.subarray(b.off, b.off + n), this.cpos);
    this.cpos += n;
    this.inflight -= b.rawSize + 5;
    this.dataBlocks++;
    this.dataSize += n;
    this.addIndexEntry(sep, start, b.size);
  }

  /** Writes block + trailer (compressing when `compress` and it pays), returns the stored size (without trailer). */
  private emitBlock(raw: Uint8Array, compress: boolean): number {
    const len = raw.length;
    if (this.cpos + len + 5 > this.chunk.length) {
      this.flushChunk();
      if (len + 5 > this.chunk.length) this.chunk = new Uint8Array(len + 5);
    }
    const p = this.cpos;
    this.chunk.set(raw, p);
    const n = sealBlock(this.chunk, p, len, compress ? this.ctype : 0, this.rawCompress, nativeCrc32c);
    if (compress) this.countNativeSeal();
    this.cpos = p + n + 5;
    return n;
  }

  /**
   * lz4-napi and zstd-napi return external buffers whose N-API finalizers run only on an event-loop turn: a caller
   * that never yields (a synchronous sink) would pile them up (~1 GB over 5M keys). Every YIELD_EVERY blocks
   * compressed on this thread, add() returns a promise that resolves after one turn (setImmediate).
   */
  private countNativeSeal(): void {
    if (!this.codecNeedsTurns || ++this.nativeSealed < YIELD_EVERY) return;
    this.nativeSealed = 0;
    if (this.state !== "open") return;
    const turn = new Promise<void>((resolve) => setImmediate(resolve));
    this.pending = this.pending ? this.pending.then(() => turn) : turn;
  }

  private flushChunk(): void {
    if (this.cpos === 0) return;
    const out = this.chunk.subarray(0, this.cpos);
    this.sha.update(out);
    this.offset += this.cpos;
    this.cpos = 0;
    const r = this.sink.write(out);
    // the sink owns `out` unless it says it consumed it synchronously: then the chunk is reused (flat memory)
    if (r !== undefined || !this.sink.consumesSynchronously || this.chunk.length !== CHUNK) {
      this.chunk = new Uint8Array(CHUNK);
    }
    if (r !== undefined) {
      // chain: at most one outstanding write at a time
      this.pending = this.pending ? this.pending.then(() => r) : r;
    }
  }

  private async drain(): Promise<void> {
    while (this.pending) {
      const p = this.pending;
      this.pending = undefined;
      await p;
    }
  }

  /** Writes the filter, index, properties, metaindex and footer; closes the sink. */
  async finish(): Promise<SstFileInfo> {
    if (this.state !== "open") throw new InputError(`${this.name}: finish() after ${this.state}`);
    try {
      if (this.entries === 0) {
        throw new InputError(`${this.name}: no entries: RocksDB rejects empty SST files`, { source: this.name });
      }
      this.flushBlock(undefined);
      if (this.ring !== undefined) {
        while (this.ring.inFlight > 0) this.collectOne();
        this.ring.close();
      }
      await this.drain();
      // filter block (uncompressed)
      let filterHandle: [number, number] | undefined;
      let filterSize = 0;
      let filterEntries = 0;
      if (this.bloom) {
        filterEntries = this.bloom.entries;
        const f = this.bloom.finish();
        const off = this.offset + this.cpos;
        filterSize = this.emitBlock(f, false);
        filterHandle = [off, filterSize];
      }
      // index block (compressed like data blocks, as RocksDB does)
      const ix = this.index;
      for (const r of this.indexRestarts) ix.fixed32(r);
      ix.fixed32(this.indexRestarts.length);
      const indexOff = this.offset + this.cpos;
      const indexSize = this.emitBlock(ix.view(), true);
      // properties block
      const props = this.buildProperties(indexSize, filterSize, filterEntries);
      const propsOff = this.offset + this.cpos;
      const propsSize = this.emitBlock(props, false);
      // metaindex
      const meta = new MetaBuilder();
      if (filterHandle) meta.add(FULL_FILTER_BLOCK, filterHandle[0], filterHandle[1]);
      meta.add(PROPERTIES_BLOCK, propsOff, propsSize);
      const metaOff = this.offset + this.cpos;
      const metaSize = this.emitBlock(meta.finish(), false);
      // footer
      const f = new ByteBuf(FOOTER_SIZE);
      f.byte(CHECKSUM_CRC32C);
      f.varint(metaOff);
      f.varint(metaSize);
      f.varint(indexOff);
      f.varint(indexSize);
      while (f.len < 41) f.byte(0);
      f.fixed32(FORMAT_VERSION);
      f.fixed32(MAGIC_LO);
      f.fixed32(MAGIC_HI);
      if (this.cpos + FOOTER_SIZE > this.chunk.length) this.flushChunk();
      this.chunk.set(f.view(), this.cpos);
      this.cpos += FOOTER_SIZE;
      this.flushChunk();
      await this.drain();
      await this.sink.close();
      this.state = "finished";
      return {
        smallestKey: this.first as Uint8Array,
        largestKey: this.last.slice(0, this.lastLen),
        entries: this.entries,
        bytes: this.offset,
        sha256: this.sha.digest("hex"),
        rawKeyBytes: this.rawKeyBytes - 8 * this.entries,
        rawValueBytes: this.rawValueBytes,
        index: 0,
      };
    } catch (e) {
      await this.abort(e);
      throw e;
    }
  }

  /** Bytes handed to the sink so far plus what is buffered (a lower bound of the final file size). */
  get estimatedFileSize(): number {
    // blocks still in the ring count raw: collection points depend only on the block sequence, so this (and the
    // file-set rollover it drives) is the same whichever thread compresses
    return this.offset + this.cpos + this.inflight + this.pos;
  }
  /** the last key added (a copy) */
  get lastKey(): Uint8Array | undefined {
    return this.entries > 0 ? this.last.slice(0, this.lastLen) : undefined;
  }
  get entryCount(): number {
    return this.entries;
  }

  async abort(err?: unknown): Promise<void> {
    if (this.state === "finished" || this.state === "aborted") return;
    this.state = "aborted";
    this.ring?.close();
    try {
      await this.drain();
    } catch {}
    await this.sink.abort?.(err);
  }

  private buildProperties(indexSize: number, filterSize: number, filterEntries: number): Uint8Array {
    // SstFileWriter (7.8) writes creation.time 0 and format.version 0; so do we (reproducible bytes)
    const now = this.opts.creationTime ?? 0;
    const sessionIdentity = this.opts.sessionIdentity ?? true;
    const fixed32 = (v: number) => {
      const b = new ByteBuf(4);
      b.fixed32(v);
      return b.view().slice();
    };
    const fixed64 = (v: number) => {
      const b = new ByteBuf(8);
      b.fixed64(v);
      return b.view().slice();
    };
    const te = new TextEncoder();
    const props = new Map<string, Uint8Array | number | string>();
    props.set("rocksdb.block.based.table.index.type", fixed32(0));
    props.set("rocksdb.block.based.table.prefix.filtering", "0");
    props.set("rocksdb.block.based.table.whole.key.filtering", this.bloom ? "1" : "0");
    props.set("rocksdb.column.family.id", 2147483647);
    props.set("rocksdb.column.family.name", "");
    props.set("rocksdb.comparator", "leveldb.BytewiseComparator");
    props.set("rocksdb.compression", COMPRESSION_NAME[this.ctype]);
    props.set(
      "rocksdb.compression_options",
      "window_bits=-14; level=32767; strategy=0; max_dict_bytes=0; zstd_max_train_bytes=0; enabled=0; max_dict_buffer_bytes=0; use_zstd_dict_trainer=1; ",
    );
    props.set("rocksdb.creation.time", now);
    props.set("rocksdb.data.size", this.dataSize);
    if (sessionIdentity) {
      props.set("rocksdb.creating.db.identity", "SST Writer");
      props.set("rocksdb.creating.host.identity", hostname());
      props.set("rocksdb.creating.session.identity", randomSessionId());
      props.set("rocksdb.original.file.number", randomInt(1, 2 ** 47));
    }
    props.set("rocksdb.external_sst_file.global_seqno", fixed64(0));
    props.set("rocksdb.external_sst_file.version", fixed32(2));
    if (this.bloom) {
      props.set("rocksdb.filter.policy", "bloomfilter");
      props.set("rocksdb.num.filter_entries", filterEntries);
    }
    props.set("rocksdb.filter.size", filterSize);
    props.set("rocksdb.fixed.key.length", 0);
    props.set("rocksdb.format.version", 0);
    props.set("rocksdb.index.key.is.user.key", 1);
    props.set("rocksdb.index.size", indexSize + 5); // RocksDB counts the trailer here
    props.set("rocksdb.index.value.is.delta.encoded", 1);
    props.set("rocksdb.merge.operator", "nullptr");
    props.set("rocksdb.merge.operands", 0);
    props.set("rocksdb.num.data.blocks", this.dataBlocks);
    props.set("rocksdb.num.entries", this.entries);
    props.set("rocksdb.num.range-deletions", 0);
    props.set("rocksdb.deleted.keys", 0);
    props.set("rocksdb.oldest.key.time", 0);
    props.set("rocksdb.prefix.extractor.name", "nullptr");
    props.set("rocksdb.property.collectors", "[]");
    props.set("rocksdb.raw.key.size", this.rawKeyBytes);
    props.set("rocksdb.raw.value.size", this.rawValueBytes);
    const names = [...props.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const blk = new ByteBuf(2048);
    let lastKey = new Uint8Array(0);
    for (const name of names) {
      const v = props.get(name);
      const k = te.encode(name);
      let val: Uint8Array;
      if (typeof v === "number") {
        const b = new ByteBuf(10);
        b.varint(v);
        val = b.view().slice();
      } else if (typeof v === "string") val = te.encode(v);
      else val = v as Uint8Array;
      // one restart point for the whole block: prefix-compress every key against the previous one
      let shared = 0;
      while (shared < k.length && shared < lastKey.length && k[shared] === lastKey[shared]) shared++;
      blk.varint(shared);
      blk.varint(k.length - shared);
      blk.varint(val.length);
      blk.bytes(k.subarray(shared));
      blk.bytes(val);
      lastKey = k;
    }
    blk.fixed32(0);
    blk.fixed32(1);
    return blk.view();
  }
}

/** metaindex block: restart interval 1, keys sorted, values = encoded BlockHandles */
class MetaBuilder {
  private readonly entries: Array<[string, number, number]> = [];
  add(name: string, offset: number, size: number): void {
    this.entries.push([name, offset, size]);
  }
  finish(): Uint8Array {
    this.entries.sort((a, b) => Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0])));
    const b = new ByteBuf(256);
    const restarts: number[] = [];
    const te = new TextEncoder();
    for (const [name, off, size] of this.entries) {
      restarts.push(b.len);
      const h = new ByteBuf(20);
      h.varint(off);
      h.varint(size);
      const k = te.encode(name);
      b.varint(0);
      b.varint(k.length);
      b.varint(h.len);
      b.bytes(k);
      b.bytes(h.view());
    }
    for (const r of restarts) b.fixed32(r);
    b.fixed32(restarts.length);
    return b.view();
  }
}

/**
 * Writes one sorted stream into several SST files, starting a new file once the current one passes
 * `targetFileSize` bytes (checked between keys only, so a file never splits a key).
 */
export class SstFileSetWriter {
  private readonly openSink: (index: number) => ByteSink | Promise<ByteSink>;
  private readonly opts: SstFileSetWriterOptions;
  private readonly target: number;
  private cur: SstWriter | undefined;
  private index = 0;
  private readonly done: SstFileInfo[] = [];
  private last: Uint8Array | undefined;
  private state: "open" | "finished" | "aborted" = "open";

  constructor(openSink: (index: number) => ByteSink | Promise<ByteSink>, opts: SstFileSetWriterOptions = {}) {
    this.openSink = openSink;
    this.opts = opts;
    this.target = opts.targetFileSize ?? SST.targetFileSize;
  }

  add(key: Uint8Array, value: Uint8Array): void | Promise<void> {
    if (this.state !== "open") throw new InputError(`SstFileSetWriter: add() after ${this.state}`);
    const w = this.cur;
    if (w === undefined || w.estimatedFileSize >= this.target) return this.rollAndAdd(key, value);
    return w.add(key, value);
  }

  /** add(buf[ks, ke), buf[vs, ve)) without views (SstWriter.addRange); same rollover, same bytes. */
  addRange(buf: Uint8Array, ks: number, ke: number, vs: number, ve: number): void | Promise<void> {
    if (this.state !== "open") throw new InputError(`SstFileSetWriter: add() after ${this.state}`);
    const w = this.cur;
    if (w === undefined || w.estimatedFileSize >= this.target) {
      return this.rollAndAdd(buf.subarray(ks, ke), buf.subarray(vs, ve));
    }
    return w.addRange(buf, ks, ke, vs, ve);
  }

  private async rollAndAdd(key: Uint8Array, value: Uint8Array): Promise<void> {
    if (this.cur) {
      // keep the order check across files
      this.last = this.curLastKey();
      const info = await this.cur.finish();
      this.done.push({ ...info, index: this.index - 1 });
      this.cur = undefined;
    }
    if (this.last) {
      const c = Buffer.compare(Buffer.from(key), Buffer.from(this.last));
      if (c <= 0) {
        throw new InputError(
          `keys must be strictly ascending (bytewise): ${previewKey(key)} ${c === 0 ? "duplicates" : "sorts before"} ${previewKey(this.last)} (file boundary ${this.index})`,
          { key: Buffer.from(key).toString("hex") },
        );
      }
    }
    const sink = await this.openSink(this.index);
    const name = this.opts.name ? `${this.opts.name}#${this.index}` : `sst#${this.index}`;
    this.cur = new SstWriter(sink, { ...this.opts, name });
    this.index++;
    const p = this.cur.add(key, value);
    if (p) await p;
  }

  private curLastKey(): Uint8Array | undefined {
    return this.cur?.lastKey;
  }

  async finish(): Promise<SstFileInfo[]> {
    if (this.state !== "open") throw new InputError(`SstFileSetWriter: finish() after ${this.state}`);
    try {
      if (!this.cur) throw new InputError("SstFileSetWriter: no entries: RocksDB rejects empty SST files");
      const info = await this.cur.finish();
      this.done.push({ ...info, index: this.index - 1 });
      this.cur = undefined;
      this.state = "finished";
      return this.done;
    } catch (e) {
      await this.abort(e);
      throw e;
    }
  }

  /** Aborts the file being written. Files already finished stay (the caller owns their cleanup). */
  async abort(err?: unknown): Promise<void> {
    if (this.state !== "open") return;
    this.state = "aborted";
    await this.cur?.abort(err);
    this.cur = undefined;
  }

  /** files completed so far */
  get files(): readonly SstFileInfo[] {
    return this.done;
  }
}
