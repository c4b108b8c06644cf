import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { chooseNumProbes } from "../../core/sst/bloom.js";
import { ByteBuf, Cursor, maskCrc, unmaskCrc, varintLength } from "../../core/sst/format.js";
import { crc32c, shortestSeparator, xxph3_64 } from "../../core/sst/index.js";

const te = new TextEncoder();

describe("varints", () => {
  it("round-trips edge values and uses the expected byte counts", () => {
    const values = [
      0,
      1,
      127,
      128,
      255,
      300,
      16383,
      16384,
      2 ** 21 - 1,
      2 ** 21,
      2 ** 28,
      2 ** 32 - 1,
      2 ** 32,
      2 ** 53 - 1,
    ];
    const b = new ByteBuf(4);
    for (const v of values) b.varint(v);
    const c = new Cursor(b.buf, 0, b.len, "test");
    for (const v of values) {
      const start = c.pos;
      expect(c.varint()).toBe(v);
      expect(c.pos - start).toBe(varintLength(v));
    }
    expect(c.pos).toBe(b.len);
  });
  it("encodes 300 as ac 02 (LEB128)", () => {
    const b = new ByteBuf();
    b.varint(300);
    expect(Buffer.from(b.view()).toString("hex")).toBe("ac02");
  });
  it("rejects a truncated varint", () => {
    const c = new Cursor(Uint8Array.of(0x80, 0x80), 0, 2, "what");
    expect(() => c.varint()).toThrow(/truncated varint/);
  });
  it("fixed32/fixed64 are little-endian", () => {
    const b = new ByteBuf();
    b.fixed32(0x01020304);
    b.fixed64(2 ** 40 + 5);
    expect(Buffer.from(b.view()).toString("hex")).toBe("04030201" + "0500000000010000");
  });
});

describe("crc32c", () => {
  it("matches known vectors (RFC 3720 / iSCSI)", () => {
    expect(crc32c(te.encode("123456789"))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    const inc = new Uint8Array(32).map((_, i) => i);
    expect(crc32c(inc)).toBe(0x46dd794e);
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });
  it("continues from a previous value", () => {
    expect(crc32c(te.encode("6789"), crc32c(te.encode("12345")))).toBe(0xe3069283);
  });
  it("masks as RocksDB does and unmasks back", () => {
    for (const c of [0, 1, 0xe3069283, 0xffffffff, 0x12345678]) expect(unmaskCrc(maskCrc(c))).toBe(c >>> 0);
    // mask(c) = rotr15(c) + 0xa282ead8
    expect(maskCrc(0)).toBe(0xa282ead8);
  });
});

describe("xxph3_64 (RocksDB util/xxph3.h)", () => {
  const vectors = JSON.parse(
    readFileSync(join(import.meta.dirname, "../fixtures/sst/xxph3-vectors.json"), "utf8"),
  ) as Array<{ len: number; xxph3_64: string }>;
  it("has vectors for every code path", () => {
    const lens = vectors.map((v) => v.len);
    for (const l of [0, 1, 3, 4, 8, 9, 16, 17, 128, 129, 240, 241, 1024, 2048]) expect(lens).toContain(l);
  });
  it.each(vectors)("len $len", ({ len, xxph3_64: expected }) => {
    const b = new Uint8Array(len);
    for (let i = 0; i < len; i++) b[i] = (i * 31 + len * 7 + 1) & 0xff;
    expect(xxph3_64(b).toString(16).padStart(16, "0")).toBe(expected);
  });
  it("hashes a subarray like a copy", () => {
    const big = new Uint8Array(300).map((_, i) => (i * 13) & 0xff);
    for (const [s, n] of [
      [5, 12],
      [7, 100],
      [3, 250],
    ]) {
      expect(xxph3_64(big.subarray(s, s + n))).toBe(xxph3_64(big.slice(s, s + n)));
    }
  });
});

describe("xxph3 9..16-byte fast path against a BigInt transcription of XXPH3_len_9to16_64b", () => {
  const M = (1n << 64n) - 1n;
  const le64 = (b: Uint8Array, p: number) => {
    let v = 0n;
    for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(b[p + i]);
    return v;
  };
  const SECRET_LO = 0xbe4ba423396cfeb8n; // kSecret[0..8)
  const SECRET_HI = 0x1cad21f72c81017cn; // kSecret[8..16)
  const P64_3 = 0x165667b19e3779f9n;
  const reference = (b: Uint8Array, p: number, len: number): bigint => {
    const lo = le64(b, p) ^ SECRET_LO;
    const hi = le64(b, p + len - 8) ^ SECRET_HI;
    const prod = lo * hi;
    const fold = (prod & M) ^ (prod >> 64n);
    let h = (BigInt(len) + lo + hi + fold) & M;
    h ^= h >> 37n;
    h = (h * P64_3) & M;
    return h ^ (h >> 32n);
  };
  it("equals the reference on random and extreme bytes at any offset", () => {
    let x = 12345;
    const rnd = () => {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      return x;
    };
    const buf = new Uint8Array(64);
    for (let t = 0; t < 20_000; t++) {
      const mode = t % 4;
      for (let i = 0; i < buf.length; i++) buf[i] = mode === 0 ? 0xff : mode === 1 ? 0 : rnd() & 0xff;
      if (mode < 2) buf[rnd() % 64] = rnd() & 0xff;
      const len = 9 + (t % 8);
      const off = rnd() % (64 - len);
      expect(xxph3_64(buf.subarray(off, off + len))).toBe(reference(buf, off, len));
    }
  });
});

describe("bloom probes", () => {
  it("chooses 6 probes at 10 bits/key and follows the table", () => {
    expect(chooseNumProbes(10000)).toBe(6);
    expect(chooseNumProbes(2080)).toBe(1);
    expect(chooseNumProbes(2081)).toBe(2);
    expect(chooseNumProbes(25501)).toBe(12);
  });
});

describe("shortestSeparator (BytewiseComparator::FindShortestSeparator)", () => {
  const sep = (a: string, b: string) => Buffer.from(shortestSeparator(te.encode(a), a.length, te.encode(b))).toString();
  it("shortens where it can", () => {
    expect(sep("abcdef", "abzz")).toBe("abd");
    expect(sep("key00000035", "key00000036")).toBe("key00000035");
    expect(sep("key00000035", "key00000040")).toBe("key0000004");
    expect(sep("key00000035", "key00000050")).toBe("key0000004");
    expect(sep("abc", "abcd")).toBe("abc"); // prefix: unchanged
    expect(sep("a1zzz", "a2")).toBe("a1{"); // next byte after 1 equals limit's last byte: bump the next non-0xff byte
  });
  it("always gives start <= sep < limit", () => {
    const keys = ["a", "a\u0001", "ab", "abc", "b", "ba", "bb\u00ff", "c"];
    for (let i = 0; i + 1 < keys.length; i++) {
      const s = Buffer.from(shortestSeparator(te.encode(keys[i]), te.encode(keys[i]).length, te.encode(keys[i + 1])));
      expect(Buffer.compare(s, Buffer.from(keys[i]))).toBeGreaterThanOrEqual(0);
      expect(Buffer.compare(s, Buffer.from(keys[i + 1]))).toBeLessThan(0);
    }
  });
});
