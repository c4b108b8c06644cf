/**
 * Idempotence of the bulk-load pipeline on the local stack:
 * - with the runner's fault injector failing 20% of task attempts (after the handler ran, and before), the manifest
 *   (files, counts, checksums; timestamps and the version name aside) equals a clean run's;
 * - re-running a finished version is a no-op (same execution name: the same execution; a new name: Plan says
 *   alreadyDone and nothing is rewritten);
 * - a version that died mid-way (plan + some partitions done) is resumed: finished chunks are reused, not redone.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { getVersion } from "../../core/control/versions.js";
import { getJson, getJsonl, putJson } from "../../core/manifest/s3.js";
import { manifestKey } from "../../core/manifest/schema.js";
import type { PlanPointer } from "../../core/pipeline/plan.js";
import type { Chunk, PartitionResult } from "../../core/pipeline/types.js";
import type { Manifest } from "../../core/manifest/schema.js";
import {
  type DeployedPipeline,
  deployPipeline,
  prng,
  putObject,
  readPublished,
} from "../integration/pipeline-helpers.js";

const prefix = `pi${Date.now().toString(36)}-`;
let p: DeployedPipeline;
const D = "idem";

function request(version: string) {
  return {
    dataset: D,
    version,
    input: `s3://${p.names.dataBucket}/input/idem/`,
    format: "jsonl",
    key: ["id"],
    shards: 4,
    duplicates: "last",
  };
}

/**
 * The manifest as it must be equal between runs: no timestamp, no version name; files with their sizes and sha256
 * (Build writes reproducible SST bytes: no random session identity). The entries are compared too.
 */
function comparable(m: Manifest) {
  const { createdAt: _c, version: _v, ...rest } = m;
  return rest;
}
let cleanEntries: Map<string, string>;

function fnByEntry(suffix: string): string {
  const f = Object.values(p.deployment.functions).find((x) => x.entry?.endsWith(suffix));
  if (!f) throw new Error(`no function ${suffix}`);
  return f.logicalId;
}

beforeAll(async () => {
  p = await deployPipeline(prefix);
  const r = prng(7);
  // 5 objects (5 chunks), keys repeated across objects (duplicates=last keeps the later one)
  for (let o = 0; o < 5; o++) {
    let body = "";
    for (let i = 0; i < 600; i++) {
      const id = `k${Math.floor(r() * 2000)}`;
      body += `${JSON.stringify({ id, obj: o, i, pad: "x".repeat(Math.floor(r() * 40)) })}\n`;
    }
    await putObject(p.names.dataBucket, `input/idem/part-${o}.jsonl`, body);
  }
}, 300_000);

describe("idempotence", () => {
  let clean: Manifest;

  it("a clean run", async () => {
    const rec = await p
      .runner()
      .runExecution(p.names.stateMachine, { name: `${D}-clean`, input: { request: request("clean") } });
    expect(rec.error ? `${rec.error}: ${rec.cause}` : rec.status).toBe("SUCCEEDED");
    const pub = await readPublished(p.names.dataBucket, D, "clean");
    clean = pub.manifest;
    cleanEntries = pub.entries;
    expect(clean.counts.duplicates).toBeGreaterThan(0);
    expect(clean.counts.entries).toBe(clean.counts.recordsIn - clean.counts.duplicates);
  }, 180_000);

  for (const when of ["after", "before"] as const) {
    it(`20% of task attempts failing (${when} the handler) → the same manifest`, async () => {
      const runner = p.runner({
        // a 20% rate can draw no fault at all in a 12-task execution (0.8^12 ≈ 7%): PartitionChunk's and
        // Publish's first attempts always fail too, so every run exercises a retry after (or before) side effects
        fault: { rate: 0.2, seed: `seed-${when}-1`, when, firstAttemptOf: ["PartitionChunk", "Publish"] },
      });
      let injected = 0;
      runner.onProgress((e) => {
        if (e.type === "faultInjected") injected++;
      });
      const v = `faulty-${when}`;
      const rec = await runner.runExecution(p.names.stateMachine, {
        name: `${D}-${v}`,
        input: { request: request(v) },
      });
      expect(rec.error ? `${rec.error}: ${rec.cause}` : rec.status).toBe("SUCCEEDED");
      expect(injected).toBeGreaterThanOrEqual(6); // 5 chunks + Publish, at least
      const pub = await readPublished(p.names.dataBucket, D, v);
      expect(comparable(pub.manifest)).toEqual(comparable(clean));
      expect(pub.entries).toEqual(cleanEntries);
    }, 300_000);
  }

  it("re-running a finished version is a no-op", async () => {
    const before = await getJson<Manifest>(p.names.dataBucket, manifestKey(D, "clean"));
    const itemBefore = await getVersion(p.names.controlTable, D, "clean");
    // the same execution name: the runner returns the finished execution
    const h = await p
      .runner()
      .startExecution(p.names.stateMachine, { name: `${D}-clean`, input: { request: request("clean") } });
    expect(h.existing).toBe(true);
    expect((await h.done).status).toBe("SUCCEEDED");
    // a new execution name (e.g. a trigger firing twice): Plan says alreadyDone, nothing runs
    const rec = await p
      .runner()
      .runExecution(p.names.stateMachine, { name: `${D}-clean-again`, input: { request: request("clean") } });
    expect(rec.status).toBe("SUCCEEDED");
    expect((rec.output as PlanPointer).alreadyDone).toBe(true);
    const after = await getJson<Manifest>(p.names.dataBucket, manifestKey(D, "clean"));
    expect(after).toEqual(before);
    const itemAfter = await getVersion(p.names.controlTable, D, "clean");
    expect(itemAfter?.status).toBe(itemBefore?.status);
    expect(itemAfter?.timings).toEqual(itemBefore?.timings);
  }, 180_000);

  it("a version that died mid-way is resumed: finished chunks are reused", async () => {
    const v = "resumed";
    // what a crashed execution left: Plan done, two of five chunks partitioned
    const pointer = (await p.deployment.invoke(fnByEntry("functions/bulk-load/plan.ts"), {
      input: { request: request(v) },
      execution: "crashed",
    })) as PlanPointer;
    expect(pointer.chunks).toBe(5);
    const chunks = await getJsonl<Chunk>(p.names.dataBucket, pointer.chunksKey);
    const partitionFn = fnByEntry("functions/bulk-load/partition.ts");
    for (const c of chunks.slice(0, 2)) {
      await p.deployment.invoke(partitionFn, { chunk: c, dataBucket: p.names.dataBucket, planKey: pointer.planKey });
      // tag the stored result: if the chunk were partitioned again, the tag would be gone
      const key = `${pointer.resultsPrefix}partition/${c.id}.json`;
      const r = await getJson<PartitionResult & { tag?: string }>(p.names.dataBucket, key);
      await putJson(p.names.dataBucket, key, { ...r, tag: "first-attempt" });
    }
    expect((await getVersion(p.names.controlTable, D, v))?.status).toBe("PLANNED");

    const rec = await p
      .runner()
      .runExecution(p.names.stateMachine, { name: `${D}-${v}`, input: { request: request(v) } });
    expect(rec.error ? `${rec.error}: ${rec.cause}` : rec.status).toBe("SUCCEEDED");
    for (const c of chunks.slice(0, 2)) {
      const r = await getJson<{ tag?: string }>(p.names.dataBucket, `${pointer.resultsPrefix}partition/${c.id}.json`);
      expect(r.tag).toBe("first-attempt");
    }
    for (const c of chunks.slice(2)) {
      const r = await getJson<{ tag?: string }>(p.names.dataBucket, `${pointer.resultsPrefix}partition/${c.id}.json`);
      expect(r.tag).toBeUndefined();
    }
    const pub = await readPublished(p.names.dataBucket, D, v);
    expect(comparable(pub.manifest)).toEqual(comparable(clean));
    expect(pub.entries).toEqual(cleanEntries);
  }, 180_000);
});
