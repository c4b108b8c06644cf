/**
 * core/sst: RocksDB-compatible SST files (block-based table, format_version 5) written and read in TypeScript.
 *
 * Writer contract: keys strictly ascending bytewise (enforced, InputError naming both keys). `add()` buffers and
 * returns a promise only when the sink needs awaiting:
 *
 *   const p = w.add(k, v); if (p) await p;
 *   const info = await w.finish();   // or: await w.abort() on any failure (removes partial output)
 *
 * Reader: `const r = await SstReader.open(path | source); await r.get(key); for await (const [k, v] of r.scan()) …`.
 * `r.getSync(key)` is a synchronous fast path when the source has readSync (fileSource, bufferSource).
 */
export type {
  BlockHandle,
  ByteSink,
  RandomAccessSource,
  SstCompression,
  SstFileInfo,
  SstFileSetWriterOptions,
  SstProperties,
  SstReaderOptions,
  SstScanOptions,
  SstWriterOptions,
} from "./types.js";
export { bufferSource, fileSink, fileSource, memorySink } from "./sink.js";
export { SstFileSetWriter, SstWriter } from "./writer.js";
export { SstReader } from "./reader.js";
export { xxph3_64 } from "./xxph3.js";
export { crc32c } from "./crc32c.js";
export { compressionStats, warmCompressionWorker } from "./compress-pool.js";
export { maskCrc, unmaskCrc } from "./format.js";
export { shortestSeparator } from "./writer.js";
