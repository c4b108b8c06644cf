/**
 * Where run objects and SST files go. Defaults to S3 multipart uploads; tests can pass memory/file sinks.
 * (Until core/aws's s3MultipartSink lands this uses @aws-sdk/lib-storage directly.)
 */
import { PassThrough } from "node:stream";
import type { ByteSink } from "../sst/types.js";

/** Opens a sink for one object (bucket, key). */
export type OpenSink = (bucket: string, key: string) => ByteSink | Promise<ByteSink>;

let clientP: Promise<import("@aws-sdk/client-s3").S3Client> | undefined;
async function client() {
  clientP ??= import("@aws-sdk/client-s3").then((m) => new m.S3Client({}));
  return clientP;
}

/** A ByteSink that streams into an S3 multipart upload; close() completes it, abort() aborts it. */
export const openS3Sink: OpenSink = async (bucket, key) => {
  const { Upload } = await import("@aws-sdk/lib-storage");
  const body = new PassThrough({ highWaterMark: 8 * 1024 * 1024 });
  const upload = new Upload({
    client: await client(),
    params: { Bucket: bucket, Key: key, Body: body },
    partSize: 8 * 1024 * 1024,
    queueSize: 4,
    leavePartsOnError: false,
  });
  const done = upload.done();
  let failed: unknown;
  done.catch((e) => {
    failed = e;
  });
  return {
    write(chunk: Uint8Array): void | Promise<void> {
      if (failed) throw failed;
      if (!body.write(chunk)) return new Promise<void>((r) => body.once("drain", () => r()));
    },
    async close(): Promise<void> {
      body.end();
      await done;
    },
    async abort(): Promise<void> {
      body.destroy();
      try {
        await upload.abort();
      } catch {}
      await done.catch(() => undefined);
    },
  };
};

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
