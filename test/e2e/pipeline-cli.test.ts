/**
 * The `ferry` commands of the pipeline, in process against the test run's local stack: `ferry load` of a local file
 * (uploaded, run through the app's synthesized state machine), `--json` output, `status`, `versions`, `pull` (sha256
 * checked), a failing load (exit 1, one clear message, JSON with the error), a usage error (exit 2).
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { main } from "../../cli/main.js";
import { SstReader } from "../../core/sst/index.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "ferry-pipe-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function ferry(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const o = vi.spyOn(process.stdout, "write").mockImplementation((c: string | Uint8Array) => {
    stdout += String(c);
    return true;
  });
  const e = vi.spyOn(process.stderr, "write").mockImplementation((c: string | Uint8Array) => {
    stderr += String(c);
    return true;
  });
  try {
    process.exitCode = undefined;
    const code = await main(args);
    return { code, stdout, stderr };
  } finally {
    o.mockRestore();
    e.mockRestore();
    process.exitCode = undefined;
  }
}

const D = `cli${Date.now().toString(36)}`;

describe("ferry load / status / versions / pull", () => {
  it("loads a local JSONL file and prints one JSON object", async () => {
    const file = path.join(dir, "users.jsonl");
    writeFileSync(file, Array.from({ length: 1000 }, (_, i) => `{"id":"u${i}","n":${i}}\n`).join(""));
    const r = await ferry(
      "load",
      "--dataset",
      D,
      "--input",
      file,
      "--format",
      "jsonl",
      "--key",
      "id",
      "--shards",
      "3",
      "--version",
      "v1",
      "--json",
    );
    expect(r.stderr).not.toMatch(/^ferry: /m);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout.trim());
    expect(out).toMatchObject({
      dataset: D,
      version: "v1",
      status: "ACTIVE",
      records: 1000,
      duplicates: 0,
      skipped: 0,
      entries: 1000,
    });
    expect(out.files).toBeGreaterThanOrEqual(3);
    expect(out.bytes).toBeGreaterThan(0);
    expect(out.manifest).toMatch(new RegExp(`^s3://.*/versions/${D}/v1/manifest.json$`));
    expect(Object.keys(out.phases)).toEqual(
      expect.arrayContaining(["plan", "partition", "build", "publish", "activate"]),
    );
    expect(r.stderr).toContain("partition");
  }, 300_000);

  it("loading the same version again is a no-op", async () => {
    const file = path.join(dir, "users.jsonl");
    const r = await ferry(
      "load",
      "--dataset",
      D,
      "--input",
      file,
      "--format",
      "jsonl",
      "--key",
      "id",
      "--shards",
      "3",
      "--version",
      "v1",
      "--json",
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout.trim())).toMatchObject({ status: "ACTIVE", records: 1000 });
  }, 120_000);

  it("status and versions", async () => {
    const s = await ferry("status", D, "--json");
    expect(s.code).toBe(0);
    expect(JSON.parse(s.stdout)).toMatchObject({ dataset: D, activeVersion: "v1", inFlight: [] });
    const v = await ferry("versions", D, "--json");
    expect(v.code).toBe(0);
    const vs = JSON.parse(v.stdout);
    expect(vs.versions[0]).toMatchObject({ version: "v1", status: "ACTIVE", active: true, entries: 1000 });
  }, 120_000);

  it("pull writes the manifest and every SST, checked", async () => {
    const to = path.join(dir, "pulled");
    const r = await ferry("pull", D, "--to", to, "--json");
    expect(r.code).toBe(0);
    const m = JSON.parse(readFileSync(path.join(to, "manifest.json"), "utf8"));
    let entries = 0;
    for (const f of m.files) {
      const reader = await SstReader.open(path.join(to, f.path));
      entries += reader.entries;
      await reader.close();
    }
    expect(entries).toBe(1000);
    expect(readdirSync(to).filter((n) => n.startsWith("shard=")).length).toBe(3);
  }, 120_000);

  it("a failing load exits 1 with one message naming the line, and --json carries the error", async () => {
    const file = path.join(dir, "bad.jsonl");
    writeFileSync(file, `{"id":"a"}\n{"id":\n`);
    const r = await ferry(
      "load",
      "--dataset",
      D,
      "--input",
      file,
      "--format",
      "jsonl",
      "--key",
      "id",
      "--version",
      "v2",
      "--json",
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^ferry: load of .*\/v2 failed: InputError: .*bad\.jsonl line 2/m);
    expect(JSON.parse(r.stdout.trim())).toMatchObject({
      dataset: D,
      version: "v2",
      status: "FAILED",
      error: "InputError",
    });
    const s = await ferry("status", D, "--json");
    expect(JSON.parse(s.stdout).activeVersion).toBe("v1");
  }, 120_000);

  it("bad options fail before anything runs", async () => {
    const r = await ferry("load", "--dataset", "Bad Name", "--input", "s3://b/x", "--format", "jsonl", "--key", "id");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("field 'dataset'");
    const u = await ferry("load", "--dataset", D);
    expect(u.code).toBe(2);
  });
});
