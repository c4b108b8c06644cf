import { describe, expect, it } from "vitest";
import { murmur3_32, shardOf } from "../../core/shuffle/shard.js";

const enc = new TextEncoder();

describe("shard function (murmur3_32, seed 0)", () => {
  it("matches the reference MurmurHash3 x86_32 vectors", () => {
    expect(murmur3_32(enc.encode(""))).toBe(0);
    expect(murmur3_32(enc.encode("hello"))).toBe(0x248bfa47);
    expect(murmur3_32(enc.encode("abc"))).toBe(0xb3dd93fa);
    expect(murmur3_32(enc.encode("The quick brown fox jumps over the lazy dog"))).toBe(0x2e4ff723);
    expect(murmur3_32(enc.encode("hello"), 1)).toBe(0xbb4abcad);
  });
  it("spreads keys over shards", () => {
    const counts = new Array(8).fill(0);
    for (let i = 0; i < 80_000; i++) counts[shardOf(enc.encode(`user-${i}`), 8)]++;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500);
  });
});
