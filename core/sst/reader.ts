/**
 * SstReader: reads block-based tables (format_version 2..5, as RocksDB 6.x..7.x and ferry write them).
 * footer -> metaindex -> properties (+ filter) -> index (kept in memory) -> data blocks (LRU block cache).
 * Every block read is checked against its trailer checksum (CRC32c, or XXH3 as RocksDB 7.8 writes by default).
 */
import { crc32c as nativeCrc32c } from "@node-rs/crc32";
import { xxh3 } from "@node-rs/xxhash";
import { CorruptionError, InputError } from "../errors.js";
import { SST } from "../limits.js";
import { BloomReader } from "./bloom.js";
import { decompressBlock } from "./codecs.js";
import {
  CHECKSUM_CRC32C,
  CHECKSUM_NONE,
  CHECKSUM_XXH3,
  COMPRESSION_NAME,
  Cursor,
  FOOTER_SIZE,
  FULL_FILTER_BLOCK,
  MAGIC_HI,
  MAGIC_LO,
  PROPERTIES_BLOCK,
  readFixed32,
  unmaskCrc,
} from "./format.js";
import { fileSource } from "./sink.js";
import type { BlockHandle, RandomAccessSource, SstProperties, SstReaderOptions, SstScanOptions } from "./types.js";

const td = new TextDecoder();

/** properties stored as fixed-width or raw binary (everything else numeric is a varint64, strings are utf8) */
const FIXED32_PROPS = new Set(["rocksdb.external_sst_file.version", "rocksdb.block.based.table.index.type"]);
const FIXED64_PROPS = new Set(["rocksdb.external_sst_file.global_seqno"]);
const STRING_PROPS = new Set([
  "rocksdb.column.family.name",
  "rocksdb.comparator",
  "rocksdb.compression",
  "rocksdb.compression_options",
  "rocksdb.creating.db.identity",
  "rocksdb.creating.host.identity",
  "rocksdb.creating.session.identity",
  "rocksdb.filter.policy",
  "rocksdb.merge.operator",
  "rocksdb.prefix.extractor.name",
  "rocksdb.property.collectors",
  "rocksdb.block.based.table.prefix.filtering",
  "rocksdb.block.based.table.whole.key.filtering",
  "rocksdb.seqno.time.map",
]);

/** A decoded data block: its bytes (without trailer), where entries end and where the restart array starts. */
interface DataBlock {
  data: Uint8Array;
  restartsAt: number;
  nRestarts: number;
}

function compareRange(a: Uint8Array, aStart: number, aLen: number, b: Uint8Array): number {
  const n = Math.min(aLen, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[aStart + i] - b[i];
    if (d !== 0) return d;
  }
  return aLen - b.length;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return compareRange(a, 0, a.length, b);
}

/**
 * LRU block cache: a Map from block offset to a node of an intrusive doubly-linked list (most recent at the head).
 * A hit only relinks the node; the Map changes on insert and eviction alone. (The previous Map-only LRU moved a hit
 * with delete + set and evicted through `map.keys().next()`, which walks over the deleted slots at the front of
 * V8's ordered hash table: with a full cache that made a get 2.5x slower than no cache at all.)
 */
interface LruNode {
  key: number;
  value: DataBlock;
  prev: LruNode | undefined;
  next: LruNode | undefined;
}

class LruCache {
  private readonly map = new Map<number, LruNode>();
  private head: LruNode | undefined;
  private tail: LruNode | undefined;
  private bytes = 0;
  constructor(private readonly capacity: number) {}
  get(k: number): DataBlock | undefined {
    const n = this.map.get(k);
    if (n === undefined) return undefined;
    if (n !== this.head) {
      this.unlink(n);
      this.pushFront(n);
    }
    return n.value;
  }
  set(k: number, v: DataBlock): void {
    if (this.capacity <= 0) return;
    const old = this.map.get(k);
    if (old !== undefined) {
      this.bytes -= old.value.data.length;
      this.unlink(old);
      this.map.delete(k);
    }
    const n: LruNode = { key: k, value: v, prev: undefined, next: undefined };
    this.pushFront(n);
    this.map.set(k, n);
    this.bytes += v.data.length;
    while (this.bytes > this.capacity && this.map.size > 1) {
      const last = this.tail as LruNode;
      this.unlink(last);
      this.map.delete(last.key);
      this.bytes -= last.value.data.length;
    }
  }
  private unlink(n: LruNode): void {
    if (n.prev) n.prev.next = n.next;
    else this.head = n.next;
    if (n.next) n.next.prev = n.prev;
    else this.tail = n.prev;
    n.prev = undefined;
    n.next = undefined;
  }
  private pushFront(n: LruNode): void {
    n.next = this.head;
    if (this.head) this.head.prev = n;
    this.head = n;
    if (!this.tail) this.tail = n;
  }
}

export class SstReader {
  readonly properties: SstProperties;
  readonly entries: number;
  readonly smallestKey: Uint8Array;
  readonly largestKey: Uint8Array;
  /** trailer checksum type from the footer (1 = CRC32c, 4 = XXH3) */
  readonly checksumType: number;
  readonly formatVersion: number;
  readonly name: string;
  /** data block handles, in key order, with their index separators */
  readonly dataBlocks: ReadonlyArray<BlockHandle>;
  readonly metaBlocks: ReadonlyMap<string, BlockHandle>;
  readonly indexHandle: BlockHandle;
  readonly metaindexHandle: BlockHandle;

  private readonly src: RandomAccessSource;
  private readonly ownsSource: boolean;
  private readonly indexKeys: Uint8Array[];
  /** the index separators packed into one buffer (key i = indexBytes[indexOffsets[i], indexOffsets[i + 1])): the
   *  binary search touches one contiguous allocation instead of thousands of scattered small ones */
  private readonly indexBytes: Uint8Array;
  private readonly indexOffsets: Uint32Array;
  private readonly filter: BloomReader | undefined;
  private readonly cache: LruCache;
  private readonly verifyChecksums: boolean;

  private constructor(init: {
    src: RandomAccessSource;
    ownsSource: boolean;
    opts: SstReaderOptions;
    checksumType: number;
    formatVersion: number;
    properties: SstProperties;
    indexKeys: Uint8Array[];
    dataBlocks: BlockHandle[];
    metaBlocks: Map<string, BlockHandle>;
    indexHandle: BlockHandle;
    metaindexHandle: BlockHandle;
    filter: BloomReader | undefined;
  }) {
    this.src = init.src;
    this.name = init.src.name ?? "sst";
    this.ownsSource = init.ownsSource;
    this.checksumType = init.checksumType;
    this.formatVersion = init.formatVersion;
    this.properties = init.properties;
    this.indexKeys = init.indexKeys;
    this.indexOffsets = new Uint32Array(init.indexKeys.length + 1);
    let total = 0;
    for (let i = 0; i < init.indexKeys.length; i++) {
      this.indexOffsets[i] = total;
      total += init.indexKeys[i].length;
    }
    this.indexOffsets[init.indexKeys.length] = total;
    this.indexBytes = new Uint8Array(total);
    for (let i = 0; i < init.indexKeys.length; i++) this.indexBytes.set(init.indexKeys[i], this.indexOffsets[i]);
    this.dataBlocks = init.dataBlocks;
    this.metaBlocks = init.metaBlocks;
    this.indexHandle = init.indexHandle;
    this.metaindexHandle = init.metaindexHandle;
    this.filter = init.filter;
    this.cache = new LruCache(init.opts.blockCacheBytes ?? SST.blockCacheBytes);
    this.verifyChecksums = init.opts.verifyChecksums ?? true;
    this.entries = Number(init.properties["rocksdb.num.entries"] ?? 0);
    this.smallestKey = new Uint8Array(0);
    this.largestKey = new Uint8Array(0);
  }

  static async open(src: RandomAccessSource | string, opts: SstReaderOptions = {}): Promise<SstReader> {
    const owns = typeof src === "string";
    const s = typeof src === "string" ? fileSource(src) : src;
    const name = s.name ?? "sst";
    try {
      if (s.size < FOOTER_SIZE) {
        throw new CorruptionError(`${name}: ${s.size} bytes is too small for an SST file (footer is ${FOOTER_SIZE})`, {
          file: name,
        });
      }
      const foot = await s.read(s.size - FOOTER_SIZE, FOOTER_SIZE);
      const magicLo = readFixed32(foot, 45);
      const magicHi = readFixed32(foot, 49);
      if (magicLo !== MAGIC_LO || magicHi !== MAGIC_HI) {
        throw new CorruptionError(
          `${name}: not a block-based SST file (bad magic number 0x${magicHi.toString(16)}${magicLo.toString(16).padStart(8, "0")} in the footer; truncated or not an SST?)`,
          { file: name, offset: s.size - 8 },
        );
      }
      const formatVersion = readFixed32(foot, 41);
      if (formatVersion < 1 || formatVersion > 5) {
        throw new CorruptionError(`${name}: unsupported format_version ${formatVersion} (this reader reads 1..5)`, {
          file: name,
        });
      }
      const checksumType = foot[0];
      const c = new Cursor(foot, 1, 41, `${name}: footer`);
      const metaindexHandle = c.handle();
      const indexHandle = c.handle();
      const partial = {
        src: s,
        name,
        checksumType,
        verify: opts.verifyChecksums ?? true,
      };
      // metaindex
      const meta = await readRawBlock(partial, metaindexHandle, "metaindex block");
      const metaBlocks = new Map<string, BlockHandle>();
      for (const [k, v] of iterateBlock(meta, `${name}: metaindex block`)) {
        const hc = new Cursor(v, 0, v.length, `${name}: metaindex entry`);
        metaBlocks.set(td.decode(k), hc.handle());
      }
      const propsHandle = metaBlocks.get(PROPERTIES_BLOCK);
      const properties: SstProperties = {};
      if (propsHandle) {
        const pb = await readRawBlock(partial, propsHandle, "properties block");
        for (const [k, v] of iterateBlock(pb, `${name}: properties block`)) {
          const key = td.decode(k);
          properties[key] = decodeProperty(key, v);
        }
      }
      const userKeyIndex = Number(properties["rocksdb.index.key.is.user.key"] ?? 0) === 1;
      const deltaValues = Number(properties["rocksdb.index.value.is.delta.encoded"] ?? 0) === 1;
      const indexType = Number(properties["rocksdb.block.based.table.index.type"] ?? 0);
      if (indexType !== 0) {
        throw new CorruptionError(`${name}: index type ${indexType} is not supported (only binary search, 0)`, {
          file: name,
        });
      }
      const ib = await readRawBlock(partial, indexHandle, "index block");
      const indexKeys: Uint8Array[] = [];
      const dataBlocks: BlockHandle[] = [];
      parseIndex(ib, userKeyIndex, deltaValues, `${name}: index block`, indexKeys, dataBlocks);
      let filter: BloomReader | undefined;
      const fh = metaBlocks.get(FULL_FILTER_BLOCK);
      if (fh) filter = new BloomReader(await readRawBlock(partial, fh, "filter block"));
      const r = new SstReader({
        src: s,
        ownsSource: owns,
        opts,
        checksumType,
        formatVersion,
        properties,
        indexKeys,
        dataBlocks,
        metaBlocks,
        indexHandle,
        metaindexHandle,
        filter,
      });
      if (dataBlocks.length > 0) {
        const firstBlock = await r.loadBlock(0);
        const it = blockEntries(firstBlock, `${name}: data block @${dataBlocks[0].offset}`);
        const firstEntry = it.next();
        if (!firstEntry.done) (r as { smallestKey: Uint8Array }).smallestKey = userKey(firstEntry.value[0]);
        const lastBlock = await r.loadBlock(dataBlocks.length - 1);
        let lastKey: Uint8Array | undefined;
        for (const [k] of blockEntries(lastBlock, `${name}: data block`)) lastKey = k;
        if (lastKey) (r as { largestKey: Uint8Array }).largestKey = userKey(lastKey);
      }
      return r;
    } catch (e) {
      if (owns) await s.close?.();
      throw e;
    }
  }

  /** true when the bloom filter says the key is certainly absent */
  private filteredOut(key: Uint8Array): boolean {
    return this.filter !== undefined && !this.filter.mayContain(key);
  }

  /** first data block whose index separator is >= key, or -1 */
  private findBlock(key: Uint8Array): number {
    const bytes = this.indexBytes;
    const offs = this.indexOffsets;
    const n = offs.length - 1;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const start = offs[mid];
      if (compareRange(bytes, start, offs[mid + 1] - start, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo < n ? lo : -1;
  }

  private decodeRaw(handle: BlockHandle, raw: Uint8Array): DataBlock {
    const data = checkAndDecompress(
      { name: this.name, checksumType: this.checksumType, verify: this.verifyChecksums },
      handle,
      raw,
      "data block",
    );
    if (data.length < 4) throw new CorruptionError(`${this.name}: data block @${handle.offset} is too short`);
    const nRestarts = readFixed32(data, data.length - 4);
    const restartsAt = data.length - 4 - nRestarts * 4;
    if (nRestarts === 0 || restartsAt < 0) {
      throw new CorruptionError(`${this.name}: data block @${handle.offset} has a bad restart array`, {
        file: this.name,
        offset: handle.offset,
      });
    }
    return { data, restartsAt, nRestarts };
  }

  private async loadBlock(i: number): Promise<DataBlock> {
    const h = this.dataBlocks[i];
    const cached = this.cache.get(h.offset);
    if (cached) return cached;
    const raw = await this.src.read(h.offset, h.size + 5);
    const b = this.decodeRaw(h, raw);
    this.cache.set(h.offset, b);
    return b;
  }

  private loadBlockSync(i: number): DataBlock {
    const h = this.dataBlocks[i];
    const cached = this.cache.get(h.offset);
    if (cached) return cached;
    const rs = this.src.readSync;
    if (!rs) throw new InputError(`${this.name}: getSync needs a source with readSync (fileSource, bufferSource)`);
    const raw = rs.call(this.src, h.offset, h.size + 5);
    const b = this.decodeRaw(h, raw);
    this.cache.set(h.offset, b);
    return b;
  }

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    if (this.src.readSync) return this.getSync(key);
    if (this.filteredOut(key)) return undefined;
    const i = this.findBlock(key);
    if (i < 0) return undefined;
    return lookupInBlock(await this.loadBlock(i), key);
  }

  /** Synchronous point get (the serving fast path); the source must have readSync. */
  getSync(key: Uint8Array): Uint8Array | undefined {
    if (this.filteredOut(key)) return undefined;
    const i = this.findBlock(key);
    if (i < 0) return undefined;
    return lookupInBlock(this.loadBlockSync(i), key);
  }

  /** Entries in key order, from `from` (inclusive) to `to` (exclusive), at most `limit`. */
  async *scan(opts: SstScanOptions = {}): AsyncIterable<[Uint8Array, Uint8Array]> {
    const { from, to } = opts;
    let left = opts.limit ?? Number.POSITIVE_INFINITY;
    if (left <= 0) return;
    let i = from ? this.findBlock(from) : 0;
    if (i < 0) return;
    for (; i < this.dataBlocks.length; i++) {
      const b = await this.loadBlock(i);
      for (const [ik, v, type] of blockEntries(b, `${this.name}: data block @${this.dataBlocks[i].offset}`)) {
        const k = userKey(ik);
        if (from && compareBytes(k, from) < 0) continue;
        if (to && compareBytes(k, to) >= 0) return;
        if (type !== 1) continue;
        yield [k, v];
        if (--left <= 0) return;
      }
    }
  }

  /**
   * Reads every block and checks its checksum, decodes every data block, and checks that keys ascend and the entry
   * count matches the properties. Throws CorruptionError naming the block (offset) and the checksums.
   */
  async verify(): Promise<{ blocks: number; entries: number }> {
    const ctx = { src: this.src, name: this.name, checksumType: this.checksumType, verify: true };
    let blocks = 0;
    let entries = 0;
    let prev: Uint8Array | undefined;
    for (let i = 0; i < this.dataBlocks.length; i++) {
      const h = this.dataBlocks[i];
      const raw = await this.src.read(h.offset, h.size + 5);
      const data = checkAndDecompress(ctx, h, raw, "data block");
      const nRestarts = data.length >= 4 ? readFixed32(data, data.length - 4) : 0;
      const restartsAt = data.length - 4 - nRestarts * 4;
      if (nRestarts === 0 || restartsAt < 0) {
        throw new CorruptionError(`${this.name}: data block #${i} @${h.offset} has a bad restart array`, {
          file: this.name,
          offset: h.offset,
        });
      }
      for (const [ik] of blockEntries({ data, restartsAt, nRestarts }, `${this.name}: data block #${i} @${h.offset}`)) {
        const k = userKey(ik);
        if (prev && compareBytes(k, prev) <= 0) {
          throw new CorruptionError(`${this.name}: data block #${i} @${h.offset}: keys out of order`, {
            file: this.name,
            offset: h.offset,
          });
        }
        prev = k;
        entries++;
      }
      if (compareBytes(prev ?? new Uint8Array(0), this.indexKeys[i]) > 0) {
        throw new CorruptionError(`${this.name}: data block #${i} @${h.offset}: last key is past its index separator`, {
          file: this.name,
          offset: h.offset,
        });
      }
      blocks++;
    }
    for (const [nm, h] of this.metaBlocks) {
      await readRawBlock(ctx, h, `meta block ${nm}`);
      blocks++;
    }
    await readRawBlock(ctx, this.indexHandle, "index block");
    await readRawBlock(ctx, this.metaindexHandle, "metaindex block");
    blocks += 2;
    if (this.properties["rocksdb.num.entries"] !== undefined && entries !== this.entries) {
      throw new CorruptionError(`${this.name}: ${entries} entries in the data blocks, properties say ${this.entries}`, {
        file: this.name,
      });
    }
    return { blocks, entries };
  }

  /** A summary for `ferry sst inspect`. */
  describe(): Record<string, unknown> {
    return {
      file: this.name,
      bytes: this.src.size,
      formatVersion: this.formatVersion,
      checksum: checksumName(this.checksumType),
      compression: this.properties["rocksdb.compression"],
      entries: this.entries,
      dataBlocks: this.dataBlocks.length,
      filter: this.metaBlocks.has(FULL_FILTER_BLOCK) ? "full bloom (FastLocalBloom)" : "none",
      smallestKey: this.smallestKey,
      largestKey: this.largestKey,
      metaBlocks: [...this.metaBlocks.keys()],
      properties: this.properties,
    };
  }

  async close(): Promise<void> {
    if (this.ownsSource) await this.src.close?.();
  }
}

export function checksumName(t: number): string {
  return (
    ({ 0: "none", 1: "crc32c", 2: "xxhash", 3: "xxhash64", 4: "xxh3" } as Record<number, string>)[t] ?? `unknown(${t})`
  );
}

function userKey(ik: Uint8Array): Uint8Array {
  return ik.subarray(0, ik.length - 8);
}

function decodeProperty(key: string, v: Uint8Array): string | number {
  if (FIXED32_PROPS.has(key) && v.length === 4) return readFixed32(v, 0);
  if (FIXED64_PROPS.has(key) && v.length === 8) return readFixed32(v, 4) * 4294967296 + readFixed32(v, 0);
  if (STRING_PROPS.has(key)) return td.decode(v);
  // numeric properties are varint64; anything that does not decode cleanly is shown as a string/hex
  try {
    const c = new Cursor(v, 0, v.length, key);
    const n = c.varint();
    if (c.pos === v.length) return n;
  } catch {}
  const s = td.decode(v);
  return /^[\x20-\x7e]*$/.test(s) ? s : `0x${Buffer.from(v).toString("hex")}`;
}

interface ReadCtx {
  name: string;
  checksumType: number;
  verify: boolean;
}

const XXH3_LAST_BYTE_PRIME = 0x6b9083d9;

/** Checks the trailer checksum of `raw` (block + 5-byte trailer) and decompresses it. */
function checkAndDecompress(ctx: ReadCtx, h: BlockHandle, raw: Uint8Array, what: string): Uint8Array {
  const n = h.size;
  if (raw.length !== n + 5) {
    throw new CorruptionError(`${ctx.name}: ${what} @${h.offset}: short read (${raw.length} of ${n + 5} bytes)`, {
      file: ctx.name,
      offset: h.offset,
    });
  }
  const type = raw[n];
  if (ctx.verify && ctx.checksumType !== CHECKSUM_NONE) {
    const stored = readFixed32(raw, n + 1);
    let actual: number;
    let expected: number;
    if (ctx.checksumType === CHECKSUM_CRC32C) {
      actual = nativeCrc32c(raw.subarray(0, n + 1));
      expected = unmaskCrc(stored);
    } else if (ctx.checksumType === CHECKSUM_XXH3) {
      // Lower32(XXH3_64(block)) with the compression-type byte folded in
      const h64 = xxh3.xxh64(raw.subarray(0, n));
      actual = (Number(h64 & 0xffffffffn) ^ Math.imul(type, XXH3_LAST_BYTE_PRIME)) >>> 0;
      expected = stored;
    } else {
      throw new CorruptionError(
        `${ctx.name}: checksum type ${checksumName(ctx.checksumType)} is not supported (crc32c and xxh3 are)`,
        { file: ctx.name },
      );
    }
    if (actual !== expected) {
      throw new CorruptionError(
        `${ctx.name}: ${what} at offset ${h.offset} (${n} bytes): ${checksumName(ctx.checksumType)} checksum mismatch, expected 0x${expected.toString(16).padStart(8, "0")}, actual 0x${actual.toString(16).padStart(8, "0")}`,
        {
          file: ctx.name,
          offset: h.offset,
          expected: expected.toString(16).padStart(8, "0"),
          actual: actual.toString(16).padStart(8, "0"),
        },
      );
    }
  }
  if (type !== 0 && COMPRESSION_NAME[type] === undefined) {
    throw new CorruptionError(`${ctx.name}: ${what} at offset ${h.offset}: unknown compression type ${type}`, {
      file: ctx.name,
      offset: h.offset,
    });
  }
  return decompressBlock(type, raw.subarray(0, n), `${ctx.name}: ${what} at offset ${h.offset}`);
}

async function readRawBlock(
  ctx: ReadCtx & { src: RandomAccessSource },
  h: BlockHandle,
  what: string,
): Promise<Uint8Array> {
  if (h.offset + h.size + 5 > ctx.src.size) {
    throw new CorruptionError(
      `${ctx.name}: ${what} handle (offset ${h.offset}, ${h.size} bytes) points past the end of the file (${ctx.src.size} bytes): truncated?`,
      { file: ctx.name, offset: h.offset },
    );
  }
  const raw = await ctx.src.read(h.offset, h.size + 5);
  return checkAndDecompress(ctx, h, raw, what);
}

/** Iterate a metadata block (standard entries, value lengths present): yields [key, value] copies. */
function* iterateBlock(data: Uint8Array, what: string): Generator<[Uint8Array, Uint8Array]> {
  if (data.length < 4) throw new CorruptionError(`${what}: too short`);
  const nRestarts = readFixed32(data, data.length - 4);
  const end = data.length - 4 - nRestarts * 4;
  if (end < 0) throw new CorruptionError(`${what}: bad restart array`);
  yield* blockEntriesRaw(data, end, what, false);
}

function* blockEntriesRaw(
  data: Uint8Array,
  end: number,
  what: string,
  withType: boolean,
): Generator<[Uint8Array, Uint8Array]> {
  const c = new Cursor(data, 0, end, what);
  let key = new Uint8Array(0);
  while (c.pos < end) {
    const shared = c.varint();
    const nonShared = c.varint();
    const vlen = c.varint();
    if (shared > key.length || c.pos + nonShared + vlen > end)
      throw new CorruptionError(`${what}: bad entry at ${c.pos}`);
    const k = new Uint8Array(shared + nonShared);
    k.set(key.subarray(0, shared));
    k.set(data.subarray(c.pos, c.pos + nonShared), shared);
    c.pos += nonShared;
    const v = data.subarray(c.pos, c.pos + vlen);
    c.pos += vlen;
    key = k;
    void withType;
    yield [k, v];
  }
}

/** Data block entries: [internal key, value, value type] */
function* blockEntries(b: DataBlock, what: string): Generator<[Uint8Array, Uint8Array, number]> {
  for (const [k, v] of blockEntriesRaw(b.data, b.restartsAt, what, true)) {
    if (k.length < 8) throw new CorruptionError(`${what}: internal key shorter than 8 bytes`);
    yield [k, v, k[k.length - 8]];
  }
}

function parseIndex(
  data: Uint8Array,
  userKeys: boolean,
  deltaValues: boolean,
  what: string,
  keys: Uint8Array[],
  handles: BlockHandle[],
): void {
  if (data.length < 4) throw new CorruptionError(`${what}: too short`);
  const nRestarts = readFixed32(data, data.length - 4);
  const end = data.length - 4 - nRestarts * 4;
  if (end < 0) throw new CorruptionError(`${what}: bad restart array`);
  const c = new Cursor(data, 0, end, what);
  let key = new Uint8Array(0);
  let prev: BlockHandle | undefined;
  while (c.pos < end) {
    const shared = c.varint();
    const nonShared = c.varint();
    let vlen = -1;
    if (!deltaValues) vlen = c.varint();
    if (shared > key.length || c.pos + nonShared > end) throw new CorruptionError(`${what}: bad entry at ${c.pos}`);
    const k = new Uint8Array(shared + nonShared);
    k.set(key.subarray(0, shared));
    k.set(data.subarray(c.pos, c.pos + nonShared), shared);
    c.pos += nonShared;
    key = k;
    let h: BlockHandle;
    if (!deltaValues) {
      const vc = new Cursor(data, c.pos, c.pos + vlen, what);
      h = vc.handle();
      c.pos += vlen;
    } else if (shared === 0 || prev === undefined) {
      h = c.handle();
    } else {
      // delta: offset follows the previous block, size is a zigzag varint delta
      const z = c.varint();
      const delta = z % 2 === 0 ? z / 2 : -(z + 1) / 2;
      h = { offset: prev.offset + prev.size + 5, size: prev.size + delta };
    }
    keys.push(userKeys ? k : k.subarray(0, k.length - 8));
    handles.push(h);
    prev = h;
  }
}

/** Binary search over restart points, then a linear scan; returns the value of `key` (type Put) or undefined. */
/** the linear scan's current-key buffer, shared by every lookup (lookups are synchronous); grows up to 64 KiB */
let lookupScratch = new Uint8Array(256);

function lookupInBlock(b: DataBlock, key: Uint8Array): Uint8Array | undefined {
  const d = b.data;
  const ra = b.restartsAt;
  // find the last restart whose key (user part) < key
  let lo = 0;
  let hi = b.nRestarts - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    const off = readFixed32(d, ra + mid * 4);
    // entry at a restart: shared = 0
    let p = off;
    let shared = 0;
    let nonShared = 0;
    let x = d[p++];
    if (x < 128) shared = x;
    else {
      p--;
      const c = new Cursor(d, p, ra, "block");
      shared = c.varint();
      p = c.pos;
    }
    x = d[p++];
    if (x < 128) nonShared = x;
    else {
      const c = new Cursor(d, p - 1, ra, "block");
      nonShared = c.varint();
      p = c.pos;
    }
    x = d[p++];
    if (x >= 128) {
      const c = new Cursor(d, p - 1, ra, "block");
      c.varint();
      p = c.pos;
    }
    void shared;
    if (compareRange(d, p, nonShared - 8, key) < 0) lo = mid;
    else hi = mid - 1;
  }
  // linear scan from restart `lo`
  let p = readFixed32(d, ra + lo * 4);
  let cur = lookupScratch;
  while (p < ra) {
    let shared = d[p++];
    if (shared >= 128) {
      const c = new Cursor(d, p - 1, ra, "block");
      shared = c.varint();
      p = c.pos;
    }
    let nonShared = d[p++];
    if (nonShared >= 128) {
      const c = new Cursor(d, p - 1, ra, "block");
      nonShared = c.varint();
      p = c.pos;
    }
    let vlen = d[p++];
    if (vlen >= 128) {
      const c = new Cursor(d, p - 1, ra, "block");
      vlen = c.varint();
      p = c.pos;
    }
    const klen = shared + nonShared;
    if (klen > cur.length) {
      const n = new Uint8Array(Math.max(klen, cur.length * 2));
      n.set(cur.subarray(0, shared));
      cur = n;
      if (n.length <= 1 << 16) lookupScratch = n;
    }
    // short key suffixes are copied byte by byte: a subarray view per entry costs more than the copy
    if (nonShared <= 32) for (let i = 0; i < nonShared; i++) cur[shared + i] = d[p + i];
    else cur.set(d.subarray(p, p + nonShared), shared);
    p += nonShared;
    const cmp = compareRange(cur, 0, klen - 8, key);
    if (cmp === 0) {
      const type = cur[klen - 8];
      return type === 1 ? d.subarray(p, p + vlen) : undefined;
    }
    if (cmp > 0) return undefined;
    p += vlen;
  }
  return undefined;
}
