/**
 * `ferry events …` and `ferry dlq …` against the embedded stack (the test run's stack, found through
 * FERRY_LOCAL_DIR), with the resources of the synthesized ferry app (local deploy).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../cli/main.js";

process.env.POWERTOOLS_METRICS_DISABLED = "true";
process.env.POWERTOOLS_LOG_LEVEL = "SILENT";

async function ferry(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const ow = process.stdout.write.bind(process.stdout);
  const ew = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((c: string | Uint8Array) => {
    out += String(c);
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array) => {
    err += String(c);
    return true;
  }) as typeof process.stderr.write;
  process.exitCode = undefined;
  try {
    const code = await main(argv);
    return { code, out, err };
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
    process.exitCode = undefined;
  }
}

const dir = mkdtempSync(join(tmpdir(), "ferry-events-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("ferry events / dlq", () => {
  const entity = `cli-${process.pid}-${Date.now()}`;

  it("events send → state; unknown entity → exit 1 + not found", async () => {
    const file = join(dir, "e.jsonl");
    writeFileSync(
      file,
      [
        { entity, id: "e-2", time: 1763790000200, type: "progress", payload: { pos: 2 } },
        { entity, id: "e-1", time: "2025-11-22T05:40:00.100Z", type: "progress", payload: { pos: 1 } },
        { entity, id: "e-2", time: 1763790000200, type: "progress", payload: { pos: 2 } },
        { entity, id: "e 3", time: 1, type: "progress" },
      ]
        .map((e) => JSON.stringify(e))
        .join("\n"),
    );
    const sent = await ferry("events", "send", "--file", file, "--json");
    expect(sent.code, sent.err).toBe(0);
    const s = JSON.parse(sent.out);
    expect(s).toMatchObject({ accepted: 3, rejected: 1, failed: 0, duplicate: 1, parked: 0 });
    expect(s.applied + s.stale).toBe(2); // which of the two is stale depends on the delivery order
    expect(s.rejects[0]).toMatchObject({ line: 4 });
    expect(s.rejects[0].reason).toMatch(/field 'id'/);

    const st = await ferry("events", "state", entity, "--json");
    expect(st.code, st.err).toBe(0);
    const state = JSON.parse(st.out);
    expect(state.entity).toBe(entity);
    expect(state.latest).toMatchObject({ id: "e-2", time: 1763790000200, payload: { pos: 2 } });
    expect(state.history.map((e: { id: string }) => e.id)).toEqual(["e-1", "e-2"]);

    const missing = await ferry("events", "state", `${entity}-nobody`);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/not found/);
  }, 300_000);

  it("events demo --json: ok, counts add up; dlq list shows the parked poison; dlq redrive parks it again", async () => {
    const d = await ferry(
      "events",
      "demo",
      "--events",
      "120",
      "--duplicates",
      "25",
      "--shuffle",
      "--malformed",
      "10",
      "--json",
    );
    expect(d.code, d.err).toBe(0);
    const r = JSON.parse(d.out.trim().split("\n").pop()!);
    expect(r).toMatchObject({ ok: true, mismatches: 0, inFlight: 0 });
    expect(r.accepted + r.direct).toBe(r.applied + r.duplicate + r.stale + r.parked);
    expect(r.duplicate).toBeGreaterThanOrEqual(30);
    expect(r.parked).toBe(6);
    expect(r.rejected).toBe(6);

    const l = await ferry("dlq", "list", "--json");
    expect(l.code, l.err).toBe(0);
    const list = JSON.parse(l.out);
    expect(list.count).toBeGreaterThanOrEqual(r.parked);
    expect(list.messages[0].reason).toBeTruthy();

    const rd = await ferry("dlq", "redrive", "--json");
    expect(rd.code, rd.err).toBe(0);
    const red = JSON.parse(rd.out);
    expect(red.moved).toBe(list.count);
    expect(red.parked).toBe(list.count); // poison stays poison: parked again with its reason
    const l2 = JSON.parse((await ferry("dlq", "list", "--json")).out);
    expect(l2.count).toBe(list.count);
  }, 400_000);
});
