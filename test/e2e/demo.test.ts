import { describe, expect, it } from "vitest";
import { main } from "../../cli/main.js";

/**
 * `ferry demo --json` end to end, small: the contract scripts read (ok, mismatches, recordsVerified), exit code 0.
 * The events part is left out here (--events 0): test/e2e/events-cli.test.ts runs it, on the same default table.
 */
describe("ferry demo", () => {
  it("loads v1, cuts over to v2, rolls back — every sampled key matches", async () => {
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    }) as typeof process.stdout.write;
    let code: number;
    try {
      code = await main(["demo", "--records", "3000", "--sample", "300", "--events", "0", "--store", "sst", "--json"]);
    } finally {
      process.stdout.write = write;
    }
    const result = JSON.parse(out.join("").trim().split("\n").pop() ?? "{}");
    expect(code).toBe(0);
    expect(result).toMatchObject({ ok: true, mismatches: 0, records: 3000, store: "sst" });
    // three verification phases of 300 keys each
    expect(result.recordsVerified).toBe(900);
    expect(result.phases.map((p: { phase: string }) => p.phase)).toContain("roll back to v1");
  }, 300_000);
});
