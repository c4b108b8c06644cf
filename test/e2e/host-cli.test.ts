/**
 * The CLI contract of the host area: `ferry host` (a real child process through cli/bin.mjs), `ferry get`,
 * `ferry rollback` against the local stack.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { cutoverStep, listHosts, signalStep, waitForHostsStep } from "../../core/control/fleet.js";
import { ENV } from "../../core/env.js";
import { main } from "../../cli/main.js";
import { createBucket, createControlTable, dropTable, uniq } from "../integration/fleet-helpers.js";
import { hostGet, makeRecords, stageVersion, waitFor } from "../integration/host-helpers.js";

let table: string;
let bucket: string;
let child: ChildProcess | undefined;
const dataDir = mkdtempSync(join(tmpdir(), "ferry-host-cli-"));

beforeAll(async () => {
  table = await createControlTable();
  bucket = await createBucket();
  process.env[ENV.controlTable] = table;
  process.env[ENV.dataBucket] = bucket;
});
afterAll(async () => {
  if (child && child.exitCode === null) child.kill("SIGKILL");
  await dropTable(table);
  rmSync(dataDir, { recursive: true, force: true });
});

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const o = vi.spyOn(process.stdout, "write").mockImplementation((s) => {
    out += String(s);
    return true;
  });
  const e = vi.spyOn(process.stderr, "write").mockImplementation((s) => {
    err += String(s);
    return true;
  });
  process.exitCode = undefined;
  try {
    const code = await main(args);
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
    process.exitCode = undefined;
  }
}

describe("ferry host / get / rollback", { timeout: 180_000 }, () => {
  it("serves, routes gets, rolls back, stops on SIGTERM", async () => {
    const fleet = uniq("fleet");
    const dataset = uniq("ds");
    const v1 = await stageVersion({ bucket, dataset, version: "v1", shards: 2, records: makeRecords(30, "one") });
    await stageVersion({ bucket, dataset, version: "v2", shards: 2, records: makeRecords(30, "two") });

    child = spawn(
      process.execPath,
      ["cli/bin.mjs", "host", "--fleet", fleet, "--shards", "0-1", "--data-dir", dataDir, "--store", "sst", "--json"],
      { env: { ...process.env }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stderr = "";
    child.stderr?.on("data", (c) => {
      stderr += String(c);
    });
    const ready = await new Promise<{ endpoint: string; hostId: string }>((res, rej) => {
      let buf = "";
      child?.stdout?.on("data", (c) => {
        buf += String(c);
        const nl = buf.indexOf("\n");
        if (nl >= 0) res(JSON.parse(buf.slice(0, nl)));
      });
      child?.once("exit", (code) => rej(new Error(`ferry host exited ${code}: ${stderr}`)));
    });
    expect(ready.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    for (const version of ["v1", "v2"]) {
      const s = await signalStep(table, { dataset, version, fleet, bucket }, async () => 2);
      await waitFor(async () => (await waitForHostsStep(table, s)).covered, `${version} covered`, 30_000);
      await cutoverStep(table, s);
    }
    await waitFor(async () => (await hostGet(ready.endpoint, dataset, "key-000004")).version === "v2", "on v2");

    const g = await run(["get", dataset, "key-000004", "--json"]);
    expect(g.code).toBe(0);
    expect(JSON.parse(g.out)).toMatchObject({ found: true, value: "two:4", version: "v2", host: ready.hostId });
    const plain = await run(["get", dataset, "key-000005"]);
    expect(plain).toMatchObject({ code: 0, out: "two:5\n" });
    const missing = await run(["get", dataset, "nope"]);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain("not found");

    const rb = await run(["rollback", dataset, "--json"]);
    expect(rb.code).toBe(0);
    expect(JSON.parse(rb.out)).toMatchObject({ activeVersion: "v1", previousVersion: "v2", fleet });
    await waitFor(async () => (await hostGet(ready.endpoint, dataset, "key-000004")).version === "v1", "back on v1");
    expect(JSON.parse((await run(["get", dataset, "key-000004", "--json"])).out).value).toBe(
      v1.records.get("key-000004"),
    );

    const usage = await run(["host", "--fleet", fleet, "--shards", "3-1", "--data-dir", dataDir]);
    expect(usage.code).toBe(1);
    expect(usage.err).toContain("backwards");

    const exited = new Promise((r) => child?.once("exit", r));
    child.kill("SIGTERM");
    await exited;
    expect(child.exitCode).toBe(0);
    expect(await listHosts(table, fleet)).toEqual([]);
  });
});
