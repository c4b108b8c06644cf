/**
 * Xxh3x2 (core/aws/s3.ts, the 128-bit checksum Build records as it uploads and compares on its verification re-read)
 * and checksummedSink: the digest depends on the bytes only, not on how they are cut into chunks, and differs for
 * any changed byte; the wrapping sink hands every chunk on unchanged with the inner sink's ownership and back-pressure.
 */
import { xxh3 } from "@node-rs/xxhash";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type ByteSink, checksummedSink, Xxh3x2 } from "../../core/aws/s3.js";

const digestOf = (chunks: Uint8Array[]) => {
  const h = new Xxh3x2();
  for (const c of chunks) h.update(c);
  return h.digest();
};

describe("Xxh3x2", () => {
  it("is the two seeded XXH3-64 digests of the bytes, 32 hex characters", () => {
    const b = Buffer.from("hello, ferry");
    const d = digestOf([b]);
    expect(d).toMatch(/^[0-9a-f]{32}$/);
    expect(d.slice(0, 16)).toBe(xxh3.xxh64(b, 0n).toString(16).padStart(16, "0"));
    expect(d.slice(16)).toBe(xxh3.xxh64(b, 0x9e3779b97f4a7c15n).toString(16).padStart(16, "0"));
    expect(digestOf([])).toMatch(/^[0-9a-f]{32}$/);
  });

  it("does not depend on the chunking, and changes with any byte", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 5000 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.nat(),
        (bytes, cuts, at) => {
          const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
          const chunks: Uint8Array[] = [];
          let p = 0;
          for (const c of [...points, bytes.length]) {
            chunks.push(bytes.subarray(p, c));
            p = c;
          }
          const whole = digestOf([bytes]);
          expect(digestOf(chunks)).toBe(whole);
          const changed = Uint8Array.from(bytes);
          changed[at % bytes.length] ^= 1 << (at % 8);
          expect(digestOf([changed])).not.toBe(whole);
          expect(digestOf([bytes.subarray(0, bytes.length - 1)])).not.toBe(whole);
        },
      ),
    );
  });
});

describe("checksummedSink", () => {
  it("passes chunks, promises, close and abort through and hashes what it was given", async () => {
    const got: Uint8Array[] = [];
    const calls: string[] = [];
    let release: (() => void) | undefined;
    const inner: ByteSink = {
      consumesSynchronously: true,
      write(c) {
        got.push(Uint8Array.from(c));
        if (got.length === 2) return new Promise<void>((r) => (release = r));
      },
      close: async () => void calls.push("close"),
      abort: async () => void calls.push("abort"),
    };
    const s = checksummedSink(inner);
    expect(s.consumesSynchronously).toBe(true);
    const chunk = new Uint8Array(100).fill(7);
    expect(s.write(chunk)).toBeUndefined();
    chunk.fill(9); // the writer reuses a chunk the sink consumed synchronously
    const p = s.write(chunk);
    expect(p).toBeInstanceOf(Promise);
    release?.();
    await p;
    await s.close();
    await s.abort?.();
    expect(calls).toEqual(["close", "abort"]);
    expect(s.checksum()).toBe(digestOf(got));
    expect(s.checksum()).toBe(digestOf([new Uint8Array(100).fill(7), new Uint8Array(100).fill(9)]));
    expect(checksummedSink({ write() {}, close: async () => {} }).consumesSynchronously).toBeUndefined();
  });
});
