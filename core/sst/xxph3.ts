/** XXPH3_64bits (seed 0) as in RocksDB util/xxph3.h. */
export function xxph3_64(_bytes: Uint8Array): bigint {
  throw new Error("not implemented yet");
}
