/** CRC32c (Castagnoli). */
export function crc32c(_bytes: Uint8Array, _initial = 0): number {
  throw new Error("not implemented yet");
}
