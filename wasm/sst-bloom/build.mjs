// Builds the SST writer's WebAssembly bloom filter builder (wasm/sst-bloom/assembly/index.ts) into
// core/sst/wasm/sst-bloom.gen.ts: `npm run build:wasm` (see wasm/module.mjs).
import { fileURLToPath } from "node:url";
import { root, wasmModule } from "../module.mjs";

export { root };
export const { outPath, compile, generated, build } = wasmModule({
  name: "sst-bloom",
  out: "core/sst/wasm/sst-bloom.gen.ts",
  constName: "SST_BLOOM_WASM_BASE64",
  test: "test/unit/sst-bloom-wasm.test.ts",
});

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await build();
