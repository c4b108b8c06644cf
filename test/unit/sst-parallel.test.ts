/**
 * Parallel block compression (core/sst/compress-pool.ts): a worker thread seals data blocks while the writer builds
 * the next ones. The output must be byte-identical to sealing on the writer's own thread, whatever the timing.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { build as esbuild } from "esbuild";
import { beforeAll, describe, expect, it } from "vitest";
import { InputError } from "../../core/errors.js";
import { compressionStats, warmCompressionWorker } from "../../core/sst/compress-pool.js";
import {
  bufferSource,
  memorySink,
  SstFileSetWriter,
  SstReader,
  SstWriter,
  type SstCompression,
  type SstWriterOptions,
} from "../../core/sst/index.js";

const te = new TextEncoder();
const k = (i: number) => te.encode(`key${String(i).padStart(9, "0")}`);
/** ~2x compressible values; every 997th is 20 KiB (outgrows a ring slot: sealed on the writer's thread) */
function v(i: number): Uint8Array {
  const n = i % 997 === 500 ? 20_000 : 40 + (i % 60);
  const b = new Uint8Array(n);
  let x = (i * 2654435761) >>> 0 || 1;
  for (let j = 0; j < n; j++) {
    if (j % 2 === 0) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      b[j] = x & 0xff;
    } else b[j] = 97 + (j % 7);
  }
  return b;
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const multiCore = availableParallelism() > 1 && process.env.FERRY_SST_COMPRESSION_THREADS !== "0";

async function build(n: number, opts: SstWriterOptions): Promise<Uint8Array> {
  const sink = memorySink();
  const w = new SstWriter(sink, { sessionIdentity: false, ...opts });
  for (let i = 0; i < n; i++) {
    const p = w.add(k(i), v(i));
    if (p) await p;
  }
  await w.finish();
  return sink.bytes();
}

beforeAll(async () => {
  // boot a worker up front so the writers below attach one as soon as their ring fills
  expect(await warmCompressionWorker()).toBe(multiCore);
});

describe("parallel compression", () => {
  it.each(["none", "snappy", "lz4", "zstd"] as SstCompression[])(
    "%s: byte-identical with and without the worker, and readable",
    async (c) => {
      const before = compressionStats();
      const par = await build(30_000, { compression: c, parallelCompression: true });
      const mid = compressionStats();
      const seq = await build(30_000, { compression: c, parallelCompression: false });
      const after = compressionStats();
      expect(sha(par)).toBe(sha(seq));
      if (multiCore) expect(mid.workerBlocks - before.workerBlocks).toBeGreaterThan(100);
      expect(after.workerBlocks).toBe(mid.workerBlocks);
      const r = await SstReader.open(bufferSource(par, `par-${c}`));
      expect(r.entries).toBe(30_000);
      expect(await r.verify()).toMatchObject({ entries: 30_000 });
      for (const i of [0, 1, 500, 1497, 17_000, 29_999]) {
        expect(Buffer.from(r.getSync(k(i)) as Uint8Array).equals(Buffer.from(v(i)))).toBe(true);
      }
    },
    60_000,
  );

  it("the bloom filter (hashed per block, on the worker) equals the one hashed key by key (no compression)", async () => {
    const filterOf = async (bytes: Uint8Array) => {
      const r = await SstReader.open(bufferSource(bytes));
      const h = r.metaBlocks.get("fullfilter.rocksdb.BuiltinBloomFilter");
      if (!h) throw new Error("no filter block");
      return sha(bytes.subarray(h.offset, h.offset + h.size + 5));
    };
    const plain = await filterOf(await build(30_000, { compression: "none" }));
    expect(await filterOf(await build(30_000, { compression: "snappy", parallelCompression: true }))).toBe(plain);
    expect(await filterOf(await build(30_000, { compression: "lz4", parallelCompression: false }))).toBe(plain);
  }, 60_000);

  it.each(["snappy", "none"] as SstCompression[])(
    "%s: file sets roll over at the same keys with and without the worker",
    async (c) => {
      const write = async (parallelCompression: boolean) => {
        const files: ReturnType<typeof memorySink>[] = [];
        const w = new SstFileSetWriter(
          () => {
            const s = memorySink();
            files.push(s);
            return s;
          },
          { compression: c, targetFileSize: 300_000, sessionIdentity: false, parallelCompression },
        );
        for (let i = 0; i < 25_000; i++) {
          const p = w.add(k(i), v(i));
          if (p) await p;
        }
        const infos = await w.finish();
        return { infos, shas: files.map((f) => sha(f.bytes())) };
      };
      const a = await write(true);
      const b = await write(false);
      expect(a.infos.length).toBeGreaterThan(3);
      expect(a.shas).toEqual(b.shas);
      expect(a.infos.map((f) => f.entries)).toEqual(b.infos.map((f) => f.entries));
      expect(a.infos.map((f) => f.sha256)).toEqual(a.shas);
    },
    60_000,
  );

  it("two writers interleaved share the pool and still write the same bytes", async () => {
    const s1 = memorySink();
    const s2 = memorySink();
    const w1 = new SstWriter(s1, { compression: "snappy", sessionIdentity: false });
    const w2 = new SstWriter(s2, { compression: "lz4", sessionIdentity: false });
    for (let i = 0; i < 20_000; i++) {
      const p1 = w1.add(k(i), v(i));
      if (p1) await p1;
      const p2 = w2.add(k(i), v(i));
      if (p2) await p2;
    }
    await Promise.all([w1.finish(), w2.finish()]);
    expect(sha(s1.bytes())).toBe(sha(await build(20_000, { compression: "snappy", parallelCompression: false })));
    expect(sha(s2.bytes())).toBe(sha(await build(20_000, { compression: "lz4", parallelCompression: false })));
  }, 60_000);

  it("a writer that fails mid-way releases its worker to the next one", async () => {
    const w = new SstWriter(memorySink(), { compression: "snappy" });
    for (let i = 0; i < 20_000; i++) {
      const p = w.add(k(i), v(i));
      if (p) await p;
    }
    expect(() => w.add(k(5), v(5))).toThrow(InputError);
    await w.abort();
    const before = compressionStats();
    await build(20_000, { compression: "snappy" });
    if (multiCore) expect(compressionStats().workerBlocks - before.workerBlocks).toBeGreaterThan(100);
  }, 60_000);

  it("lz4 on the writer's thread yields an event-loop turn now and then (native buffers get freed)", async () => {
    const w = new SstWriter(memorySink(), { compression: "lz4", parallelCompression: false });
    let promises = 0;
    for (let i = 0; i < 30_000; i++) {
      const p = w.add(k(i), v(i));
      if (p) {
        promises++;
        await p;
      }
    }
    await w.finish();
    expect(promises).toBeGreaterThan(0);
  }, 60_000);

  it("works from a minified keepNames bundle (how Lambda functions ship): worker used, same bytes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ferry-sst-bundle-"));
    try {
      const root = resolve(import.meta.dirname, "../..");
      const entry = join(dir, "entry.ts");
      writeFileSync(
        entry,
        `import { createHash } from "node:crypto";
import { memorySink, SstWriter } from ${JSON.stringify(join(root, "core/sst/index.ts"))};
import { compressionStats, warmCompressionWorker } from ${JSON.stringify(join(root, "core/sst/compress-pool.ts"))};
const warm = await warmCompressionWorker();
const s = memorySink();
const w = new SstWriter(s, { compression: "snappy", sessionIdentity: false });
const te = new TextEncoder();
for (let i = 0; i < 30000; i++) {
  const p = w.add(te.encode("key" + String(i).padStart(9, "0")), te.encode("value-" + i + "-" + "x".repeat(i % 40)));
  if (p) await p;
}
await w.finish();
console.log(JSON.stringify({ warm, sha: createHash("sha256").update(s.bytes()).digest("hex"), ...compressionStats() }));
`,
      );
      const out = join(dir, "out.mjs");
      // the native codecs stay external (as in the Lambda bundles, where the layer provides them)
      symlinkSync(join(root, "node_modules"), join(dir, "node_modules"));
      await esbuild({
        entryPoints: [entry],
        outfile: out,
        bundle: true,
        platform: "node",
        format: "esm",
        target: "node20",
        minify: true,
        keepNames: true,
        external: ["snappy", "lz4-napi", "zstd-napi", "@node-rs/crc32", "@node-rs/xxhash"],
        banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
        logLevel: "silent",
      });
      const r = spawnSync(process.execPath, [out], {
        encoding: "utf8",
        env: { ...process.env, NODE_OPTIONS: "" },
      });
      expect(r.status, r.stderr).toBe(0);
      const got = JSON.parse(r.stdout.trim().split("\n").pop() as string);
      const sink = memorySink();
      const w = new SstWriter(sink, { compression: "snappy", sessionIdentity: false, parallelCompression: false });
      for (let i = 0; i < 30000; i++) {
        const p = w.add(te.encode(`key${String(i).padStart(9, "0")}`), te.encode(`value-${i}-${"x".repeat(i % 40)}`));
        if (p) await p;
      }
      await w.finish();
      expect(got.sha).toBe(sha(sink.bytes()));
      expect(got.warm).toBe(multiCore);
      if (multiCore) expect(got.workerBlocks).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
