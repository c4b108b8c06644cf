import { createHash, randomBytes } from "node:crypto";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { beforeAll, describe, expect, it } from "vitest";
import {
  exists,
  getBytes,
  getJson,
  getRange,
  headSize,
  listAll,
  putBytes,
  putIfAbsent,
  putJson,
  readStream,
  s3,
  s3MultipartSink,
  s3RangeReader,
} from "../../core/aws/index.js";
import { NotFoundError } from "../../core/errors.js";

const MiB = 1024 * 1024;
const bucket = `aws-s3-${Date.now().toString(36)}`;

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

beforeAll(async () => {
  await s3().send(new CreateBucketCommand({ Bucket: bucket }));
});

describe("core/aws S3 helpers on the local stack", () => {
  it("multipart sink: > 2 parts in odd-sized writes read back byte-identical", async () => {
    const total = 3 * 5 * MiB + 123_457; // 4 parts at 5 MiB
    const data = randomBytes(total);
    const sink = s3MultipartSink(bucket, "mp/big.bin", { partSize: 5 * MiB, concurrency: 2 });
    let off = 0;
    let awaited = 0;
    let size = 1;
    while (off < total) {
      const n = Math.min(total - off, size);
      const r = sink.write(data.subarray(off, off + n));
      if (r) {
        awaited++;
        await r;
      }
      off += n;
      size = (size * 7 + 13) % (700 * 1024); // 13 B … 700 KiB
    }
    await sink.close();
    expect(sink.partsUploaded).toBe(4);
    expect(sink.bytesWritten).toBe(total);
    // back-pressure: a promise when a full part had to wait for an upload slot (parts 1 and 2 start at once)
    expect(awaited).toBeGreaterThanOrEqual(1);
    expect(await headSize(bucket, "mp/big.bin")).toBe(total);
    const back = await getBytes(bucket, "mp/big.bin");
    expect(back.length).toBe(total);
    expect(sha(back)).toBe(sha(data));
  });

  it("multipart sink: takes a copy (a chunk reused after a synchronous write does not change the object)", async () => {
    // property: for random sizes, chunkings and concurrency, the object equals the bytes written, even though the
    // writer scribbles over every chunk the sink reported done with (consumesSynchronously) and part buffers are
    // reused across parts and sinks (partPool)
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const cases = [0, 1, 5 * MiB - 1, 5 * MiB, 5 * MiB + 1, 10 * MiB, 11 * MiB + 77_777, 2 * MiB + 5];
    for (let i = 0; i < cases.length; i++) {
      const total = cases[i];
      const data = randomBytes(total);
      const sink = s3MultipartSink(bucket, `mp/prop-${i}.bin`, { partSize: 5 * MiB, concurrency: 1 + rnd(3) });
      expect(sink.consumesSynchronously).toBe(true);
      const scratch = new Uint8Array(3 * MiB);
      let off = 0;
      while (off < total) {
        const n = Math.min(total - off, 1 + rnd(rnd(2) ? 3 * MiB : 4096));
        const chunk = scratch.subarray(0, n);
        chunk.set(data.subarray(off, off + n));
        const r = sink.write(chunk);
        if (r) await r;
        chunk.fill(0xee); // the writer reuses its chunk
        off += n;
      }
      await sink.close();
      expect(sink.bytesWritten).toBe(total);
      expect(sink.partsUploaded).toBe(total <= 5 * MiB - 1 ? 0 : Math.ceil(total / (5 * MiB)));
      const back = await getBytes(bucket, `mp/prop-${i}.bin`);
      expect(back.length).toBe(total);
      expect(sha(back)).toBe(sha(data));
    }
  });

  it("multipart sink: two sinks written at once (sharing pooled part buffers) each get their own bytes", async () => {
    const total = 11 * MiB + 4321;
    const data = [randomBytes(total), randomBytes(total)];
    const sinks = data.map((_, i) =>
      s3MultipartSink(bucket, `mp/pair-${i}.bin`, { partSize: 5 * MiB, concurrency: 2 }),
    );
    const step = 700 * 1024 + 17;
    for (let off = 0; off < total; off += step) {
      const ws = sinks.map((s, i) => s.write(data[i].subarray(off, Math.min(total, off + step))));
      await Promise.all(ws);
    }
    await Promise.all(sinks.map((s) => s.close()));
    for (let i = 0; i < 2; i++) {
      const back = await getBytes(bucket, `mp/pair-${i}.bin`);
      expect(sha(back)).toBe(sha(data[i]));
    }
  });

  it("multipart sink: a small object goes up as one PutObject", async () => {
    const sink = s3MultipartSink(bucket, "mp/small.bin", { partSize: 5 * MiB });
    sink.write(Buffer.from("hello "));
    sink.write(Buffer.from("world"));
    await sink.close();
    expect(sink.partsUploaded).toBe(0);
    expect(Buffer.from(await getBytes(bucket, "mp/small.bin")).toString()).toBe("hello world");
  });

  it("multipart sink: abort leaves no object and no open upload", async () => {
    const sink = s3MultipartSink(bucket, "mp/aborted.bin", { partSize: 5 * MiB, concurrency: 1 });
    await sink.write(randomBytes(6 * MiB)); // one part uploads
    await sink.abort(new Error("test"));
    expect(await exists(bucket, "mp/aborted.bin")).toBe(false);
    expect(() => sink.write(Buffer.from("x"))).toThrow(/after aborted/);
  });

  it("multipart sink: a failing upload rejects write/close", async () => {
    const sink = s3MultipartSink("no-such-bucket-ferry", "x.bin", { partSize: 5 * MiB });
    const w = sink.write(randomBytes(5 * MiB + 1));
    await expect(Promise.resolve(w).then(() => sink.close())).rejects.toThrow(/no-such-bucket-ferry/);
  });

  it("multipart sink: partSize below 5 MiB is refused", () => {
    expect(() => s3MultipartSink(bucket, "k", { partSize: 1024 })).toThrow(/>= 5 MiB/);
  });

  it("ranged reads: explicit ranges, including the tail and empty ranges", async () => {
    const data = randomBytes(100_000);
    await putBytes(bucket, "r/obj.bin", data);
    expect(Buffer.from(await getRange(bucket, "r/obj.bin", 0, 10))).toEqual(data.subarray(0, 10));
    expect(Buffer.from(await getRange(bucket, "r/obj.bin", 99_990, 100_000))).toEqual(data.subarray(99_990));
    expect(Buffer.from(await getRange(bucket, "r/obj.bin", 5000, 70_001))).toEqual(data.subarray(5000, 70_001));
    expect((await getRange(bucket, "r/obj.bin", 42, 42)).length).toBe(0);
    await expect(getRange(bucket, "r/obj.bin", 99_990, 100_010)).rejects.toThrow(/expected 20/);
    await expect(getRange(bucket, "r/missing.bin", 0, 1)).rejects.toBeInstanceOf(NotFoundError);

    const chunks: Uint8Array[] = [];
    for await (const c of s3RangeReader(bucket, "r/obj.bin", 1234, 98_765, { chunkBytes: 10_000, prefetch: 2 })) {
      chunks.push(c);
    }
    expect(chunks.length).toBe(10);
    expect(chunks.slice(0, -1).every((c) => c.length === 10_000)).toBe(true);
    expect(Buffer.concat(chunks)).toEqual(data.subarray(1234, 98_765));

    // stopping early is fine
    for await (const c of s3RangeReader(bucket, "r/obj.bin", 0, 100_000, { chunkBytes: 1000 })) {
      expect(c.length).toBe(1000);
      break;
    }

    const stream = await readStream(bucket, "r/obj.bin", { start: 10, endExclusive: 20 });
    const parts: Buffer[] = [];
    for await (const p of stream) parts.push(p as Buffer);
    expect(Buffer.concat(parts)).toEqual(data.subarray(10, 20));
  });

  it("listAll pages past 1000 objects (truncated listings work)", async () => {
    const n = 1010;
    const keys = Array.from({ length: n }, (_, i) => `list/k${String(i).padStart(5, "0")}`);
    for (let i = 0; i < n; i += 50) {
      await Promise.all(keys.slice(i, i + 50).map((k) => putBytes(bucket, k, "x")));
    }
    await putBytes(bucket, "listother/z", "y");
    const all = await listAll(bucket, "list/");
    expect(all.map((o) => o.key)).toEqual(keys);
    expect(all.every((o) => o.size === 1)).toBe(true);
    const small = await listAll(bucket, "list/", { pageSize: 400 });
    expect(small.length).toBe(n);
  });

  it("JSON objects, putIfAbsent, missing objects", async () => {
    await putJson(bucket, "j/a.json", { a: 1, b: [1, 2] });
    expect(await getJson(bucket, "j/a.json")).toEqual({ a: 1, b: [1, 2] });
    expect(await putIfAbsent(bucket, "j/once.txt", "first")).toBe(true);
    expect(await putIfAbsent(bucket, "j/once.txt", "second")).toBe(false);
    expect(Buffer.from(await getBytes(bucket, "j/once.txt")).toString()).toBe("first");
    await expect(headSize(bucket, "j/nope")).rejects.toBeInstanceOf(NotFoundError);
    await putBytes(bucket, "j/bad.json", "{nope");
    await expect(getJson(bucket, "j/bad.json")).rejects.toThrow(/s3:\/\/.*j\/bad.json is not valid JSON/);
  });
});
