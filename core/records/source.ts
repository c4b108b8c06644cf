/**
 * Byte sources for the input readers: an object is read by ranges (S3 ranged GETs, a local file, memory). Readers
 * never load a whole object: they stream ranges and stop early (breaking a for-await destroys the stream).
 */
import { createReadStream, statSync } from "node:fs";
import { open } from "node:fs/promises";
import { getRange, headSize, s3RangeReader } from "../aws/s3.js";
import { CorruptionError } from "../errors.js";

export interface ObjectReader {
  /** s3://bucket/key (or a path), used in every error message */
  readonly url: string;
  readonly size: number;
  /**
   * streams bytes [start, end) in pieces (end clamped to size). `reuse: true` is the caller's promise that it is done
   * with a piece (parsed it, or copied what it keeps) before it pulls the next one: a reader may then lend pieces
   * from a buffer it refills (S3 windows from a pool instead of a fresh buffer each).
   */
  stream(start: number, end: number, opts?: StreamOptions): AsyncIterable<Uint8Array>;
  /** reads bytes [start, end) into one buffer (end clamped to size) */
  read(start: number, end: number): Promise<Uint8Array>;
}

export interface StreamOptions {
  reuse?: boolean;
}

/** Opens an object for ranged reads. `size`, when known (from a listing), saves a HEAD request. */
export type OpenObject = (bucket: string, key: string, size?: number) => Promise<ObjectReader>;

export function s3Url(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`;
}

/** An ObjectReader over bytes in memory (tests, small objects). `pieceBytes` splits the stream like a network would. */
export function memoryObject(bytes: Uint8Array, url = "<memory>", pieceBytes = 64 * 1024): ObjectReader {
  return {
    url,
    size: bytes.length,
    async *stream(start: number, end: number) {
      const e = Math.min(end, bytes.length);
      for (let o = start; o < e; o += pieceBytes) yield bytes.subarray(o, Math.min(e, o + pieceBytes));
    },
    async read(start: number, end: number) {
      return bytes.subarray(start, Math.min(end, bytes.length));
    },
  };
}

/** An OpenObject over an in-memory map of "bucket/key" → bytes (tests). */
export function memoryStore(objects: Map<string, Uint8Array>, pieceBytes?: number): OpenObject {
  return async (bucket, key) => {
    const b = objects.get(`${bucket}/${key}`);
    if (!b) throw new CorruptionError(`${s3Url(bucket, key)}: no such object`, { file: s3Url(bucket, key) });
    return memoryObject(b, s3Url(bucket, key), pieceBytes);
  };
}

/** An ObjectReader over a local file. */
export function fileObject(path: string): ObjectReader {
  const size = statSync(path).size;
  return {
    url: path,
    size,
    async *stream(start: number, end: number) {
      const e = Math.min(end, size);
      if (e <= start) return;
      yield* createReadStream(path, { start, end: e - 1, highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>;
    },
    async read(start: number, end: number) {
      const e = Math.min(end, size);
      const buf = Buffer.allocUnsafe(Math.max(0, e - start));
      const fh = await open(path, "r");
      try {
        let got = 0;
        while (got < buf.length) {
          const { bytesRead } = await fh.read(buf, got, buf.length - got, start + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        return buf.subarray(0, got);
      } finally {
        await fh.close();
      }
    },
  };
}

// ---- S3: core/aws ranged reads (explicit ranges, retried per window) ----

/**
 * Opens an S3 object for ranged reads (HEAD when size is unknown). stream() issues one GET per `windowBytes` window
 * with one window prefetched: memory per open stream ≈ 2 × windowBytes, and stopping early wastes at most that.
 * `pieces` (see s3RangeReader): "window" (default) yields each window as one buffer; "network" yields the pieces the
 * bodies arrived in (≤ 64 KiB, no copy into a window buffer) — cheaper on the S3 side, for consumers that do not
 * pay per piece.
 */
export function s3Opener(windowBytes = 8 * 1024 * 1024, opts: { pieces?: "window" | "network" } = {}): OpenObject {
  const pieces = opts.pieces ?? "window";
  return async (bucket, key, size) => {
    const url = s3Url(bucket, key);
    const objSize = size ?? (await headSize(bucket, key));
    return {
      url,
      size: objSize,
      async *stream(start: number, end: number, streamOpts?: StreamOptions) {
        const e = Math.min(end, objSize);
        if (e <= start) return;
        // windows lent from the pool when the caller is done with each before the next (see ObjectReader.stream)
        const reuseWindows = streamOpts?.reuse === true && pieces === "window";
        yield* s3RangeReader(bucket, key, start, e, { chunkBytes: windowBytes, prefetch: 1, pieces, reuseWindows });
      },
      async read(start: number, end: number) {
        const e = Math.min(end, objSize);
        if (e <= start) return new Uint8Array(0);
        return getRange(bucket, key, start, e);
      },
    };
  };
}

/** The default opener: S3 with 8 MiB windows. */
export const openS3Object: OpenObject = s3Opener();
