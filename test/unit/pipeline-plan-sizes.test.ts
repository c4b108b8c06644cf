import { describe, expect, it } from "vitest";
import { PIPELINE } from "../../core/limits.js";
import { scaledSizes } from "../../core/pipeline/plan.js";

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
/** Build's segment reads for an input: chunks × buckets */
const reads = (input: number) => {
  const s = scaledSizes(input);
  return Math.ceil(input / s.chunkBytes) * Math.ceil(input / s.bucketTargetBytes);
};

describe("Plan's chunk size and bucket target grow with the input", () => {
  it("keep the defaults up to the crossover", () => {
    for (const input of [0, 1e6, 1e9, 16 * GiB]) {
      expect(scaledSizes(input)).toEqual({
        chunkBytes: PIPELINE.chunkBytes,
        bucketTargetBytes: PIPELINE.bucketTargetBytes,
      });
    }
    // past 16 GiB chunks grow first (the bucket target is larger), past 64 GiB both
    expect(scaledSizes(32 * GiB).chunkBytes).toBeGreaterThan(PIPELINE.chunkBytes);
    expect(scaledSizes(32 * GiB).bucketTargetBytes).toBe(PIPELINE.bucketTargetBytes);
    expect(scaledSizes(100 * GiB).bucketTargetBytes).toBeGreaterThan(PIPELINE.bucketTargetBytes);
  });

  it("keep the average segment a Build reads at least minSegmentBytes, up to the size cap", () => {
    for (const input of [20 * GiB, 64 * GiB, 1e12, 5e13, 60 * 1024 * GiB]) {
      const s = scaledSizes(input);
      expect(s.chunkBytes % MiB).toBe(0);
      expect(s.chunkBytes).toBeLessThanOrEqual(PIPELINE.maxScaledBytes);
      expect(input / reads(input)).toBeGreaterThanOrEqual(PIPELINE.minSegmentBytes * 0.99);
    }
    // 50 TB: ~6.7 GiB chunks and buckets, ~7,000 of each, ~5×10⁷ segment reads (fixed sizes: ~6.9×10¹⁰)
    const s = scaledSizes(5e13);
    expect(s.chunkBytes / GiB).toBeCloseTo(6.74, 1);
    expect(s.bucketTargetBytes).toBe(s.chunkBytes);
    expect(reads(5e13)).toBeLessThan(5.2e7);
    expect(Math.ceil(5e13 / PIPELINE.chunkBytes) * Math.ceil(5e13 / PIPELINE.bucketTargetBytes)).toBeGreaterThan(
      6.5e10,
    );
  });

  it("stop at maxScaledBytes (past ~64 TiB segments shrink instead) and never shrink", () => {
    expect(scaledSizes(1e15)).toEqual({
      chunkBytes: PIPELINE.maxScaledBytes,
      bucketTargetBytes: PIPELINE.maxScaledBytes,
    });
    let prev = scaledSizes(0);
    for (let input = 1e9; input < 1e16; input *= 1.7) {
      const s = scaledSizes(input);
      expect(s.chunkBytes).toBeGreaterThanOrEqual(prev.chunkBytes);
      expect(s.bucketTargetBytes).toBeGreaterThanOrEqual(prev.bucketTargetBytes);
      prev = s;
    }
  });
});
