/**
 * The few S3 calls the control side of the pipeline needs (plan, publish, manifests): small JSON/JSONL objects,
 * listings, HEAD, streamed sha256. Lazy client with default config (endpoint from AWS_ENDPOINT_URL_S3). Network and
 * 5xx failures become TransientError. Bulk data paths (runs, SSTs) live in core/shuffle and core/aws.
 */
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  type PutObjectCommandInput,
  type S3Client,
} from "@aws-sdk/client-s3";
import { s3 as awsS3 } from "../aws/clients.js";
import { isLeanBody } from "../aws/lean-http.js";
import { Xxh3x2 } from "../aws/s3.js";
import { NotFoundError, TransientError } from "../errors.js";

/** core/aws's S3 client (re-created when the endpoint environment changes). */
export function s3(): S3Client {
  return awsS3();
}

export function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } };
  return (
    e?.name === "NoSuchKey" || e?.name === "NotFound" || e?.Code === "NoSuchKey" || e?.$metadata?.httpStatusCode === 404
  );
}

function transient(err: unknown, what: string): never {
  const e = err as { name?: string; code?: string; $retryable?: unknown; $metadata?: { httpStatusCode?: number } };
  const status = e?.$metadata?.httpStatusCode ?? 0;
  const netCodes = ["ECONNRESET", "ECONNREFUSED", "EPIPE", "ETIMEDOUT", "TimeoutError", "SlowDown"];
  if (
    status >= 500 ||
    status === 429 ||
    e?.$retryable ||
    netCodes.includes(e?.code ?? "") ||
    netCodes.includes(e?.name ?? "")
  ) {
    throw new TransientError(`${what}: ${(err as Error).message}`, {}, { cause: err });
  }
  throw err;
}

export async function headObject(bucket: string, key: string): Promise<{ size: number; etag?: string } | undefined> {
  try {
    const out = await s3().send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return { size: out.ContentLength ?? 0, etag: out.ETag };
  } catch (err) {
    if (isNotFound(err)) return undefined;
    return transient(err, `HEAD s3://${bucket}/${key}`);
  }
}

export async function getText(bucket: string, key: string): Promise<string | undefined> {
  try {
    const out = await s3().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return (await out.Body?.transformToString("utf8")) ?? "";
  } catch (err) {
    if (isNotFound(err)) return undefined;
    return transient(err, `GET s3://${bucket}/${key}`);
  }
}

export async function getJsonOrUndefined<T>(bucket: string, key: string): Promise<T | undefined> {
  const text = await getText(bucket, key);
  return text === undefined ? undefined : (JSON.parse(text) as T);
}

export async function getJson<T>(bucket: string, key: string): Promise<T> {
  const v = await getJsonOrUndefined<T>(bucket, key);
  if (v === undefined) throw new NotFoundError(`s3://${bucket}/${key} does not exist`, { bucket, key });
  return v;
}

export async function putText(
  bucket: string,
  key: string,
  body: string,
  contentType = "application/json",
  extra: Partial<PutObjectCommandInput> = {},
): Promise<void> {
  try {
    await s3().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: contentType, ...extra }));
  } catch (err) {
    return transient(err, `PUT s3://${bucket}/${key}`);
  }
}

export async function putJson(bucket: string, key: string, value: unknown): Promise<void> {
  await putText(bucket, key, `${JSON.stringify(value)}\n`);
}

/** One JSON object per line, for Distributed Map ItemReaders (InputType JSONL). */
export async function putJsonl(bucket: string, key: string, items: unknown[]): Promise<void> {
  await putText(bucket, key, items.map((i) => `${JSON.stringify(i)}\n`).join(""), "application/x-ndjson");
}

export async function getJsonl<T>(bucket: string, key: string): Promise<T[]> {
  const text = await getText(bucket, key);
  if (text === undefined) throw new NotFoundError(`s3://${bucket}/${key} does not exist`, { bucket, key });
  return text
    .split("\n")
    .filter((l) => l.trim().length > 0)
    .map((l) => JSON.parse(l) as T);
}

export interface ListedObject {
  key: string;
  size: number;
  etag?: string;
}

/** Every object under a prefix (all pages), in key order. */
export async function listObjects(bucket: string, prefix: string): Promise<ListedObject[]> {
  const out: ListedObject[] = [];
  let token: string | undefined;
  do {
    let page: ListObjectsV2CommandOutput;
    try {
      page = await s3().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    } catch (err) {
      if ((err as { name?: string }).name === "NoSuchBucket") {
        throw new NotFoundError(`bucket ${bucket} does not exist`, { bucket });
      }
      return transient(err, `LIST s3://${bucket}/${prefix}`);
    }
    for (const c of page.Contents ?? []) {
      if (c.Key) out.push({ key: c.Key, size: c.Size ?? 0, etag: c.ETag });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return out;
}

/** Stream an object and return its size and sha256 (hex). */
export async function hashObject(bucket: string, key: string): Promise<{ size: number; sha256: string }> {
  const h = createHash("sha256");
  const size = await streamObject(bucket, key, (chunk) => h.update(chunk));
  return { size, sha256: h.digest("hex") };
}

/**
 * Stream an object and return its size and Xxh3x2 (core/aws/s3.ts: a 128-bit non-cryptographic checksum, ~0.3 ns/B
 * against sha256's ~1-2): for comparing landed bytes with bytes hashed the same way as they were written.
 */
export async function checksumObject(bucket: string, key: string): Promise<{ size: number; xxh3x2: string }> {
  const h = new Xxh3x2();
  const size = await streamObject(bucket, key, (chunk) => h.update(chunk));
  return { size, xxh3x2: h.digest() };
}

/** One streamed GET of the whole object, each body chunk handed to `update`; returns the byte count. */
async function streamObject(bucket: string, key: string, update: (chunk: Uint8Array) => void): Promise<number> {
  try {
    const out = await s3().send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    // hashed straight from the connection's read buffer (core/aws/lean-http.ts), else chunk by chunk
    if (isLeanBody(out.Body)) return await out.Body.forEachPiece(update);
    let size = 0;
    for await (const chunk of out.Body as Readable) {
      update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    return size;
  } catch (err) {
    if (isNotFound(err)) throw new NotFoundError(`s3://${bucket}/${key} does not exist`, { bucket, key });
    return transient(err, `GET s3://${bucket}/${key}`);
  }
}

export async function getBytes(bucket: string, key: string, start?: number, end?: number): Promise<Uint8Array> {
  try {
    const range = start !== undefined && end !== undefined ? `bytes=${start}-${end - 1}` : undefined;
    const out = await s3().send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: range }));
    return (await out.Body?.transformToByteArray()) ?? new Uint8Array();
  } catch (err) {
    if (isNotFound(err)) throw new NotFoundError(`s3://${bucket}/${key} does not exist`, { bucket, key });
    return transient(err, `GET s3://${bucket}/${key}`);
  }
}

/** Run `fn` over items with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  });
  await Promise.all(workers);
  return results;
}
