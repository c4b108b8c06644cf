/**
 * Download one version's SST files for a host: parallel ranged GETs (HOST.downloadPartBytes each, at most
 * `concurrency` in flight across all files), a shared TokenBucket cap, and resume.
 *
 * Per file, while in flight: `<name>.part` (parts written at their offsets) and `<name>.part.json`, a journal of the
 * parts that are on disk (fdatasync'd before they are recorded) with each part's CRC32C (cheap: the whole file's
 * sha256 against the manifest is the real check). After a restart, a recorded part is kept only if its bytes on disk
 * still match the journal's CRC32C (the verified parts), everything
 * else is fetched again. A finished file is verified (size + sha256 against the manifest) and renamed to its final
 * name; a final file already present is re-verified before it is trusted. A mismatch is a CorruptionError naming the
 * file with expected/actual sha256 (after one full re-download when resumed parts were involved).
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { Readable } from "node:stream";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { crc32c } from "@node-rs/crc32";
import { s3 } from "../../core/aws/clients.js";
import { CorruptionError, TransientError } from "../../core/errors.js";
import { HOST } from "../../core/limits.js";
import type { TokenBucket } from "./token-bucket.js";

export interface DownloadFile {
  /** the manifest's relative path (for messages) */
  rel: string;
  bucket: string;
  key: string;
  /** final local path */
  dest: string;
  bytes: number;
  sha256: string;
}

export interface DownloadOptions {
  concurrency?: number;
  partBytes?: number;
  bucket: TokenBucket;
  signal?: AbortSignal;
  /** bytes newly on disk (positive) as they arrive; called with the file when one completes */
  onProgress?: (bytes: number, fileDone?: DownloadFile) => void;
}

export interface DownloadStats {
  files: number;
  bytes: number;
  /** bytes fetched over the network in this call (less than `bytes` when resuming) */
  fetchedBytes: number;
  /** bytes kept from an earlier, interrupted run */
  resumedBytes: number;
  seconds: number;
}

interface Journal {
  size: number;
  partBytes: number;
  /** the manifest's sha256 of the whole file (a journal for other content is discarded) */
  sha256: string;
  /** part index → CRC32C (hex) of the part's bytes */
  parts: Record<string, string>;
}

const crcHex = (c: number) => (c >>> 0).toString(16).padStart(8, "0");

const journalPath = (dest: string) => `${dest}.part.json`;
const partPath = (dest: string) => `${dest}.part`;

export async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest("hex");
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

async function crcRange(path: string, start: number, length: number): Promise<string> {
  let c = 0;
  if (length > 0) {
    for await (const chunk of createReadStream(path, { start, end: start + length - 1, highWaterMark: 1 << 20 })) {
      c = crc32c(chunk as Buffer, c);
    }
  }
  return crcHex(c);
}

class FileJob {
  readonly nParts: number;
  journal: Journal;
  remaining = 0;
  resumed = false;
  private saving: Promise<void> = Promise.resolve();

  constructor(
    readonly f: DownloadFile,
    readonly partBytes: number,
  ) {
    this.nParts = Math.max(1, Math.ceil(f.bytes / partBytes));
    this.journal = { size: f.bytes, partBytes, sha256: f.sha256, parts: {} };
  }

  partRange(i: number): [number, number] {
    const start = i * this.partBytes;
    return [start, Math.min(this.f.bytes, start + this.partBytes)];
  }

  /** record a finished part (journal writes are serialized per file; tmp + rename) */
  record(i: number, crc: string): Promise<void> {
    this.journal.parts[i] = crc;
    this.saving = this.saving.then(async () => {
      const tmp = `${journalPath(this.f.dest)}.tmp`;
      await writeFile(tmp, JSON.stringify(this.journal));
      await rename(tmp, journalPath(this.f.dest));
    });
    return this.saving;
  }
}

/** Returns the parts still to fetch for a file (empty: the final file is already there and verified). */
async function prepare(job: FileJob): Promise<{ todo: number[]; keptBytes: number; done: boolean }> {
  const { f } = job;
  await mkdir(dirname(f.dest), { recursive: true });
  const st = await stat(f.dest).catch(() => undefined);
  if (st) {
    if (st.size === f.bytes && (await sha256File(f.dest)) === f.sha256)
      return { todo: [], keptBytes: f.bytes, done: true };
    await rm(f.dest, { force: true });
  }
  let keptBytes = 0;
  const todo: number[] = [];
  let journal: Journal | undefined;
  try {
    journal = JSON.parse(await readFile(journalPath(f.dest), "utf8")) as Journal;
  } catch {
    journal = undefined;
  }
  const partSt = await stat(partPath(f.dest)).catch(() => undefined);
  if (
    journal &&
    partSt &&
    journal.size === f.bytes &&
    journal.partBytes === job.partBytes &&
    journal.sha256 === f.sha256 &&
    partSt.size === f.bytes
  ) {
    for (let i = 0; i < job.nParts; i++) {
      const want = journal.parts[i];
      const [a, b] = job.partRange(i);
      if (want && (await crcRange(partPath(f.dest), a, b - a)) === want) {
        job.journal.parts[i] = want;
        keptBytes += b - a;
      } else todo.push(i);
    }
    job.resumed = keptBytes > 0;
  } else {
    // start the file over: a preallocated .part of the final size, an empty journal
    await rm(journalPath(f.dest), { force: true });
    const fh = await open(partPath(f.dest), "w");
    await fh.truncate(f.bytes);
    await fh.close();
    for (let i = 0; i < job.nParts; i++) todo.push(i);
  }
  return { todo, keptBytes, done: false };
}

async function fetchPart(job: FileJob, i: number, opts: DownloadOptions, onBytes: (n: number) => void): Promise<void> {
  const [start, end] = job.partRange(i);
  const { f } = job;
  if (end <= start) {
    await job.record(i, crcHex(0));
    return;
  }
  let res: { Body?: unknown };
  try {
    res = await s3().send(new GetObjectCommand({ Bucket: f.bucket, Key: f.key, Range: `bytes=${start}-${end - 1}` }), {
      abortSignal: opts.signal,
    });
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e.name === "NoSuchKey" || e.$metadata?.httpStatusCode === 404) {
      throw new CorruptionError(`${f.rel}: s3://${f.bucket}/${f.key} is missing`, { file: f.rel });
    }
    if (e.$metadata?.httpStatusCode === 416) {
      throw new CorruptionError(`${f.rel}: object is shorter than the manifest's ${f.bytes} bytes`, { file: f.rel });
    }
    throw new TransientError(
      `GET s3://${f.bucket}/${f.key} ${start}-${end - 1}: ${(err as Error).message}`,
      {},
      { cause: err },
    );
  }
  const fh = await open(partPath(f.dest), "r+");
  let crc = 0;
  let pos = start;
  try {
    for await (const chunk of res.Body as Readable) {
      const buf = chunk as Buffer;
      if (opts.signal?.aborted) throw opts.signal.reason ?? new Error("aborted");
      if (pos + buf.length > end) {
        throw new CorruptionError(`${f.rel}: object is longer than the manifest's ${f.bytes} bytes`, { file: f.rel });
      }
      await opts.bucket.take(buf.length, opts.signal);
      let off = 0;
      while (off < buf.length) {
        const { bytesWritten } = await fh.write(buf, off, buf.length - off, pos + off);
        off += bytesWritten;
      }
      crc = crc32c(buf, crc);
      pos += buf.length;
      onBytes(buf.length);
    }
    if (pos !== end) {
      throw new CorruptionError(
        `${f.rel}: got ${pos - start} bytes for range ${start}-${end - 1}: object is shorter than the manifest's ${f.bytes} bytes`,
        {
          file: f.rel,
        },
      );
    }
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await job.record(i, crcHex(crc));
}

/** Download (or resume) every file; resolves when all are verified and in place. */
export async function downloadFiles(files: DownloadFile[], opts: DownloadOptions): Promise<DownloadStats> {
  const t0 = performance.now();
  const partBytes = opts.partBytes ?? HOST.downloadPartBytes;
  const concurrency = Math.max(1, opts.concurrency ?? HOST.downloadConcurrency);
  const stats: DownloadStats = { files: files.length, bytes: 0, fetchedBytes: 0, resumedBytes: 0, seconds: 0 };
  const jobs = files.map((f) => new FileJob(f, partBytes));
  const queue: Array<{ job: FileJob; part: number }> = [];
  const finishing: Promise<void>[] = [];

  const finish = async (job: FileJob, retried = false): Promise<void> => {
    const { f } = job;
    const actual = await sha256File(partPath(f.dest));
    if (actual !== f.sha256) {
      if (job.resumed && !retried) {
        // a resumed part was wrong after all: fetch the whole file again once
        await rm(journalPath(f.dest), { force: true });
        await rm(partPath(f.dest), { force: true });
        const again = new FileJob(f, partBytes);
        const { todo } = await prepare(again);
        for (const i of todo) await fetchPart(again, i, opts, (n) => (stats.fetchedBytes += n));
        return finish(again, true);
      }
      await rm(partPath(f.dest), { force: true });
      await rm(journalPath(f.dest), { force: true });
      throw new CorruptionError(`${f.rel}: sha256 mismatch: expected ${f.sha256}, got ${actual}; not ingested`, {
        file: f.rel,
        expected: f.sha256,
        actual,
      });
    }
    await rename(partPath(f.dest), f.dest);
    await rm(journalPath(f.dest), { force: true });
    opts.onProgress?.(0, f);
  };

  for (const job of jobs) {
    const { todo, keptBytes, done } = await prepare(job);
    stats.bytes += job.f.bytes;
    stats.resumedBytes += keptBytes;
    if (keptBytes) opts.onProgress?.(keptBytes);
    if (done) {
      opts.onProgress?.(0, job.f);
      continue;
    }
    job.remaining = todo.length;
    if (todo.length === 0) finishing.push(finish(job));
    for (const part of todo) queue.push({ job, part });
  }

  let failure: unknown;
  const worker = async () => {
    while (queue.length > 0 && failure === undefined) {
      const { job, part } = queue.shift()!;
      try {
        await fetchPart(job, part, opts, (n) => {
          stats.fetchedBytes += n;
          opts.onProgress?.(n);
        });
        if (--job.remaining === 0) await finish(job);
      } catch (err) {
        failure ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, worker));
  const settled = await Promise.allSettled(finishing);
  if (failure !== undefined) throw failure;
  for (const s of settled) if (s.status === "rejected") throw s.reason;
  for (const job of jobs) {
    if (!(await exists(job.f.dest)))
      throw new CorruptionError(`${job.f.rel}: download did not complete`, { file: job.f.rel });
  }
  stats.seconds = (performance.now() - t0) / 1000;
  return stats;
}
