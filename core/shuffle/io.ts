/**
 * Where run objects and SST files go: S3 multipart uploads (core/aws s3MultipartSink) by default; tests can pass
 * memory sinks.
 */
import { s3MultipartSink } from "../aws/s3.js";
import type { ByteSink } from "../sst/types.js";

/** Opens a sink for one object (bucket, key). */
export type OpenSink = (bucket: string, key: string) => ByteSink | Promise<ByteSink>;

/**
 * A ByteSink streaming into an S3 multipart upload; close() completes it, abort() aborts it (no partial object).
 * Parts go UNSIGNED-PAYLOAD (S3 still checks each part's CRC32, and a run carries its own CRC32C per piece, checked
 * by every reader): SigV4 would otherwise sha256 every byte of every run (~0.12 CPU-s per 128 MiB chunk here, ~3%).
 */
export const openS3Sink: OpenSink = (bucket, key) => s3MultipartSink(bucket, key, { unsignedPayload: true });

/** An OpenSink writing into a Map (tests): key "bucket/key" → bytes on close. */
export function memorySinks(store: Map<string, Uint8Array>): OpenSink {
  return (bucket, key) => {
    const chunks: Uint8Array[] = [];
    return {
      write(c: Uint8Array) {
        chunks.push(c);
      },
      async close() {
        store.set(`${bucket}/${key}`, Buffer.concat(chunks));
      },
      async abort() {
        chunks.length = 0;
      },
    };
  };
}
