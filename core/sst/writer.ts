import type { ByteSink, SstFileInfo, SstFileSetWriterOptions, SstWriterOptions } from "./types.js";

/** Streams one SST file into a ByteSink. Memory stays flat: only index entries and bloom hashes are kept. */
export class SstWriter {
  constructor(_sink: ByteSink, _opts: SstWriterOptions = {}) {}
  /** Adds one entry. Returns a promise only when the sink needs awaiting: `const p = w.add(k, v); if (p) await p;` */
  add(_key: Uint8Array, _value: Uint8Array): void | Promise<void> {
    throw new Error("SstWriter: not implemented yet");
  }
  async finish(): Promise<SstFileInfo> {
    throw new Error("SstWriter: not implemented yet");
  }
  async abort(_err?: unknown): Promise<void> {}
}

/** Writes a sorted stream into several SST files, rolling over past targetFileSize (only between keys). */
export class SstFileSetWriter {
  constructor(_openSink: (index: number) => ByteSink | Promise<ByteSink>, _opts: SstFileSetWriterOptions = {}) {}
  add(_key: Uint8Array, _value: Uint8Array): void | Promise<void> {
    throw new Error("SstFileSetWriter: not implemented yet");
  }
  async finish(): Promise<SstFileInfo[]> {
    throw new Error("SstFileSetWriter: not implemented yet");
  }
  async abort(_err?: unknown): Promise<void> {}
}
