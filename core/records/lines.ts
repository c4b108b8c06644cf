/**
 * Line splitting over a byte stream with byte-range ownership: a chunk [start, end) owns the lines that START inside
 * it. Reading starts at start-1 (when start > 0) and skips through the first '\n' (so a line starting exactly at
 * `start` is kept), and goes past `end` only to finish the last owned line.
 */
import { InputError } from "../errors.js";

export interface RawLine {
  /** the line's bytes without '\n' (a trailing '\r' is kept: callers trim it) */
  bytes: Buffer;
  /** absolute byte offset of the line's first byte */
  offset: number;
}

/**
 * Skips the partial first line when `skipPartial` (reading began at start-1): returns the remaining pieces and the
 * absolute offset of the first byte they carry. When no '\n' is found the stream is exhausted and `rest` is empty.
 */
export async function skipPartialLine(
  pieces: AsyncIterable<Uint8Array>,
  readStart: number,
  skipPartial: boolean,
): Promise<{ offset: number; rest: AsyncIterable<Uint8Array> }> {
  const it = pieces[Symbol.asyncIterator]();
  let offset = readStart;
  let first: Uint8Array | undefined;
  if (skipPartial) {
    for (;;) {
      const r = await it.next();
      if (r.done) return { offset, rest: emptyIterable() };
      const piece = r.value;
      const nl = piece.indexOf(10);
      if (nl < 0) {
        offset += piece.length;
        continue;
      }
      offset += nl + 1;
      first = piece.subarray(nl + 1);
      break;
    }
  }
  const head = first;
  return {
    offset,
    rest: {
      [Symbol.asyncIterator]() {
        let pending = head && head.length > 0 ? head : undefined;
        return {
          async next() {
            if (pending) {
              const v = pending;
              pending = undefined;
              return { done: false, value: v };
            }
            return it.next();
          },
          async return() {
            await it.return?.();
            return { done: true, value: undefined };
          },
        };
      },
    },
  };
}

function emptyIterable(): AsyncIterable<Uint8Array> {
  return { [Symbol.asyncIterator]: () => ({ next: async () => ({ done: true, value: undefined }) }) };
}

/** Splits pieces (starting at a line start, absolute offset `offset`) into lines. */
export async function* splitLines(
  pieces: AsyncIterable<Uint8Array>,
  offset: number,
  maxLineBytes: number,
  source: string,
): AsyncIterable<RawLine> {
  let carry: Buffer[] = [];
  let carryLen = 0;
  let lineStart = offset;
  let pos = offset;
  for await (const p of pieces) {
    const piece = Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.length);
    let from = 0;
    for (;;) {
      const nl = piece.indexOf(10, from);
      if (nl < 0) break;
      let bytes: Buffer;
      if (carryLen > 0) {
        carry.push(piece.subarray(from, nl));
        bytes = Buffer.concat(carry, carryLen + nl - from);
        carry = [];
        carryLen = 0;
      } else bytes = piece.subarray(from, nl);
      yield { bytes, offset: lineStart };
      from = nl + 1;
      lineStart = pos + from;
    }
    if (from < piece.length) {
      carry.push(piece.subarray(from));
      carryLen += piece.length - from;
      if (carryLen > maxLineBytes) {
        throw new InputError(
          `${source} byte ${lineStart}: a line is longer than ${maxLineBytes} bytes (no newline found); is this really line-delimited text?`,
          { source, offset: lineStart },
        );
      }
    }
    pos += piece.length;
  }
  if (carryLen > 0) yield { bytes: Buffer.concat(carry, carryLen), offset: lineStart };
}

/**
 * The callback form of splitLines for hot loops: calls `onLine(buf, start, end)` for every line of `pieces` (which
 * begin at a line start, absolute offset `offset`), synchronously within each piece, without a view or a promise per
 * line. `buf[start, end)` is the line without its '\n' (a trailing '\r' is kept); `buf` is a plain Uint8Array (its
 * subarray() is cheaper than a Buffer's), valid only during the call. Stops before the first line that starts at or
 * past `stopAt`, or after a call that returns true (the rest of the stream is not read).
 */
export async function scanLines(
  pieces: AsyncIterable<Uint8Array>,
  offset: number,
  stopAt: number,
  maxLineBytes: number,
  source: string,
  onLine: (buf: Uint8Array, start: number, end: number) => unknown,
): Promise<void> {
  let carry: Buffer[] = [];
  let carryLen = 0;
  let lineStart = offset;
  let pos = offset;
  const u8 = (b: Buffer) => new Uint8Array(b.buffer, b.byteOffset, b.length);
  for await (const p of pieces) {
    const piece = Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.length);
    const view = u8(piece);
    let from = 0;
    if (carryLen > 0) {
      const nl = piece.indexOf(10);
      if (nl >= 0) {
        if (lineStart >= stopAt) return;
        carry.push(piece.subarray(0, nl));
        const joined = Buffer.concat(carry, carryLen + nl);
        carry = [];
        carryLen = 0;
        if (onLine(u8(joined), 0, joined.length) === true) return;
        from = nl + 1;
        lineStart = pos + from;
      }
    }
    if (carryLen === 0) {
      for (;;) {
        const nl = piece.indexOf(10, from);
        if (nl < 0) break;
        if (lineStart >= stopAt) return;
        if (onLine(view, from, nl) === true) return;
        from = nl + 1;
        lineStart = pos + from;
      }
    }
    if (from < piece.length) {
      if (lineStart >= stopAt) return;
      carry.push(from === 0 ? piece : piece.subarray(from));
      carryLen += piece.length - from;
      if (carryLen > maxLineBytes) {
        throw new InputError(
          `${source} byte ${lineStart}: a line is longer than ${maxLineBytes} bytes (no newline found); is this really line-delimited text?`,
          { source, offset: lineStart },
        );
      }
    }
    pos += piece.length;
  }
  if (carryLen > 0 && lineStart < stopAt) {
    const joined = Buffer.concat(carry, carryLen);
    onLine(u8(joined), 0, joined.length);
  }
}

/** Where scanLinesStaged copies the input: buf[start, start + size) (size > maxLineBytes + 1 MiB). */
export interface LineStage {
  buf: Uint8Array;
  start: number;
  size: number;
}

/**
 * A consumer of many lines in one call (scanLinesStaged): takes complete lines of buf from `from` on, one after
 * another, none that starts at or after `stop` and none whose '\n' is not before `end`, and returns where it
 * stopped: the start of the first line it did not take (`from` when it took none). scanLinesStaged hands that line
 * to onLine, then offers the rest again.
 */
export type TakeLines = (buf: Uint8Array, from: number, end: number, stop: number) => number;

/**
 * scanLines that first copies the input into `stage` (one copy per piece) and hands out lines as ranges of
 * stage.buf: a consumer that keeps bytes in the same array moves them with copyWithin (no view per line). The
 * unfinished line at the end of a piece moves to the stage's start. Same contract as scanLines otherwise; with
 * `take`, runs of lines go to it first and onLine gets the ones it leaves.
 */
export async function scanLinesStaged(
  pieces: AsyncIterable<Uint8Array>,
  offset: number,
  stopAt: number,
  maxLineBytes: number,
  source: string,
  stage: LineStage,
  onLine: (buf: Uint8Array, start: number, end: number) => unknown,
  take?: TakeLines,
): Promise<void> {
  const { buf, start: S, size } = stage;
  if (size <= maxLineBytes + (1 << 20))
    throw new RangeError("scanLinesStaged: the stage must exceed maxLineBytes + 1 MiB");
  /** bytes of an unfinished line at buf[S, S + carry), which starts at absolute offset winAbs */
  let carry = 0;
  let winAbs = offset;
  for await (const p of pieces) {
    let off = 0;
    while (off < p.length) {
      const n = Math.min(p.length - off, size - carry);
      buf.set(off === 0 && n === p.length ? p : p.subarray(off, off + n), S + carry);
      off += n;
      const len = carry + n;
      const win = Buffer.from(buf.buffer, buf.byteOffset + S, len);
      let from = 0;
      for (;;) {
        if (take !== undefined) from = take(buf, S + from, S + len, S + Math.min(len, stopAt - winAbs)) - S;
        const nl = win.indexOf(10, from);
        if (nl < 0) break;
        if (winAbs + from >= stopAt) return;
        if (onLine(buf, S + from, S + nl) === true) return;
        from = nl + 1;
      }
      winAbs += from;
      carry = len - from;
      if (carry > 0) {
        if (winAbs >= stopAt) return;
        if (carry > maxLineBytes) {
          throw new InputError(
            `${source} byte ${winAbs}: a line is longer than ${maxLineBytes} bytes (no newline found); is this really line-delimited text?`,
            { source, offset: winAbs },
          );
        }
        if (from > 0) buf.copyWithin(S, S + from, S + len);
      }
    }
  }
  if (carry > 0 && winAbs < stopAt) onLine(buf, S, S + carry);
}
