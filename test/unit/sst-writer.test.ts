import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, CorruptionError, InputError, LimitError } from "../../core/errors.js";
import { SST } from "../../core/limits.js";
import { readFixed32 } from "../../core/sst/format.js";
import {
  bufferSource,
  fileSink,
  memorySink,
  SstFileSetWriter,
  SstReader,
  SstWriter,
  type SstCompression,
} from "../../core/sst/index.js";

const te = new TextEncoder();
const dir = mkdtempSync(join(tmpdir(), "ferry-sst-unit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const k = (i: number) => te.encode(`key${String(i).padStart(8, "0")}`);
const v = (i: number) => te.encode(`value-${i}-${"x".repeat(i % 40)}`);

async function build(n: number, opts: ConstructorParameters<typeof SstWriter>[1] = {}): Promise<Uint8Array> {
  const sink = memorySink();
  const w = new SstWriter(sink, opts);
  for (let i = 0; i < n; i++) {
    const p = w.add(k(i), v(i));
    if (p) await p;
  }
  await w.finish();
  return sink.bytes();
}

async function catchErr(f: () => unknown): Promise<unknown> {
  try {
    await f();
  } catch (e) {
    return e;
  }
  throw new Error("expected an error");
}

describe("SstWriter + SstReader round trip", () => {
  it.each(["none", "snappy", "lz4", "zstd"] as SstCompression[])("%s: get, getSync, scan, verify", async (c) => {
    const bytes = await build(3000, { compression: c });
    const r = await SstReader.open(bufferSource(bytes, `mem-${c}`));
    expect(r.entries).toBe(3000);
    expect(r.properties["rocksdb.compression"]).toBe(
      { none: "NoCompression", snappy: "Snappy", lz4: "LZ4", zstd: "ZSTD" }[c],
    );
    expect(Buffer.from(r.smallestKey).toString()).toBe("key00000000");
    expect(Buffer.from(r.largestKey).toString()).toBe("key00002999");
    for (const i of [0, 1, 15, 16, 17, 1234, 2999]) {
      expect(Buffer.from((await r.get(k(i))) as Uint8Array).toString()).toBe(Buffer.from(v(i)).toString());
      expect(Buffer.from(r.getSync(k(i)) as Uint8Array).toString()).toBe(Buffer.from(v(i)).toString());
    }
    for (const absent of ["key", "key00000000a", "key00003000", "a", "z", ""]) {
      expect(r.getSync(te.encode(absent))).toBeUndefined();
    }
    let n = 0;
    let prev = "";
    for await (const [kk] of r.scan()) {
      const s = Buffer.from(kk).toString();
      expect(s > prev).toBe(true);
      prev = s;
      n++;
    }
    expect(n).toBe(3000);
    const got: string[] = [];
    for await (const [kk] of r.scan({ from: k(100), to: k(105) })) got.push(Buffer.from(kk).toString());
    expect(got).toEqual([100, 101, 102, 103, 104].map((i) => `key${String(i).padStart(8, "0")}`));
    let lim = 0;
    for await (const _ of r.scan({ from: k(2990), limit: 3 })) lim++;
    expect(lim).toBe(3);
    expect(await r.verify()).toEqual({ blocks: r.dataBlocks.length + 4, entries: 3000 });
    if (c !== "none") {
      const plain = await build(3000);
      expect(bytes.length).toBeLessThan(plain.length);
    }
  });

  it("writes the data block layout RocksDB expects (internal keys, restarts every 16, count)", async () => {
    const bytes = await build(40, { bloomBitsPerKey: 0 });
    const r = await SstReader.open(bufferSource(bytes));
    const h = r.dataBlocks[0];
    const blk = bytes.subarray(h.offset, h.offset + h.size);
    // first entry: shared 0, non_shared = 11 + 8, value length, key, 01 00.. suffix
    expect(blk[0]).toBe(0);
    expect(blk[1]).toBe(19);
    expect(blk[2]).toBe(v(0).length);
    expect(Buffer.from(blk.subarray(3, 14)).toString()).toBe("key00000000");
    expect(Buffer.from(blk.subarray(14, 22)).toString("hex")).toBe("0100000000000000");
    const nRestarts = readFixed32(blk, blk.length - 4);
    expect(nRestarts).toBe(Math.ceil(40 / 16));
    // trailer: type 0, crc
    expect(bytes[h.offset + h.size]).toBe(0);
    // footer: format_version 5 + magic
    expect(readFixed32(bytes, bytes.length - 12)).toBe(5);
    expect(Buffer.from(bytes.subarray(bytes.length - 8)).toString("hex")).toBe("f7cff485b741e288");
    expect(bytes[bytes.length - 53]).toBe(1); // checksum type CRC32c
  });

  it("writes properties in strictly ascending bytewise order with the ingestion-critical ones", async () => {
    const bytes = await build(10);
    const r = await SstReader.open(bufferSource(bytes));
    const names = Object.keys(r.properties);
    const sorted = [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect(names).toEqual(sorted);
    expect(new Set(names).size).toBe(names.length);
    const p = r.properties;
    expect(p["rocksdb.external_sst_file.version"]).toBe(2);
    expect(p["rocksdb.external_sst_file.global_seqno"]).toBe(0);
    expect(p["rocksdb.comparator"]).toBe("leveldb.BytewiseComparator");
    expect(p["rocksdb.index.key.is.user.key"]).toBe(1);
    expect(p["rocksdb.index.value.is.delta.encoded"]).toBe(1);
    expect(p["rocksdb.num.entries"]).toBe(10);
    expect(p["rocksdb.raw.key.size"]).toBe(10 * (11 + 8));
    expect(p["rocksdb.filter.policy"]).toBe("bloomfilter");
    expect(p["rocksdb.creating.session.identity"]).toMatch(/^[0-9A-Z]{20}$/);
    // a fresh session id per file
    const r2 = await SstReader.open(bufferSource(await build(10)));
    expect(r2.properties["rocksdb.creating.session.identity"]).not.toBe(p["rocksdb.creating.session.identity"]);
  });

  it("handles binary keys, 1-byte keys, long shared prefixes, empty and large values", async () => {
    const entries: Array<[Uint8Array, Uint8Array]> = [];
    for (let b = 0; b < 256; b++)
      entries.push([Uint8Array.of(b), b % 3 === 0 ? new Uint8Array(0) : Uint8Array.of(b, b)]);
    const prefix = new Uint8Array(3000).fill(0xab);
    const longs: Array<[Uint8Array, Uint8Array]> = [];
    for (let i = 0; i < 50; i++) {
      const kk = new Uint8Array(3002);
      kk.set(prefix);
      kk[3000] = i;
      kk[3001] = 0xff;
      longs.push([kk, te.encode(`long${i}`)]);
    }
    const big = new Uint8Array(1 << 20).map((_, i) => (i * 7) & 0xff);
    const all = [...entries, ...longs, [Uint8Array.of(0xff, 0xff, 0x00), big] as [Uint8Array, Uint8Array]];
    all.sort((a, b) => Buffer.compare(a[0], b[0]));
    for (const c of ["none", "snappy"] as SstCompression[]) {
      const sink = memorySink();
      const w = new SstWriter(sink, { compression: c });
      for (const [kk, vv] of all) {
        const p = w.add(kk, vv);
        if (p) await p;
      }
      const info = await w.finish();
      expect(info.entries).toBe(all.length);
      const r = await SstReader.open(bufferSource(sink.bytes()));
      await r.verify();
      for (const [kk, vv] of all) expect(Buffer.compare(r.getSync(kk) as Uint8Array, vv)).toBe(0);
      expect(r.getSync(Uint8Array.of(0xab, 0xab))).toBeUndefined();
      let n = 0;
      for await (const _ of r.scan()) n++;
      expect(n).toBe(all.length);
    }
  });

  it("keys that are prefixes of the next key (shared prefix reaching into the 8-byte suffix)", async () => {
    const keys = ["a", "a\u0001", "a\u0001\u0000", "a\u0001\u0000\u0000", "a\u0002", "b"].map((s) =>
      Buffer.from(s, "latin1"),
    );
    const sink = memorySink();
    const w = new SstWriter(sink);
    for (const kk of keys) w.add(kk, kk);
    await w.finish();
    const r = await SstReader.open(bufferSource(sink.bytes()));
    for (const kk of keys) expect(Buffer.compare(r.getSync(kk) as Uint8Array, kk)).toBe(0);
    await r.verify();
  });

  it("reports file info: sha256 of the whole file, sizes, key range", async () => {
    const path = join(dir, "info.sst");
    const w = new SstWriter(fileSink(path), { compression: "snappy" });
    for (let i = 0; i < 100; i++) w.add(k(i), v(i));
    const info = await w.finish();
    const file = readFileSync(path);
    expect(info.bytes).toBe(file.length);
    const { createHash } = await import("node:crypto");
    expect(info.sha256).toBe(createHash("sha256").update(file).digest("hex"));
    expect(Buffer.from(info.smallestKey).toString()).toBe("key00000000");
    expect(Buffer.from(info.largestKey).toString()).toBe("key00000099");
    expect(readdirSync(dir).filter((f) => f.includes(".tmp-"))).toEqual([]);
  });
});

// deterministic tricky entries: shared prefixes of every length, keys that are prefixes of the next one followed by
// 0x01 / 0x00 bytes (shared reaching into the internal-key suffix), deltas over 32 bytes, keys growing past 256 bytes,
// empty / short / >32-byte / multi-KiB values
function trickyEntries(n: number): Array<[Uint8Array, Uint8Array]> {
  let x = 0x9e3779b9;
  const rnd = (m: number) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % m;
  };
  const keys = new Map<string, Uint8Array>();
  let prev: Uint8Array = new Uint8Array(0);
  while (keys.size < n) {
    const kind = rnd(8);
    let kk: Uint8Array;
    if (kind === 0 && prev.length > 0) {
      // previous key + 0x01 0x00.. (prefix case)
      const ext = 1 + rnd(10);
      kk = new Uint8Array(prev.length + ext);
      kk.set(prev);
      kk[prev.length] = rnd(3) === 0 ? 0 : 1;
    } else if (kind === 1) {
      kk = new Uint8Array(33 + rnd(300)).map(() => rnd(256));
    } else {
      const keep = prev.length > 0 ? rnd(prev.length + 1) : 0;
      kk = new Uint8Array(keep + 1 + rnd(20));
      kk.set(prev.subarray(0, keep));
      for (let j = keep; j < kk.length; j++) kk[j] = rnd(4) === 0 ? rnd(3) : rnd(256);
    }
    keys.set(Buffer.from(kk).toString("hex"), kk);
    prev = kk;
  }
  const sorted = [...keys.values()].sort((a, b) => Buffer.compare(a, b));
  return sorted.map((kk, i) => {
    const r = rnd(10);
    const len = r === 0 ? 0 : r === 1 ? 1 + rnd(32) : r === 2 ? 2000 + rnd(6000) : 33 + rnd(150);
    const vv = new Uint8Array(len);
    for (let j = 0; j < len; j++) vv[j] = j % 3 === 0 ? rnd(256) : (i + j) & 0x7f;
    return [kk, vv];
  });
}

describe("SstWriter.addRange (offsets into one buffer) and the add() path", () => {
  const entries = trickyEntries(6000);
  // every entry packed into one buffer, value before key for half of them (any layout works)
  const packed = new Uint8Array(entries.reduce((a, [kk, vv]) => a + kk.length + vv.length + 3, 0));
  const ranges: Array<[number, number, number, number]> = [];
  let o = 0;
  for (const [i, [kk, vv]] of entries.entries()) {
    o += i % 3;
    if (i % 2 === 0) {
      packed.set(kk, o);
      packed.set(vv, o + kk.length);
      ranges.push([o, o + kk.length, o + kk.length, o + kk.length + vv.length]);
    } else {
      packed.set(vv, o);
      packed.set(kk, o + vv.length);
      ranges.push([o + vv.length, o + vv.length + kk.length, o, o + vv.length]);
    }
    o += kk.length + vv.length;
  }
  const sha = async (b: Uint8Array) => (await import("node:crypto")).createHash("sha256").update(b).digest("hex");
  // sha256 of these entries' files as written by the writer before addRange and the fused key copies (commit
  // be42321): the bytes must never change
  const golden: Array<[SstCompression, number, number, string]> = [
    ["none", 10, 4096, "9d204a43533f320f6cc33fd2b0d6aa76dce6fcef1e75e3dd7f5315f5a8ee05f5"],
    ["none", 0, 4096, "47218462102de3eeb69fde3350539230fd2ce9502c02f2fcddca7b3ceba75938"],
    ["snappy", 10, 4096, "9a1eeabcab9737d93cdc3b947b770ccbc5d0331d7768ad211020acb71718317b"],
    ["none", 10, 256, "99ca760e25e615f551d5a3ef41f75bf80d459e85948a9e674d656470131feb49"],
  ];
  it.each(golden)(
    "%s, bloom %i, blocks of %i: add and addRange write the same (pinned) bytes",
    async (c, bloom, bs, hex) => {
      const opts = { compression: c, bloomBitsPerKey: bloom, blockSize: bs, sessionIdentity: false };
      const viaAdd = memorySink();
      const w1 = new SstWriter(viaAdd, opts);
      for (const [kk, vv] of entries) {
        const p = w1.add(kk, vv);
        if (p) await p;
      }
      await w1.finish();
      const viaRange = memorySink();
      const w2 = new SstWriter(viaRange, opts);
      for (const [ks, ke, vs, ve] of ranges) {
        const p = w2.addRange(packed, ks, ke, vs, ve);
        if (p) await p;
      }
      const info = await w2.finish();
      expect(await sha(viaAdd.bytes())).toBe(hex);
      expect(await sha(viaRange.bytes())).toBe(hex);
      expect(info.sha256).toBe(hex);
      const r = await SstReader.open(bufferSource(viaRange.bytes()));
      await r.verify();
      let i = 0;
      for await (const [kk, vv] of r.scan()) {
        expect(Buffer.compare(kk, entries[i][0])).toBe(0);
        expect(Buffer.compare(vv, entries[i][1])).toBe(0);
        i++;
      }
      expect(i).toBe(entries.length);
    },
  );

  it("SstFileSetWriter.addRange rolls over at the same keys as add", async () => {
    const write = async (range: boolean) => {
      const sinks: ReturnType<typeof memorySink>[] = [];
      const fw = new SstFileSetWriter(
        () => {
          const s = memorySink();
          sinks.push(s);
          return s;
        },
        { targetFileSize: 512 * 1024, compression: "none", sessionIdentity: false },
      );
      for (const [i, [kk, vv]] of entries.entries()) {
        const [ks, ke, vs, ve] = ranges[i];
        const p = range ? fw.addRange(packed, ks, ke, vs, ve) : fw.add(kk, vv);
        if (p) await p;
      }
      const infos = await fw.finish();
      return { entries: infos.map((f) => f.entries), shas: await Promise.all(sinks.map((s) => sha(s.bytes()))) };
    };
    const a = await write(false);
    const b = await write(true);
    expect(a.entries.length).toBeGreaterThan(3);
    expect(b).toEqual(a);
  });

  it("addRange keeps add's order check and limits", async () => {
    const w = new SstWriter(memorySink(), { name: "t" });
    const buf = te.encode("bbbaaa");
    w.addRange(buf, 0, 3, 3, 6);
    const e = await catchErr(() => w.addRange(buf, 3, 6, 0, 3));
    expect(e).toBeInstanceOf(InputError);
    expect((e as Error).message).toBe(
      't: keys must be strictly ascending (bytewise): key #1 "aaa" sorts before key #0 "bbb"',
    );
    const w2 = new SstWriter(memorySink(), { name: "t" });
    const big = new Uint8Array(SST.maxKeyBytes + 10);
    expect(await catchErr(() => w2.addRange(big, 0, SST.maxKeyBytes + 1, 0, 1))).toBeInstanceOf(LimitError);
  });
});

describe("SstWriter input checks", () => {
  it("rejects unsorted keys naming both keys and positions", async () => {
    const w = new SstWriter(memorySink(), { name: "t.sst" });
    w.add(te.encode("b"), te.encode("1"));
    const e = await catchErr(() => w.add(te.encode("a"), te.encode("2")));
    expect(e).toBeInstanceOf(InputError);
    expect((e as Error).message).toMatch(/key #1 "a" sorts before key #0 "b"/);
  });
  it("rejects duplicate keys", async () => {
    const w = new SstWriter(memorySink());
    w.add(te.encode("a"), te.encode("1"));
    const e = await catchErr(() => w.add(te.encode("a"), te.encode("2")));
    expect(e).toBeInstanceOf(InputError);
    expect((e as Error).message).toMatch(/key #1 "a" duplicates key #0 "a"/);
  });
  it("previews binary keys as hex", async () => {
    const w = new SstWriter(memorySink());
    w.add(Uint8Array.of(0, 2), te.encode("1"));
    const e = await catchErr(() => w.add(Uint8Array.of(0, 1), te.encode("2")));
    expect((e as Error).message).toMatch(/0x0001 sorts before key #0 0x0002/);
  });
  it("rejects an empty file and removes the partial output", async () => {
    const path = join(dir, "empty.sst");
    const w = new SstWriter(fileSink(path));
    const e = await catchErr(() => w.finish());
    expect(e).toBeInstanceOf(InputError);
    expect((e as Error).message).toMatch(/no entries/);
    expect(existsSync(path)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.startsWith("empty.sst"))).toEqual([]);
  });
  it("rejects over-limit keys and values (SST.maxKeyBytes / maxValueBytes)", async () => {
    const w = new SstWriter(memorySink());
    const e1 = await catchErr(() => w.add(new Uint8Array(SST.maxKeyBytes + 1), new Uint8Array(0)));
    expect(e1).toBeInstanceOf(LimitError);
    const w2 = new SstWriter(memorySink());
    const e2 = await catchErr(() => w2.add(te.encode("k"), new Uint8Array(SST.maxValueBytes + 1)));
    expect(e2).toBeInstanceOf(LimitError);
    expect((e2 as Error).message).toMatch(/over the \d+-byte limit/);
  });
  it("rejects an unknown codec", () => {
    expect(() => new SstWriter(memorySink(), { compression: "brotli" as SstCompression })).toThrow(ConfigError);
  });
  it("abort removes the temp file of a file sink", async () => {
    const path = join(dir, "aborted.sst");
    const sink = fileSink(path);
    const w = new SstWriter(sink);
    w.add(k(1), v(1));
    await w.abort();
    expect(existsSync(path)).toBe(false);
    expect(existsSync(sink.tmpPath)).toBe(false);
  });
  it("awaits a sink that asks for back-pressure", async () => {
    const chunks: Uint8Array[] = [];
    let waits = 0;
    const sink = {
      write(c: Uint8Array) {
        chunks.push(c);
        waits++;
        return new Promise<void>((res) => setTimeout(res, 1));
      },
      async close() {},
    };
    const w = new SstWriter(sink, { bloomBitsPerKey: 0 });
    const val = new Uint8Array(1000);
    let promises = 0;
    for (let i = 0; i < 5000; i++) {
      const p = w.add(k(i), val);
      if (p) {
        promises++;
        await p;
      }
    }
    await w.finish();
    expect(promises).toBeGreaterThan(0);
    expect(waits).toBe(chunks.length);
    const r = await SstReader.open(bufferSource(Buffer.concat(chunks)));
    expect((await r.verify()).entries).toBe(5000);
  });
});

describe("SstFileSetWriter", () => {
  it("rolls over between keys past targetFileSize and keeps key order across files", async () => {
    const sinks: ReturnType<typeof memorySink>[] = [];
    const fw = new SstFileSetWriter(
      (i) => {
        expect(i).toBe(sinks.length);
        const s = memorySink();
        sinks.push(s);
        return s;
      },
      { targetFileSize: 64 * 1024, compression: "none" },
    );
    for (let i = 0; i < 5000; i++) {
      const p = fw.add(k(i), v(i));
      if (p) await p;
    }
    const infos = await fw.finish();
    expect(infos.length).toBeGreaterThan(2);
    expect(infos.map((f) => f.index)).toEqual(infos.map((_, i) => i));
    expect(infos.reduce((a, f) => a + f.entries, 0)).toBe(5000);
    for (let i = 0; i + 1 < infos.length; i++) {
      expect(Buffer.compare(infos[i].largestKey, infos[i + 1].smallestKey)).toBeLessThan(0);
    }
    for (const [i, s] of sinks.entries()) {
      expect(s.closed).toBe(true);
      const r = await SstReader.open(bufferSource(s.bytes()));
      expect(r.entries).toBe(infos[i].entries);
    }
    const fw2 = new SstFileSetWriter(() => memorySink(), { targetFileSize: 1 });
    await fw2.add(k(2), v(2));
    const e = await catchErr(() => fw2.add(k(1), v(1)));
    expect(e).toBeInstanceOf(InputError);
  });
});

describe("SstReader on damaged files", () => {
  it("a truncated file is a CorruptionError", async () => {
    const bytes = await build(100);
    for (const cut of [10, 60, bytes.length - 1]) {
      const e = await catchErr(() => SstReader.open(bufferSource(bytes.subarray(0, cut), "t.sst")));
      expect(e).toBeInstanceOf(CorruptionError);
    }
  });
  it("a corrupted data block names its offset and expected/actual checksums", async () => {
    const bytes = Buffer.from(await build(2000));
    const r0 = await SstReader.open(bufferSource(bytes));
    const h = r0.dataBlocks[3];
    bytes[h.offset + 10] ^= 0x40;
    const r = await SstReader.open(bufferSource(bytes, "bad.sst"));
    const e = (await catchErr(() => r.verify())) as CorruptionError;
    expect(e).toBeInstanceOf(CorruptionError);
    expect(e.message).toContain(`data block at offset ${h.offset}`);
    expect(e.message).toMatch(/expected 0x[0-9a-f]{8}, actual 0x[0-9a-f]{8}/);
    expect(e.details.offset).toBe(h.offset);
    expect(e.details.expected).not.toBe(e.details.actual);
    // a get that touches the block fails with the same error
    let failed = 0;
    for (let i = 0; i < 2000; i++) {
      try {
        r.getSync(k(i));
      } catch (err) {
        expect(err).toBeInstanceOf(CorruptionError);
        failed++;
      }
    }
    expect(failed).toBeGreaterThan(0);
  });
  it("a file that is not an SST is rejected", async () => {
    const path = join(dir, "not.sst");
    writeFileSync(path, Buffer.alloc(100, 7));
    const e = await catchErr(() => SstReader.open(path));
    expect(e).toBeInstanceOf(CorruptionError);
    expect((e as Error).message).toMatch(/bad magic/);
  });
});

describe("SstReader block cache", () => {
  const same = (a: Uint8Array | undefined, b: Uint8Array) => a !== undefined && Buffer.from(a).equals(b);
  it("answers every get correctly while the LRU cache evicts (cache of ~3 blocks, random and repeated keys)", async () => {
    const n = 20_000;
    const bytes = await build(n, { compression: "snappy", bloomBitsPerKey: 10 });
    for (const cache of [0, 10_000, 1 << 30]) {
      const r = await SstReader.open(bufferSource(bytes), { blockCacheBytes: cache });
      let x = 12345;
      for (let i = 0; i < 5_000; i++) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        // runs of nearby keys (cache hits) mixed with jumps (misses and evictions)
        const j = i % 7 === 0 ? x % n : (x % 50) + ((i * 37) % (n - 50));
        expect(same(r.getSync(k(j)), v(j))).toBe(true);
        if (i % 11 === 0) expect(r.getSync(te.encode(`key${String(j).padStart(8, "0")}~`))).toBeUndefined();
      }
      expect(same(r.getSync(k(0)), v(0))).toBe(true);
      expect(same(r.getSync(k(n - 1)), v(n - 1))).toBe(true);
      expect(r.getSync(te.encode("key"))).toBeUndefined();
      expect(r.getSync(te.encode("kez"))).toBeUndefined();
      await r.close();
    }
  });
});
