/**
 * Input decompression: gzip (node:zlib, multi-member) and zstd (fzstd, pure JS, streaming). Detected from the object
 * name (.gz/.gzip, .zst/.zstd) or the first bytes (1f 8b / 28 b5 2f fd). Compressed objects are one chunk each.
 */
import * as zlib from "node:zlib";
import { Decompress } from "fzstd";
import type { InputCompression } from "../pipeline/types.js";

export function compressionFromName(key: string): InputCompression {
  const k = key.toLowerCase();
  if (k.endsWith(".gz") || k.endsWith(".gzip")) return "gzip";
  if (k.endsWith(".zst") || k.endsWith(".zstd")) return "zstd";
  return "none";
}

export function compressionFromMagic(head: Uint8Array): InputCompression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return "zstd";
  return "none";
}

/** Decompresses a byte stream; memory stays bounded (one piece in, its output out). */
export async function* decompress(
  input: AsyncIterable<Uint8Array>,
  compression: InputCompression,
): AsyncIterable<Uint8Array> {
  if (compression === "none") {
    yield* input;
    return;
  }
  // node:zlib's zstd (Node >= 22.15, Lambda nodejs22.x) is native and faster; else fzstd (pure JS)
  const nativeZstd = (zlib as unknown as { createZstdDecompress?: () => import("node:stream").Transform })
    .createZstdDecompress;
  if (compression === "gzip" || (compression === "zstd" && nativeZstd)) {
    const gunzip =
      compression === "gzip" ? zlib.createGunzip() : (nativeZstd as () => import("node:stream").Transform)();
    // pipe input into gunzip, read its output; errors surface from the read side
    const pump = (async () => {
      try {
        for await (const piece of input) {
          if (!gunzip.write(piece)) await new Promise<void>((r) => gunzip.once("drain", () => r()));
        }
        gunzip.end();
      } catch (e) {
        gunzip.destroy(e as Error);
      }
    })();
    try {
      for await (const out of gunzip as AsyncIterable<Buffer>) yield out;
    } finally {
      gunzip.destroy();
      await pump;
    }
    return;
  }
  // zstd: fzstd's streaming Decompress calls ondata synchronously from push()
  let outs: Uint8Array[] = [];
  const d = new Decompress((chunk) => {
    outs.push(chunk);
  });
  for await (const piece of input) {
    d.push(piece);
    if (outs.length) {
      const o = outs;
      outs = [];
      for (const c of o) yield c;
    }
  }
  d.push(new Uint8Array(0), true);
  for (const c of outs) yield c;
}
