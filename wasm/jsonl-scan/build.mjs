// Builds the WebAssembly JSONL scanner (wasm/jsonl-scan/assembly/index.ts) into core/records/wasm/jsonl-scan.gen.ts:
// `npm run build:wasm` (see wasm/module.mjs).
import { fileURLToPath } from "node:url";
import { root, wasmModule } from "../module.mjs";

export { root };
export const { outPath, compile, generated, build } = wasmModule({
  name: "jsonl-scan",
  out: "core/records/wasm/jsonl-scan.gen.ts",
  constName: "JSONL_SCAN_WASM_BASE64",
  test: "test/unit/records-jsonl-wasm.test.ts",
});

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await build();
