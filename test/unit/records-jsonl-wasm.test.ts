import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { jsonlWasmEnabled, makeJsonlMapper } from "../../core/records/jsonl-wasm.js";
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
});
