/**
 * ferry's SST writer/reader against real RocksDB (Debian rocksdb-tools 7.8.3: sst_dump, ldb).
 * Skips loudly when the tools are missing, never when CI=true.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../cli/main.js";
import { fileSink, fileSource, SstReader, SstWriter, type SstCompression } from "../../core/sst/index.js";

function has(tool: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${tool}`]).status === 0;
}
const haveTools = has("sst_dump") && has("ldb");
if (!haveTools) {
  if (process.env.CI === "true")
    throw new Error("RocksDB tools (sst_dump, ldb) are missing and CI=true: install rocksdb-tools");
  console.warn(
    "\n*** SKIPPING test/interop/sst-rocksdb.test.ts: sst_dump/ldb not installed (apt-get install rocksdb-tools) ***\n",
  );
}

const te = new TextEncoder();
let dir = "";
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "ferry-sst-interop-"));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function run(cmd: string, args: string[], input?: string): { code: number; out: string; err: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", input, maxBuffer: 1 << 30 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}
function sstDumpVerify(file: string): string {
  const r = run("sst_dump", [`--file=${file}`, "--command=verify", "--verify_checksum"]);
  return r.out + r.err;
}
function ldb(db: string, ...args: string[]): { code: number; out: string; err: string } {
  return run("ldb", [`--db=${db}`, ...args]);
}
const hex = (b: Uint8Array) => `0x${Buffer.from(b).toString("hex").toUpperCase()}`;

async function writeSst(
  path: string,
  entries: Iterable<[Uint8Array, Uint8Array]>,
  opts: ConstructorParameters<typeof SstWriter>[1] = {},
) {
  const w = new SstWriter(fileSink(path), opts);
  for (const [k, v] of entries) {
    const p = w.add(k, v);
    if (p) await p;
  }
  return w.finish();
}

function* numbered(n: number, prefix = "key"): Generator<[Uint8Array, Uint8Array]> {
  for (let i = 0; i < n; i++) {
    yield [te.encode(`${prefix}${String(i).padStart(8, "0")}`), te.encode(`value-${i}-${"v".repeat(i % 60)}`)];
  }
}

describe.skipIf(!haveTools)("ferry SSTs in RocksDB 7.8", () => {
  it.each(["none", "snappy", "lz4", "zstd"] as SstCompression[])(
    "%s: sst_dump verifies, ingests into an empty DB, gets and scans",
    async (codec) => {
      const f = join(dir, `c-${codec}.sst`);
      await writeSst(f, numbered(5000), { compression: codec });
      const v = sstDumpVerify(f);
      expect(v).toContain("The file is ok");
      expect(v.toLowerCase()).not.toContain("corrupt");
      const props = run("sst_dump", [`--file=${f}`, "--show_properties"]).out;
      expect(props).toContain(
        `SST file compression algo: ${{ none: "NoCompression", snappy: "Snappy", lz4: "LZ4", zstd: "ZSTD" }[codec]}`,
      );
      const db = join(dir, `db-${codec}`);
      const ing = ldb(db, "--create_if_missing", "ingest_extern_sst", f);
      expect(ing.code, ing.err).toBe(0);
      for (const i of [0, 1, 2500, 4998, 4999]) {
        const g = ldb(db, "get", `key${String(i).padStart(8, "0")}`);
        expect(g.code, g.err).toBe(0);
        expect(g.out.trim()).toBe(`value-${i}-${"v".repeat(i % 60)}`);
      }
      for (const absent of ["key00005000", "key", "a", "zzz", "key00000001x"]) {
        const g = ldb(db, "get", absent);
        expect(g.code).toBe(1);
        expect(g.out + g.err).toMatch(/NotFound/);
      }
      expect(ldb(db, "scan").out.trim().split("\n")).toHaveLength(5000);
      const cc = ldb(db, "checkconsistency");
      expect(cc.code, cc.err).toBe(0);
      expect(cc.out).toMatch(/OK/);
    },
  );

  it("ingests into a DB holding overlapping keys (ingested values win)", async () => {
    const db = join(dir, "db-overlap");
    expect(ldb(db, "--create_if_missing", "put", "key00000010", "old").code).toBe(0);
    expect(ldb(db, "put", "key00000020", "old").code).toBe(0);
    expect(ldb(db, "put", "zzz-not-in-sst", "kept").code).toBe(0);
    const f = join(dir, "overlap.sst");
    await writeSst(f, numbered(100), { compression: "snappy" });
    const ing = ldb(db, "ingest_extern_sst", f);
    expect(ing.code, ing.err).toBe(0);
    expect(ldb(db, "get", "key00000010").out.trim()).toBe(`value-10-${"v".repeat(10)}`);
    expect(ldb(db, "get", "key00000020").out.trim()).toBe(`value-20-${"v".repeat(20)}`);
    expect(ldb(db, "get", "zzz-not-in-sst").out.trim()).toBe("kept");
    expect(ldb(db, "scan").out.trim().split("\n")).toHaveLength(101);
    expect(ldb(db, "checkconsistency").code).toBe(0);
  });

  it("bloom filter, data and index blocks are byte-identical to ldb write_extern_sst --bloom_bits=10", async () => {
    const lines: string[] = [];
    const entries: Array<[Uint8Array, Uint8Array]> = [];
    for (let i = 0; i < 20000; i++) {
      const k = `user:${(i * 7919) % 100003}:${i}`;
      entries.push([te.encode(k), te.encode(`v${i}`)]);
    }
    entries.sort((a, b) => Buffer.compare(a[0], b[0]));
    for (const [k, v] of entries) lines.push(`${Buffer.from(k).toString()} ==> ${Buffer.from(v).toString()}`);
    const native = join(dir, "native-bloom.sst");
    const r = run(
      "ldb",
      [
        `--db=${join(dir, "db-native")}`,
        "--create_if_missing",
        "--bloom_bits=10",
        "--compression_type=no",
        "write_extern_sst",
        native,
      ],
      `${lines.join("\n")}\n`,
    );
    expect(r.code, r.err).toBe(0);
    const ours = join(dir, "ours-bloom.sst");
    await writeSst(ours, entries, { compression: "none", bloomBitsPerKey: 10 });
    const a = await SstReader.open(ours);
    const b = await SstReader.open(native);
    expect(b.checksumType).toBeGreaterThan(0);
    const sa = fileSource(ours);
    const sb = fileSource(native);
    const block = async (s: typeof sa, h: { offset: number; size: number }) =>
      Buffer.from(await s.read(h.offset, h.size));
    const fa = await block(
      sa,
      a.metaBlocks.get("fullfilter.rocksdb.BuiltinBloomFilter") as { offset: number; size: number },
    );
    const fb = await block(
      sb,
      b.metaBlocks.get("fullfilter.rocksdb.BuiltinBloomFilter") as { offset: number; size: number },
    );
    expect(fa.length).toBeGreaterThan(20000);
    expect(fa.equals(fb)).toBe(true);
    expect(a.dataBlocks.length).toBe(b.dataBlocks.length);
    for (let i = 0; i < a.dataBlocks.length; i++) {
      expect((await block(sa, a.dataBlocks[i])).equals(await block(sb, b.dataBlocks[i]))).toBe(true);
    }
    expect((await block(sa, a.indexHandle)).equals(await block(sb, b.indexHandle))).toBe(true);
    for (const k of [
      "raw.key.size",
      "raw.value.size",
      "num.entries",
      "num.data.blocks",
      "filter.size",
      "index.size",
      "data.size",
    ]) {
      expect(a.properties[`rocksdb.${k}`]).toBe(b.properties[`rocksdb.${k}`]);
    }
    await Promise.all([a.close(), b.close(), sa.close?.(), sb.close?.()]);
  });

  it("reads files written by RocksDB itself (default XXH3 checksums, snappy)", async () => {
    const lines = [...numbered(3000)].map(([k, v]) => `${Buffer.from(k).toString()} ==> ${Buffer.from(v).toString()}`);
    const native = join(dir, "native-default.sst");
    const r = run(
      "ldb",
      [`--db=${join(dir, "db-native2")}`, "--create_if_missing", "write_extern_sst", native],
      `${lines.join("\n")}\n`,
    );
    expect(r.code, r.err).toBe(0);
    const rd = await SstReader.open(native);
    expect(rd.entries).toBe(3000);
    expect((await rd.verify()).entries).toBe(3000);
    for (const [k, v] of numbered(3000)) expect(Buffer.compare(rd.getSync(k) as Uint8Array, v)).toBe(0);
    expect(rd.getSync(te.encode("key00003000"))).toBeUndefined();
    await rd.close();
  });

  it("binary keys (every byte value, 1-byte keys, long shared prefixes), empty values, 1 MiB values", async () => {
    const entries: Array<[Uint8Array, Uint8Array]> = [];
    for (let b = 0; b < 256; b++) entries.push([Uint8Array.of(b), b % 2 ? Uint8Array.of(b) : new Uint8Array(0)]);
    for (let b = 0; b < 256; b++) entries.push([Uint8Array.of(0x42, b, 0x00, 0xff), Uint8Array.of(b, b)]);
    const prefix = new Uint8Array(1000).fill(0x7f);
    for (let i = 0; i < 40; i++) {
      const k = new Uint8Array(1002);
      k.set(prefix);
      k[1000] = i;
      k[1001] = 255 - i;
      entries.push([k, te.encode(`p${i}`)]);
    }
    const big = new Uint8Array(1 << 20).map((_, i) => (i * 131) & 0xff);
    entries.push([Uint8Array.of(0xfe, 0xfe), big]);
    entries.sort((a, b) => Buffer.compare(a[0], b[0]));
    const f = join(dir, "binary.sst");
    await writeSst(f, entries, { compression: "lz4" });
    expect(sstDumpVerify(f)).toContain("The file is ok");
    const db = join(dir, "db-binary");
    expect(ldb(db, "--create_if_missing", "ingest_extern_sst", f).code).toBe(0);
    for (const i of [0, 1, 2, 255, 256, 300, entries.length - 41, entries.length - 2]) {
      const [k, v] = entries[i];
      const g = ldb(db, "--hex", "get", hex(k));
      expect(g.code, g.err).toBe(0);
      expect(g.out.trim()).toBe(v.length ? hex(v) : "0x");
    }
    const bigGet = ldb(db, "--key_hex", "--value_hex", "get", hex(Uint8Array.of(0xfe, 0xfe)));
    expect(bigGet.out.trim()).toBe(hex(big));
    expect(ldb(db, "--hex", "get", "0x4201").code).toBe(1);
    expect(ldb(db, "--hex", "scan").out.trim().split("\n")).toHaveLength(entries.length);
    expect(ldb(db, "checkconsistency").code).toBe(0);
  });

  it("a single entry, and 1,000,000 entries", async () => {
    const one = join(dir, "one.sst");
    await writeSst(one, [[te.encode("only"), te.encode("one")]]);
    expect(sstDumpVerify(one)).toContain("The file is ok");
    const db1 = join(dir, "db-one");
    expect(ldb(db1, "--create_if_missing", "ingest_extern_sst", one).code).toBe(0);
    expect(ldb(db1, "get", "only").out.trim()).toBe("one");

    const big = join(dir, "million.sst");
    const key = new Uint8Array(16).fill(48);
    const val = te.encode("0123456789abcdef0123456789abcdef");
    const w = new SstWriter(fileSink(big), { compression: "snappy" });
    for (let i = 0; i < 1_000_000; i++) {
      w.add(key, val);
      let d = 15;
      while (key[d] === 57) key[d--] = 48;
      key[d]++;
    }
    const info = await w.finish();
    expect(info.entries).toBe(1_000_000);
    expect(sstDumpVerify(big)).toContain("The file is ok");
    const db = join(dir, "db-million");
    expect(ldb(db, "--create_if_missing", "ingest_extern_sst", big).code).toBe(0);
    for (const k of ["0000000000000000", "0000000000500000", "0000000000999999"]) {
      expect(ldb(db, "get", k).out.trim()).toBe(Buffer.from(val).toString());
    }
    expect(ldb(db, "get", "0000000001000000").code).toBe(1);
    const count = execFileSync("sh", ["-c", `ldb --db=${db} scan | wc -l`], { encoding: "utf8" });
    expect(Number(count.trim())).toBe(1_000_000);
  }, 180_000);

  it("a flipped byte is caught by ferry sst verify (exit 1 naming the block) and by sst_dump", async () => {
    const f = join(dir, "flip.sst");
    await writeSst(f, numbered(3000), { compression: "snappy" });
    const r = await SstReader.open(f);
    const h = r.dataBlocks[5];
    await r.close();
    const bytes = readFileSync(f);
    bytes[h.offset + 7] ^= 0x01;
    writeFileSync(f, bytes);
    expect(sstDumpVerify(f).toLowerCase()).toMatch(/corrupt/);
    const errs: string[] = [];
    const orig = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => {
      errs.push(String(s));
      return true;
    }) as typeof process.stderr.write;
    let code: number;
    try {
      code = await main(["sst", "verify", f]);
    } finally {
      process.stderr.write = orig;
    }
    expect(code).toBe(1);
    expect(errs.join("")).toContain(`data block at offset ${h.offset}`);
    expect(errs.join("")).toMatch(/expected 0x[0-9a-f]{8}, actual 0x[0-9a-f]{8}/);
  });
});
