/**
 * One behaviour suite for every store backend (host/store). test/unit/store-sst.test.ts runs it on the "sst"
 * backend, test/interop/store-rocksdb.test.ts on real RocksDB. SST inputs are built by core/sst.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fileSink, SstWriter } from "../../core/sst/index.js";
import type { SstCompression } from "../../core/sst/index.js";
import type { StoreBackend, VersionStore } from "../../host/store/types.js";

export function key(i: number): Buffer {
  return Buffer.from(`key-${String(i).padStart(6, "0")}`);
}
export function val(i: number, tag = "v1"): Buffer {
  return Buffer.from(`${tag}:value-of-${i}:${"x".repeat(i % 50)}`);
}

/** writes an SST with core/sst; entries must be sorted */
export async function buildSst(
  path: string,
  entries: [Uint8Array, Uint8Array][],
  o: { compression?: SstCompression; bloomBitsPerKey?: number } = {},
): Promise<void> {
  const w = new SstWriter(fileSink(path), { name: path, ...o });
  try {
    for (const [k, v] of entries) {
      const p = w.add(k, v);
      if (p) await p;
    }
    await w.finish();
  } catch (e) {
    await w.abort(e);
    throw e;
  }
}

function range(from: number, to: number, tag = "v1"): [Buffer, Buffer][] {
  const out: [Buffer, Buffer][] = [];
  for (let i = from; i < to; i++) out.push([key(i), val(i, tag)]);
  return out;
}

const str = (b: Uint8Array | undefined) => (b === undefined ? undefined : Buffer.from(b).toString());

export function storeSuite(backend: StoreBackend): void {
  describe(`store backend ${backend.name}`, () => {
    let root: string;
    let n = 0;
    const fresh = () => join(root, `case-${++n}`);
    const input = (name: string) => join(root, "in", `${n}-${name}`);

    beforeAll(() => {
      root = mkdtempSync(join(tmpdir(), `ferry-store-${backend.name}-`));
      mkdirSync(join(root, "in"));
    });
    afterAll(() => rmSync(root, { recursive: true, force: true }));

    /** store with keys 0..999 in two files: [0,500) snappy, [500,1000) uncompressed */
    async function loaded(): Promise<{ store: VersionStore; dir: string; files: string[] }> {
      const dir = fresh();
      const store = await backend.open(dir, "ds", "v1");
      const a = input("a.sst");
      const b = input("b.sst");
      await buildSst(a, range(0, 500), { compression: "snappy" });
      await buildSst(b, range(500, 1000), { compression: "none" });
      await store.ingest([a, b]);
      return { store, dir, files: [a, b] };
    }

    it("ingests core/sst files (moved in) and answers gets: present, absent, first, last, between files", async () => {
      const { store, files } = await loaded();
      try {
        for (const f of files) expect(existsSync(f), `${f} moved into the store`).toBe(false);
        expect(str(await store.get(key(0)))).toBe(str(val(0)));
        expect(str(await store.get(key(999)))).toBe(str(val(999)));
        expect(str(store.getSync(key(499)))).toBe(str(val(499)));
        expect(str(store.getSync(key(500)))).toBe(str(val(500)));
        for (let i = 0; i < 1000; i += 37) expect(str(store.getSync(key(i)))).toBe(str(val(i)));
        expect(await store.get(key(1000))).toBeUndefined(); // after the last
        expect(await store.get(Buffer.from("a"))).toBeUndefined(); // before the first
        expect(await store.get(Buffer.from("key-000499x"))).toBeUndefined(); // between files
        expect(await store.get(Buffer.from("key-0005"))).toBeUndefined(); // prefix of a key
        expect(await store.get(Buffer.alloc(0))).toBeUndefined(); // empty key
        const s = store.stats();
        expect(s.backend).toBe(backend.name);
        expect(s.files).toBe(2);
        expect(s.entries).toBeGreaterThanOrEqual(900); // rocksdb: an estimate
        expect(s.entries).toBeLessThanOrEqual(1100);
        expect(s.bytes).toBeGreaterThan(0);
        expect(s.gets).toBeGreaterThanOrEqual(5);
      } finally {
        await store.destroy();
      }
    });

    it("multiGet keeps the order of the keys, with absent keys as undefined", async () => {
      const { store } = await loaded();
      try {
        const keys = [key(999), Buffer.from("nope"), key(0), key(500), key(1234), key(0)];
        const got = await store.multiGet(keys);
        expect(got.map(str)).toEqual([str(val(999)), undefined, str(val(0)), str(val(500)), undefined, str(val(0))]);
        expect(store.multiGetSync([])).toEqual([]);
      } finally {
        await store.destroy();
      }
    });

    it("binary keys and values (0x00, 0xff bytes) round-trip", async () => {
      const dir = fresh();
      const store = await backend.open(dir, "ds", "v1");
      try {
        const entries: [Buffer, Buffer][] = [
          [Buffer.from([0x00]), Buffer.from([0xff, 0x00])],
          [Buffer.from([0x00, 0x00]), Buffer.alloc(0)],
          [Buffer.from([0x7f, 0xff]), Buffer.from([1, 2, 3])],
          [Buffer.from([0xff, 0xff, 0xff]), Buffer.alloc(70_000, 7)],
        ];
        const f = input("bin.sst");
        await buildSst(f, entries);
        await store.ingest([f]);
        for (const [k, v] of entries) expect(Buffer.from((await store.get(k))!).equals(v)).toBe(true);
        expect(await store.get(Buffer.from([0x00, 0x01]))).toBeUndefined();
      } finally {
        await store.destroy();
      }
    });

    it("a later ingest that overlaps wins; keys only in the older file stay visible", async () => {
      const { store } = await loaded();
      try {
        const c = input("c.sst");
        await buildSst(c, range(250, 750, "v2"));
        await store.ingest([c]);
        expect(str(await store.get(key(249)))).toBe(str(val(249)));
        expect(str(await store.get(key(250)))).toBe(str(val(250, "v2")));
        expect(str(await store.get(key(749)))).toBe(str(val(749, "v2")));
        expect(str(await store.get(key(750)))).toBe(str(val(750)));
      } finally {
        await store.destroy();
      }
    });

    it("reopens with its data (read-write and read-only); destroy deletes the directory", async () => {
      const { store, dir } = await loaded();
      await store.close();
      await store.close(); // idempotent
      expect(() => store.getSync(key(1))).toThrow(/after close/);
      const again = await backend.open(dir, "ds", "v1");
      expect(str(await again.get(key(777)))).toBe(str(val(777)));
      expect(again.stats().files).toBe(2);
      await again.close();
      const ro = await backend.open(dir, "ds", "v1", { readOnly: true });
      expect(str(ro.getSync(key(3)))).toBe(str(val(3)));
      await ro.close();
      await again.destroy();
      expect(existsSync(dir)).toBe(false);
      await again.destroy(); // idempotent
    });

    it("ingest of an empty list is a no-op", async () => {
      const dir = fresh();
      const store = await backend.open(dir, "ds", "v1");
      try {
        await store.ingest([]);
        expect(await store.get(key(1))).toBeUndefined();
      } finally {
        await store.destroy();
      }
    });

    it("refuses a file that is not an SST (CorruptionError naming it); store and input untouched", async () => {
      const { store } = await loaded();
      try {
        const junk = input("junk.sst");
        writeFileSync(junk, Buffer.alloc(4096, 0x41));
        await expect(store.ingest([junk])).rejects.toMatchObject({ name: "CorruptionError" });
        await expect(store.ingest([junk])).rejects.toThrow(junk);
        expect(existsSync(junk)).toBe(true);
        const trunc = input("trunc.sst");
        await buildSst(trunc, range(2000, 2100));
        const bytes = readFileSync(trunc);
        writeFileSync(trunc, bytes.subarray(0, bytes.length - 20));
        await expect(store.ingest([trunc])).rejects.toMatchObject({ name: "CorruptionError" });
        const missing = input("missing.sst");
        await expect(store.ingest([missing])).rejects.toMatchObject({ name: "NotFoundError" });
        expect(str(await store.get(key(10)))).toBe(str(val(10)));
        expect(store.stats().files).toBe(2);
      } finally {
        await store.destroy();
      }
    });

    it("refuses overlapping files within one ingest call (ValidationError)", async () => {
      const dir = fresh();
      const store = await backend.open(dir, "ds", "v1");
      try {
        const a = input("o1.sst");
        const b = input("o2.sst");
        await buildSst(a, range(0, 100));
        await buildSst(b, range(50, 150));
        await expect(store.ingest([a, b])).rejects.toMatchObject({ name: "ValidationError" });
        expect(existsSync(a) && existsSync(b)).toBe(true);
        expect(await store.get(key(1))).toBeUndefined();
      } finally {
        await store.destroy();
      }
    });

    it("a flipped byte inside a data block is reported as CorruptionError on read, never a crash", async () => {
      const dir = fresh();
      const store = await backend.open(dir, "ds", "v1");
      try {
        const f = input("flip.sst");
        await buildSst(f, range(0, 3000), { compression: "none", bloomBitsPerKey: 0 });
        const bytes = readFileSync(f);
        // the middle of the file is a middle data block (~50 of them, then index/properties at the end): its CRC
        // no longer matches. First and last blocks stay intact (RocksDB and the preflight read those on ingest).
        const at = Math.floor(bytes.length / 2);
        bytes[at] ^= 0x55;
        writeFileSync(f, bytes);
        // the preflight reads footer/properties/index only, so the ingest itself succeeds (RocksDB likewise)
        await store.ingest([f]);
        // find the keys of the broken block: some get in the middle must fail, with a CorruptionError
        const errors: unknown[] = [];
        for (let i = 1000; i < 2000; i++) {
          try {
            store.getSync(key(i));
          } catch (e) {
            errors.push(e);
          }
        }
        expect(errors.length).toBeGreaterThan(0);
        expect(errors.length).toBeLessThan(200); // one block's worth
        expect(errors[0]).toMatchObject({ name: "CorruptionError" });
        expect(str(store.getSync(key(0)))).toBe(str(val(0))); // other blocks still read
        expect(str(store.getSync(key(2999)))).toBe(str(val(2999)));
      } finally {
        await store.destroy();
      }
    });
  });
}
