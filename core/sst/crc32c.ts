/** CRC32c (Castagnoli), via @node-rs/crc32 (SIMD / SSE4.2 native). `initial` continues a previous CRC. */
import { crc32c as native } from "@node-rs/crc32";

export function crc32c(bytes: Uint8Array, initial = 0): number {
  return native(bytes, initial) >>> 0;
}
