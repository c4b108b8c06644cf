import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { BloomBuilder } from "../../core/sst/bloom.js";
import { makeBloomBuilder, sstWasmEnabled, WasmBloomBuilder, wasmXxph3 } from "../../core/sst/bloom-wasm.js";
import { memorySink, SstWriter, type SstCompression } from "../../core/sst/index.js";
import { xxph3_64, xxph3_64Parts } from "../../core/sst/xxph3.js";
import { compile, generated, outPath } from "../../wasm/sst-bloom/build.mjs";

/**
 * The WebAssembly bloom filter builder (core/sst/bloom-wasm.ts, wasm/sst-bloom) gives the same hashes and filter
 * bytes as the JS BloomBuilder, and SST files byte-identical to the JS path (FERRY_SST_WASM=0). The filters
 * themselves are checked against RocksDB in test/interop/sst-rocksdb.test.ts.
 */
const saved = process.env.FERRY_SST_WASM;
afterEach(() => {
  if (saved === undefined) delete process.env.FERRY_SST_WASM;
  else process.env.FERRY_SST_WASM = saved;
});

describe("SST bloom filter in WebAssembly", () => {
  it("the committed module equals a fresh build of wasm/sst-bloom (node wasm/sst-bloom/build.mjs)", async () => {
    const wasm = await compile();
    expect(readFileSync(outPath, "utf8")).toBe(generated(wasm));
    expect((await compile()).equals(wasm)).toBe(true);
  }, 60_000);

  it("FERRY_SST_WASM=0 gives the JS builder, otherwise the WebAssembly one", () => {
    process.env.FERRY_SST_WASM = "0";
    expect(sstWasmEnabled()).toBe(false);
    expect(makeBloomBuilder(10)).toBeInstanceOf(BloomBuilder);
    delete process.env.FERRY_SST_WASM;
    expect(sstWasmEnabled()).toBe(true);
    expect(makeBloomBuilder(10)).toBeInstanceOf(WasmBloomBuilder);
  });

  it("XXPH3: RocksDB's vectors for every code path", () => {
    const vectors = JSON.parse(
      readFileSync(join(import.meta.dirname, "../fixtures/sst/xxph3-vectors.json"), "utf8"),
    ) as Array<{ len: number; xxph3_64: string }>;
    for (const { len, xxph3_64: expected } of vectors) {
      const b = new Uint8Array(len);
      for (let i = 0; i < len; i++) b[i] = (i * 31 + len * 7 + 1) & 0xff;
      expect((wasmXxph3(b) as bigint).toString(16).padStart(16, "0")).toBe(expected);
    }
  });

  it("XXPH3: same as core/sst/xxph3.ts for any bytes (property)", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 20 }),
          fc.uint8Array({ maxLength: 300 }),
          fc.uint8Array({ maxLength: 2500 }),
        ),
        (b) => {
          expect(wasmXxph3(b)).toBe(xxph3_64(b));
        },
      ),
      { numRuns: 500 },
    );
  });

  it("add, addHashes: the same filter bytes as BloomBuilder, adjacent duplicates collapsed (property)", () => {
    const key = fc.oneof(fc.uint8Array({ maxLength: 24 }), fc.uint8Array({ maxLength: 300 }));
    fc.assert(
      fc.property(
        fc.array(key, { maxLength: 300 }),
        fc.integer({ min: 0, max: 300 }),
        fc.constantFrom(1, 5, 10, 16.5, 25),
        (keys, split, bits) => {
          // repeats next to each other (collapse) and apart (kept)
          const all = keys.flatMap((k, i) => (i % 7 === 3 ? [k, k] : [k]));
          const js = new BloomBuilder(bits);
          const wasm = new WasmBloomBuilder(bits);
          const cut = Math.min(split, all.length);
          for (const k of all.slice(0, cut)) {
            js.add(k, 0, k.length);
            wasm.add(k, 0, k.length);
          }
          // the rest as precomputed hashes (the ring's path)
          const rest = all.slice(cut);
          const h = new Uint32Array(2 * rest.length + 2);
          const t = new Uint32Array(2);
          rest.forEach((k, i) => {
            xxph3_64Parts(k, 0, k.length, t);
            h[2 + 2 * i] = t[0];
            h[3 + 2 * i] = t[1];
          });
          js.addHashes(h, 2, rest.length);
          wasm.addHashes(h, 2, rest.length);
          expect(wasm.entries).toBe(js.entries);
          expect(Buffer.from(wasm.finish()).equals(Buffer.from(js.finish()))).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("a file of 300,000 keys (the module's memory grows many times): same bytes as FERRY_SST_WASM=0", async () => {
    const te = new TextEncoder();
    const write = async (wasm: boolean) => {
      process.env.FERRY_SST_WASM = wasm ? "1" : "0";
      const sink = memorySink();
      const w = new SstWriter(sink, { sessionIdentity: false });
      for (let i = 0; i < 300_000; i++) {
        const p = w.add(te.encode(`user-${(i * 7919).toString(36).padStart(8, "0")}-${i}`), te.encode(`v${i}`));
        if (p) await p;
      }
      await w.finish();
      return Buffer.from(sink.bytes());
    };
    const a = await write(false);
    expect((await write(true)).equals(a)).toBe(true);
  }, 60_000);

  it("SST files are byte-identical with FERRY_SST_WASM=0 (keys hashed per block; ring and big blocks) (property)", async () => {
    const entry = fc.tuple(
      fc.oneof(fc.uint8Array({ minLength: 0, maxLength: 20 }), fc.uint8Array({ maxLength: 200 })),
      fc.oneof(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 3000 })),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(entry, { minLength: 1, maxLength: 400 }),
        fc.constantFrom(64, 256, 4096),
        fc.constantFrom<SstCompression>("none", "snappy"),
        fc.boolean(),
        async (entries, blockSize, compression, parallel) => {
          // sorted, unique keys; keys that are prefixes of the next one are common
          const byKey = new Map<string, [Uint8Array, Uint8Array]>();
          for (const [k, v] of entries) {
            byKey.set(Buffer.from(k).toString("hex"), [k, v]);
            const ext = Buffer.concat([k, Buffer.from([0, 1])]);
            byKey.set(ext.toString("hex"), [ext, v]);
          }
          const sorted = [...byKey.values()].sort((a, b) => Buffer.compare(a[0], b[0]));
          const write = async (wasm: boolean) => {
            process.env.FERRY_SST_WASM = wasm ? "1" : "0";
            const sink = memorySink();
            const w = new SstWriter(sink, {
              blockSize,
              compression,
              parallelCompression: parallel,
              sessionIdentity: false,
            });
            for (const [k, v] of sorted) {
              const p = w.add(k, v);
              if (p) await p;
            }
            await w.finish();
            return Buffer.from(sink.bytes());
          };
          const a = await write(false);
          const b = await write(true);
          expect(b.equals(a)).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  }, 120_000);
});
