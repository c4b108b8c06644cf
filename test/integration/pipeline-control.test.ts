/**
 * The control table's version and dataset items on the local DynamoDB stand-in: conditional registration (same plan
 * = same version, different plan = conflict, published = already done, FAILED = re-planned), forward-only status
 * transitions (repeats are no-ops, backward moves are conflicts, FAILED from any non-terminal), activation as a
 * compare-and-set that keeps the previous version, retirement beyond keepVersions.
 */
import { CreateTableCommand } from "@aws-sdk/client-dynamodb";
import { beforeAll, describe, expect, it } from "vitest";
import { dynamoRaw } from "../../core/aws/clients.js";
import { activateVersion, getDataset, retireOldVersions } from "../../core/control/datasets.js";
import {
  canTransition,
  failVersion,
  getVersion,
  registerVersion,
  transitionVersion,
} from "../../core/control/versions.js";
import { ConflictError } from "../../core/errors.js";
import { parseLoadRequest } from "../../core/pipeline/config.js";

const table = `pipe-control-${Date.now().toString(36)}`;
const req = (dataset: string, version: string, extra: Record<string, unknown> = {}) =>
  parseLoadRequest({ dataset, version, input: "s3://bucket-x/in/", format: "jsonl", key: "id", ...extra });

beforeAll(async () => {
  await dynamoRaw().send(
    new CreateTableCommand({
      TableName: table,
      KeySchema: [
        { AttributeName: "pk", KeyType: "HASH" },
        { AttributeName: "sk", KeyType: "RANGE" },
      ],
      AttributeDefinitions: [
        { AttributeName: "pk", AttributeType: "S" },
        { AttributeName: "sk", AttributeType: "S" },
      ],
      BillingMode: "PAY_PER_REQUEST",
    }),
  );
});

describe("version items", () => {
  it("the transition rules", () => {
    expect(canTransition("PLANNED", "PARTITIONED")).toBe(true);
    expect(canTransition("STAGED", "ACTIVE")).toBe(true);
    expect(canTransition("ACTIVE", "STAGED")).toBe(false);
    expect(canTransition("LOADING", "FAILED")).toBe(true);
    expect(canTransition("ACTIVE", "FAILED")).toBe(false);
    expect(canTransition("FAILED", "PLANNED")).toBe(false);
  });

  it("registration is conditional: same plan continues, a different plan conflicts", async () => {
    const a = await registerVersion(table, { request: req("d1", "v1"), planHash: "h1", planKey: "k" });
    expect(a.outcome).toBe("created");
    expect(a.item.status).toBe("PLANNED");
    const again = await registerVersion(table, { request: req("d1", "v1"), planHash: "h1", planKey: "k" });
    expect(again.outcome).toBe("same-plan");
    await expect(
      registerVersion(table, { request: req("d1", "v1", { shards: 3 }), planHash: "h2", planKey: "k" }),
    ).rejects.toThrow(/already planned with different settings/);
  });

  it("status moves forward only; repeats are no-ops; counts merge", async () => {
    await transitionVersion(table, "d1", "v1", "PARTITIONED", { counts: { records: 10 } });
    const again = await transitionVersion(table, "d1", "v1", "PARTITIONED", { counts: { records: 10 } });
    expect(again.status).toBe("PARTITIONED");
    await expect(transitionVersion(table, "d1", "v1", "PLANNED")).rejects.toBeInstanceOf(ConflictError);
    const staged = await transitionVersion(table, "d1", "v1", "STAGED", {
      counts: { entries: 9 },
      bytes: 123,
      manifestKey: "m",
    });
    expect(staged.counts).toMatchObject({ records: 10, entries: 9 });
    expect(staged.bytes).toBe(123);
    expect(Object.keys(staged.timings).sort()).toEqual(["PARTITIONED", "PLANNED", "STAGED"]);
  });

  it("a published version registers as already done", async () => {
    const r = await registerVersion(table, { request: req("d1", "v1"), planHash: "h1", planKey: "k" });
    expect(r.outcome).toBe("already-done");
  });

  it("FAILED from a non-terminal status keeps the error; re-planning the same plan counts attempts", async () => {
    await registerVersion(table, { request: req("d1", "v2"), planHash: "h", planKey: "k" });
    const f = await failVersion(table, "d1", "v2", { error: "InputError", cause: "s3://b/k line 3: bad" });
    expect(f?.status).toBe("FAILED");
    expect(f?.error).toMatchObject({ error: "InputError", cause: "s3://b/k line 3: bad" });
    // FAILED is terminal for transitions
    await expect(transitionVersion(table, "d1", "v2", "PARTITIONED")).rejects.toBeInstanceOf(ConflictError);
    const r = await registerVersion(table, { request: req("d1", "v2"), planHash: "h", planKey: "k" });
    expect(r.outcome).toBe("replanned");
    expect(r.item.status).toBe("PLANNED");
    expect(r.item.attempts).toBe(2);
    expect(r.item.error).toBeUndefined();
    // an ACTIVE version cannot fail any more (a STAGED or LOADING one can: e.g. the hosts never loaded it)
    await transitionVersion(table, "d1", "v1", "ACTIVE");
    const pub = await failVersion(table, "d1", "v1", { error: "E", cause: "c" });
    expect(pub?.status).toBe("ACTIVE");
  });
});

describe("dataset items", () => {
  it("activation is a compare-and-set that keeps the previous version", async () => {
    for (const v of ["a", "b", "c", "d"]) {
      await registerVersion(table, { request: req("d2", v), planHash: v, planKey: "k" });
      await transitionVersion(table, "d2", v, "STAGED");
    }
    const r1 = await activateVersion(table, "d2", "a");
    expect(r1).toEqual({ activeVersion: "a", previousVersion: undefined, changed: true });
    const r2 = await activateVersion(table, "d2", "b");
    expect(r2).toMatchObject({ activeVersion: "b", previousVersion: "a", changed: true });
    expect((await activateVersion(table, "d2", "b")).changed).toBe(false);
    const ds = await getDataset(table, "d2");
    expect(ds).toMatchObject({ activeVersion: "b", previousVersion: "a", activeSeq: 2 });
    expect((await getVersion(table, "d2", "b"))?.status).toBe("ACTIVE");
    // concurrent activations: exactly one order wins each compare-and-set, none is lost
    await Promise.all([activateVersion(table, "d2", "c"), activateVersion(table, "d2", "d")]);
    const after = await getDataset(table, "d2");
    expect(["c", "d"]).toContain(after?.activeVersion);
    expect(["c", "d"]).toContain(after?.previousVersion);
    expect(after?.activeSeq).toBe(4);
  });

  it("a version that is not published cannot be activated", async () => {
    await registerVersion(table, { request: req("d2", "e"), planHash: "e", planKey: "k" });
    await expect(activateVersion(table, "d2", "e")).rejects.toThrow(/only a published version/);
  });

  it("retires versions beyond keepVersions, never the active or previous one", async () => {
    const retired = await retireOldVersions(table, "d2", 2);
    const ds = await getDataset(table, "d2");
    expect(retired).not.toContain(ds?.activeVersion);
    expect(retired).not.toContain(ds?.previousVersion);
    expect(retired.sort()).toEqual(["a", "b"]);
    expect((await getVersion(table, "d2", "a"))?.status).toBe("RETIRED");
  });
});
