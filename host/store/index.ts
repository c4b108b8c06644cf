/**
 * Per-version stores for serving hosts. `openBackend()` picks "rocksdb" when librocksdb loads here, else "sst"
 * (the embedded default). Asking for "rocksdb" explicitly where it is missing is an EnvironmentError that says
 * how to install it.
 *
 *   const backend = openBackend(opts.store);          // "rocksdb" | "sst" | undefined (auto)
 *   const store = await backend.open(dir, dataset, version);
 *   await store.ingest(verifiedFiles);                 // moved in (same filesystem)
 *   const v = store.getSync(key);                      // or await store.get(key) / store.multiGet(keys)
 *   await store.destroy();                             // retire: close + delete the directory
 */
import { ConfigError, EnvironmentError } from "../../core/errors.js";
import { rocksdbBackend } from "./rocksdb.js";
import { sstBackend } from "./sst-store.js";
import type { BackendName, StoreBackend } from "./types.js";

export type { BackendName, Bytes, OpenOptions, StoreBackend, StoreStats, VersionStore } from "./types.js";
export { rocksdbBackend, RocksDb, RocksWriteBatch } from "./rocksdb.js";
export { sstBackend } from "./sst-store.js";
export { preflightSstFiles, type SstFileCheck } from "./preflight.js";

export const BACKENDS: readonly BackendName[] = ["rocksdb", "sst"];

/** The backend to use: `name` if given (EnvironmentError when it cannot run here), else rocksdb when available. */
export function openBackend(name?: BackendName | string): StoreBackend {
  if (name === undefined || name === "" || name === "auto") {
    return rocksdbBackend.available() === true ? rocksdbBackend : sstBackend;
  }
  if (name === "sst") return sstBackend;
  if (name === "rocksdb") {
    const why = rocksdbBackend.available();
    if (why !== true) throw new EnvironmentError(`store backend "rocksdb" is not available: ${why}. Use --store sst.`);
    return rocksdbBackend;
  }
  throw new ConfigError(`unknown store backend ${JSON.stringify(name)}: use rocksdb or sst`, { field: "store" });
}
