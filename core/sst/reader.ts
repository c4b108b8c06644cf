import type { RandomAccessSource, SstProperties, SstReaderOptions, SstScanOptions } from "./types.js";

export class SstReader {
  readonly properties: SstProperties = {};
  readonly entries: number = 0;
  readonly smallestKey: Uint8Array = new Uint8Array(0);
  readonly largestKey: Uint8Array = new Uint8Array(0);
  static async open(_src: RandomAccessSource | string, _opts: SstReaderOptions = {}): Promise<SstReader> {
    throw new Error("SstReader: not implemented yet");
  }
  async get(_key: Uint8Array): Promise<Uint8Array | undefined> {
    throw new Error("not implemented yet");
  }
  /** synchronous point get (source must have readSync) */
  getSync(_key: Uint8Array): Uint8Array | undefined {
    throw new Error("not implemented yet");
  }
  // biome-ignore lint/correctness/useYield: stub
  async *scan(_opts: SstScanOptions = {}): AsyncIterable<[Uint8Array, Uint8Array]> {
    throw new Error("not implemented yet");
  }
  /** Reads every block and checks its checksum; throws CorruptionError naming the block offset and checksums. */
  async verify(): Promise<void> {}
  async close(): Promise<void> {}
}
