import { describe, expect, it } from "vitest";
import { assignShards, parseShards } from "../../host/main.js";

describe("shard specs and assignment", () => {
  it("parses --shards forms", () => {
    expect(parseShards("0-3")).toEqual([0, 1, 2, 3]);
    expect(parseShards("0,2,5")).toEqual([0, 2, 5]);
    expect(parseShards("5,0-1,1")).toEqual([0, 1, 5]);
    for (const bad of ["", "a", "3-1", "1-", "-1", "0,,2"]) expect(() => parseShards(bad), bad).toThrow();
  });

  it("gives every shard `replicas` distinct hosts", () => {
    for (const [h, s, r] of [
      [3, 8, 2],
      [1, 4, 1],
      [5, 16, 3],
      [4, 2, 2],
    ]) {
      const a = assignShards(h, s, r);
      expect(a).toHaveLength(h);
      for (let shard = 0; shard < s; shard++) expect(a.filter((l) => l.includes(shard))).toHaveLength(r);
    }
    expect(assignShards(3, 8, 2)).toEqual([
      [0, 2, 3, 5, 6],
      [0, 1, 3, 4, 6, 7],
      [1, 2, 4, 5, 7],
    ]);
    expect(() => assignShards(2, 8, 3)).toThrow(/at least 3 hosts/);
  });
});
