import { describe, expect, it } from "vitest";
import { TransientError } from "../../core/errors.js";
import { FaultInjector, faultConfigFromEnv } from "../../local/sfn/faults.js";

describe("FaultInjector", () => {
  it("rate 0 injects nothing", () => {
    const f = new FaultInjector({ rate: 0, seed: "s", when: "after" });
    for (let i = 0; i < 100; i++) expect(f.next("arn", "Map/Task", { i })).toBeUndefined();
    expect(f.injected).toBe(0);
  });

  it("firstAttemptOf fails exactly the first attempt of each call to the named states, even at rate 0", () => {
    const f = new FaultInjector({ rate: 0, seed: "s", when: "before", firstAttemptOf: ["Publish", "PartitionChunk"] });
    expect(f.next("arn", "Publish", { a: 1 })).toBeInstanceOf(TransientError);
    expect(f.next("arn", "Publish", { a: 1 })).toBeUndefined(); // the retry goes through
    expect(f.next("arn", "Partition/PartitionChunk", { c: 1 })).toBeInstanceOf(TransientError);
    expect(f.next("arn", "Partition/PartitionChunk", { c: 2 })).toBeInstanceOf(TransientError); // another item
    expect(f.next("arn", "Partition/PartitionChunk", { c: 1 })).toBeUndefined();
    expect(f.next("arn", "Plan", {})).toBeUndefined();
    expect(f.injected).toBe(3);
  });

  it("is deterministic for a seed and near the rate", () => {
    const run = (seed: string) => {
      const f = new FaultInjector({ rate: 0.2, seed, when: "after" });
      return Array.from({ length: 2000 }, (_, i) => f.next("arn", "T", { i }) !== undefined);
    };
    const a = run("x");
    expect(run("x")).toEqual(a);
    expect(run("y")).not.toEqual(a);
    const share = a.filter(Boolean).length / a.length;
    expect(share).toBeGreaterThan(0.15);
    expect(share).toBeLessThan(0.25);
  });

  it("reads its config from the environment and rejects bad values", () => {
    expect(faultConfigFromEnv({ FERRY_FAULT_RATE: "0.5", FERRY_FAULT_WHEN: "before" })).toMatchObject({
      rate: 0.5,
      when: "before",
    });
    expect(() => faultConfigFromEnv({ FERRY_FAULT_RATE: "2" })).toThrow(/FERRY_FAULT_RATE=2/);
    expect(() => faultConfigFromEnv({ FERRY_FAULT_WHEN: "during" })).toThrow(/before.*after/);
  });
});

describe("FaultInjector maxPerCall", () => {
  it("never fails more than maxPerCall attempts of one call, even at rate 1", () => {
    const f = new FaultInjector({ rate: 1, seed: "s", when: "after", maxPerCall: 2 });
    expect(f.next("arn", "T", { a: 1 })).toBeInstanceOf(TransientError);
    expect(f.next("arn", "T", { a: 1 })).toBeInstanceOf(TransientError);
    expect(f.next("arn", "T", { a: 1 })).toBeUndefined();
    const d = new FaultInjector({ rate: 1, seed: "s", when: "after" }); // default 3
    const fails = Array.from({ length: 6 }, () => d.next("arn", "T", {}) !== undefined);
    expect(fails).toEqual([true, true, true, false, false, false]);
  });
});
