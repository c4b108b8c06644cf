import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { makeRangeRouter } from "../../core/pipeline/sample.js";
import { jsonlWasmEnabled, makeJsonlMapper, makeWasmJsonlMapper } from "../../core/records/jsonl-wasm.js";
import { compile, generated, outPath } from "../../wasm/jsonl-scan/build.mjs";

/**
 * The committed WebAssembly scanner (core/records/wasm/jsonl-scan.gen.ts) is what its AssemblyScript source
 * compiles to (`npm run build:wasm`), and FERRY_JSONL_WASM=0 gives the JS mapper. Its behaviour is property-tested
 * in records-jsonl-fast.test.ts and partition-jsonl-fast.test.ts.
 */
describe("JSONL WebAssembly scanner", () => {
  it("the committed module equals a fresh build of wasm/jsonl-scan (run `npm run build:wasm`)", async () => {
    const wasm = await compile();
    expect(readFileSync(outPath, "utf8")).toBe(generated(wasm));
    // asc output is deterministic: a second build gives the same bytes
    expect((await compile()).equals(wasm)).toBe(true);
  }, 60_000);

  it("FERRY_JSONL_WASM=0 gives the JS mapper, otherwise the WebAssembly one", () => {
    const saved = process.env.FERRY_JSONL_WASM;
    try {
      process.env.FERRY_JSONL_WASM = "0";
      expect(jsonlWasmEnabled()).toBe(false);
      expect(makeJsonlMapper({ key: ["id"] })).not.toHaveProperty("arena");
      delete process.env.FERRY_JSONL_WASM;
      expect(jsonlWasmEnabled()).toBe(true);
      const m = makeJsonlMapper({ key: ["id"] }, 1024);
      expect(m).toHaveProperty("arena");
      expect((m as { arena: Uint8Array }).arena.length).toBeGreaterThanOrEqual(1024);
      expect(makeJsonlMapper({ key: ["valueOf"] })).toBeUndefined();
    } finally {
      if (saved === undefined) delete process.env.FERRY_JSONL_WASM;
      else process.env.FERRY_JSONL_WASM = saved;
    }
  });

  it("routes keys as makeRangeRouter: murmur3_32 shard, then the shard's lower bounds (property)", () => {
    const bytes = fc.uint8Array({ maxLength: 40 });
    // keys often share prefixes with the bounds (equal, one a prefix of the other, 8-byte words equal)
    const nearKey = (bounds: Uint8Array[]) =>
      fc.oneof(
        bytes,
        fc
          .tuple(fc.constantFrom(...bounds), fc.integer({ min: 0, max: 40 }), fc.uint8Array({ maxLength: 3 }))
          .map(([b, cut, tail]) => Buffer.concat([b.subarray(0, cut), tail])),
      );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }),
        fc.array(fc.tuple(fc.nat(), bytes), { maxLength: 40 }),
        (shards, extra) => {
          // one open bucket per shard plus split points; bucket indexes as chooseBuckets gives them, shuffled
          const lists: Uint8Array[][] = Array.from({ length: shards }, () => [new Uint8Array(0)]);
          for (const [s, k] of extra) {
            const l = lists[s % shards];
            if (k.length > 0 && !l.some((x) => Buffer.compare(x, k) === 0)) l.push(k);
          }
          const buckets = lists
            .flatMap((l, shard) => l.map((k) => ({ shard, lowerKey: Buffer.from(k).toString("hex") })))
            .map((b, index) => ({ ...b, id: `b${index}`, index, upperKey: "" }))
            .reverse();
          const want = makeRangeRouter(buckets, shards);
          const m = makeWasmJsonlMapper({ key: ["id"] }, 1024, undefined, { buckets, shards });
          if (!m?.route) throw new Error("no WebAssembly router");
          const route = m.route;
          const all = lists.flat();
          fc.assert(
            fc.property(nearKey(all.length > 1 ? all : [new Uint8Array([1, 2, 3])]), fc.nat(5), (key, off) => {
              const buf = Buffer.concat([Buffer.alloc(off, 7), key, Buffer.alloc(3, 9)]);
              expect(route(buf, off, off + key.length)).toBe(want(buf, off, off + key.length));
            }),
            { numRuns: 50 },
          );
        },
      ),
      { numRuns: 60 },
    );
  });
});
