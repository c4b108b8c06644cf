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

/** where the last decodeVarint() ended (module-level scratch: no array per decoded number) */
export const varintEnd = { pos: 0 };

/**
 * readVarint without allocation: returns the value and leaves the position after it in `varintEnd.pos`, or returns -1
 * when the bytes end first. One-byte varints (the common case for lengths < 128) take one branch.
 */
export function decodeVarint(buf: Uint8Array, pos: number, end: number): number {
  if (pos >= end) return -1;
  let b = buf[pos++];
  if (b < 0x80) {
    varintEnd.pos = pos;
    return b;
  }
  let result = b & 0x7f;
  let mul = 128;
  for (let i = 1; i < 8; i++) {
    if (pos >= end) return -1;
    b = buf[pos++];
    result += (b & 0x7f) * mul;
    if (b < 0x80) {
      varintEnd.pos = pos;
      return result;
    }
    mul *= 128;
  }
  throw new RangeError("varint longer than 8 bytes");
}
