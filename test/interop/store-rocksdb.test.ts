/**
 * The shared store suite on real RocksDB (librocksdb through koffi). Skips loudly when librocksdb is missing,
 * never under CI=true.
 */
import { describe, expect, it } from "vitest";
import { openBackend } from "../../host/store/index.js";
import { RocksDb, rocksdbBackend } from "../../host/store/rocksdb.js";
import { storeSuite } from "./store-suite.js";

const why = rocksdbBackend.available();
const missing = why !== true;
if (missing && process.env.CI !== "true") {
  process.stderr.write(`\n*** SKIPPING RocksDB store interop tests: ${why} ***\n\n`);
}

describe("rocksdb backend availability", () => {
  it("librocksdb is loadable (required under CI=true)", () => {
    if (missing && process.env.CI !== "true") return;
    expect(why).toBe(true);
    expect(openBackend().name).toBe("rocksdb");
    expect(openBackend("rocksdb").name).toBe("rocksdb");
    expect(openBackend("sst").name).toBe("sst");
    expect(() => openBackend("leveldb")).toThrow(/unknown store backend/);
  });
});

if (!missing || process.env.CI === "true") storeSuite(rocksdbBackend);

describe.skipIf(missing && process.env.CI !== "true")("rocksdb write path (used by bench serving)", () => {
  it("WriteBatch with WAL, flush, compactions settle, reads back", async () => {
    const { mkdtempSync, rmSync, readdirSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const dir = mkdtempSync(join(tmpdir(), "ferry-rocks-write-"));
    const db = await RocksDb.open(dir);
    try {
      const b = db.newBatch();
      for (let i = 0; i < 2000; i++) b.put(Buffer.from(`k${i}`), Buffer.from(`v${i}`));
      expect(b.count).toBe(2000);
      await db.write(b);
      b.clear();
      expect(b.count).toBe(0);
      b.destroy();
      expect(readdirSync(dir).some((f) => f.endsWith(".log"))).toBe(true); // WAL on
      await db.flush();
      await db.waitForCompactions({ timeoutMs: 30_000 });
      expect(db.backgroundIdle()).toBe(true);
      expect(db.propertyInt("rocksdb.num-files-at-level0")).toBeGreaterThanOrEqual(1);
      expect(Buffer.from(db.getSync(Buffer.from("k1999"))!).toString()).toBe("v1999");
      expect(db.property("rocksdb.stats")).toMatch(/Compaction Stats/);
      await db.compactAll();
    } finally {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(missing && process.env.CI !== "true")("rocksdb version store with one ingest per shard", () => {
  it("8 hash-sharded (overlapping) ingests: every key readable, no compaction scheduled", async () => {
    const { mkdtempSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { shardOf } = await import("../../core/shuffle/shard.js");
    const { buildSst } = await import("./store-suite.js");
    const root = mkdtempSync(join(tmpdir(), "ferry-rocks-shards-"));
    const store = (await rocksdbBackend.open(
      join(root, "db"),
      "ds",
      "v1",
    )) as import("../../host/store/rocksdb.js").RocksVersionStore;
    try {
      const shards = 8;
      const keys = Array.from({ length: 4000 }, (_, i) => Buffer.from(`k${i}`));
      for (let s = 0; s < shards; s++) {
        const mine = keys.filter((k) => shardOf(k, shards) === s).sort(Buffer.compare);
        const f = join(root, `shard-${s}.sst`);
        await buildSst(
          f,
          mine.map((k) => [k, Buffer.concat([Buffer.from("v-"), k])]),
        );
        await store.ingest([f]);
      }
      for (const k of keys) expect(Buffer.from(store.getSync(k)!).toString()).toBe(`v-${k}`);
      expect(store.stats().files).toBe(shards);
      expect(store.rocks.propertyInt("rocksdb.compaction-pending")).toBe(0);
      expect(store.rocks.propertyInt("rocksdb.num-running-compactions")).toBe(0);
    } finally {
      await store.destroy();
      rmSync(root, { recursive: true, force: true });
    }
  });
});
