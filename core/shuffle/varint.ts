/** Unsigned LEB128 varints (as in RocksDB/protobuf), for numbers up to 2^53. */
export function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

/** Writes `n` at `pos`, returns the new position. */
export function writeVarint(buf: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/** Reads a varint at `pos`; returns [value, newPos] or undefined when the bytes end first. */
export function readVarint(buf: Uint8Array, pos: number, end: number): [number, number] | undefined {
  let result = 0;
  let mul = 1;
  for (let i = 0; i < 8; i++) {
    if (pos >= end) return undefined;
    const b = buf[pos++];
    result += (b & 0x7f) * mul;
    if (b < 0x80) return [result, pos];
    mul *= 128;
  }
  throw new RangeError("varint longer than 8 bytes");
}
