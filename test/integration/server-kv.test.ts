/**
 * The reference KV server over real stores (sst backend always; rocksdb too when librocksdb loads — required under
 * CI=true). Real HTTP on 127.0.0.1, no mocks.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HOST } from "../../core/limits.js";
import { shardOf } from "../../core/shuffle/shard.js";
import { createKvServer, type KvServer, StaticResolver } from "../../host/server/index.js";
import { openBackend, rocksdbBackend } from "../../host/store/index.js";
import type { BackendName, VersionStore } from "../../host/store/types.js";
import { buildSst } from "../interop/store-suite.js";

// biome-ignore lint/suspicious/noExplicitAny: JSON bodies in assertions
type Json = any;
const json = async (r: Response): Promise<Json> => r.json();

const SHARDS = 4;
const OWNED = [0, 2];

const backends: BackendName[] = ["sst"];
if (rocksdbBackend.available() === true || process.env.CI === "true") backends.push("rocksdb");
else process.stderr.write(`\n*** server tests: rocksdb backend skipped: ${rocksdbBackend.available()} ***\n\n`);

/** keys k0..k(n-1) whose shard is owned; values "val-<key>" (plus a binary key) */
function ownedKeys(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) {
    const k = `user/${i}`;
    if (OWNED.includes(shardOf(Buffer.from(k), SHARDS))) out.push(k);
  }
  return out;
}
function foreignKey(): string {
  for (let i = 0; ; i++) {
    const k = `user/${i}`;
    if (!OWNED.includes(shardOf(Buffer.from(k), SHARDS))) return k;
  }
}

for (const name of backends) {
  describe(`kv server on the ${name} store`, () => {
    let root: string;
    let server: KvServer;
    let resolver: StaticResolver;
    let v1: VersionStore;
    const keys = ownedKeys(200);
    const binKey = Buffer.from([0x00, 0xff, 0x10]);

    async function makeVersion(version: string, tag: string): Promise<VersionStore> {
      const store = await openBackend(name).open(join(root, version), "users", version);
      const entries: [Buffer, Buffer][] = keys.map((k) => [Buffer.from(k), Buffer.from(`${tag}-${k}`)]);
      if (OWNED.includes(shardOf(binKey, SHARDS))) entries.push([binKey, Buffer.from([1, 2, 0xfe])]);
      entries.sort((a, b) => Buffer.compare(a[0], b[0]));
      const f = join(root, "in", `${version}.sst`);
      await buildSst(f, entries);
      await store.ingest([f]);
      return store;
    }

    beforeAll(async () => {
      root = mkdtempSync(join(tmpdir(), `ferry-server-${name}-`));
      mkdirSync(join(root, "in"));
      resolver = new StaticResolver("host-a", "fleet-1", OWNED);
      v1 = await makeVersion("v1", "one");
      resolver.setActive("users", { version: "v1", shards: OWNED, shardCount: SHARDS, store: v1 });
      resolver.setOwner("users", 1, "http://127.0.0.1:1");
      server = await createKvServer({ resolver });
    });
    afterAll(async () => {
      await server?.close();
      await v1?.destroy();
      rmSync(root, { recursive: true, force: true });
    });

    const get = (path: string, init?: RequestInit) => fetch(`${server.url}${path}`, init);

    it("GET a key: 200 with the value bytes, version and shard headers", async () => {
      const k = keys[7];
      const r = await get(`/v1/datasets/users/keys/${encodeURIComponent(k)}`);
      expect(r.status).toBe(200);
      expect(r.headers.get("content-type")).toBe("application/octet-stream");
      expect(r.headers.get("x-ferry-version")).toBe("v1");
      expect(r.headers.get("x-ferry-shard")).toBe(String(shardOf(Buffer.from(k), SHARDS)));
      expect(await r.text()).toBe(`one-${k}`);
    });

    it("GET ?format=json and key encodings hex/base64", async () => {
      const k = keys[3];
      const hex = Buffer.from(k).toString("hex");
      const r = await get(`/v1/datasets/users/keys/${hex}?encoding=hex&format=json`);
      expect(r.status).toBe(200);
      expect(await json(r)).toMatchObject({
        dataset: "users",
        version: "v1",
        value: `one-${k}`,
        valueEncoding: "utf8",
      });
      const b64 = encodeURIComponent(Buffer.from(k).toString("base64"));
      const r2 = await get(`/v1/datasets/users/keys/${b64}?encoding=base64&format=json&valueEncoding=hex`);
      expect((await json(r2)).value).toBe(Buffer.from(`one-${k}`).toString("hex"));
    });

    it("binary key via hex; a binary value in JSON falls back to base64", async () => {
      const owned = OWNED.includes(shardOf(binKey, SHARDS));
      const r = await get(`/v1/datasets/users/keys/${binKey.toString("hex")}?encoding=hex&format=json`);
      if (!owned) {
        expect(r.status).toBe(421);
        return;
      }
      const body = await json(r);
      expect(body.valueEncoding).toBe("base64");
      expect(Buffer.from(body.value, "base64").equals(Buffer.from([1, 2, 0xfe]))).toBe(true);
    });

    it("404 for an absent key of an owned shard, 421 naming shard and owner for a foreign one", async () => {
      let absent = "";
      for (let i = 0; ; i++) {
        absent = `nobody/${i}`;
        if (OWNED.includes(shardOf(Buffer.from(absent), SHARDS))) break;
      }
      const r = await get(`/v1/datasets/users/keys/${encodeURIComponent(absent)}`);
      expect(r.status).toBe(404);
      expect(await json(r)).toMatchObject({ error: "not found" });
      const fk = foreignKey();
      const shard = shardOf(Buffer.from(fk), SHARDS);
      const r2 = await get(`/v1/datasets/users/keys/${encodeURIComponent(fk)}`);
      expect(r2.status).toBe(421);
      const body = await json(r2);
      expect(body.shard).toBe(shard);
      if (shard === 1) expect(body.owner).toBe("http://127.0.0.1:1");
      expect(body.error).toMatch(/does not serve shard/);
    });

    it("400 for bad input, 503 for an unknown dataset, 405 for writes, 404 for unknown routes", async () => {
      expect((await get("/v1/datasets/users/keys/zz?encoding=hex")).status).toBe(400);
      expect((await get("/v1/datasets/users/keys/a?encoding=rot13")).status).toBe(400);
      expect((await get("/v1/datasets/users/keys/%E0%A4%A")).status).toBe(400);
      expect((await get("/v1/datasets/Bad!Name/keys/a")).status).toBe(400);
      expect((await get("/v1/datasets/nope/keys/a")).status).toBe(503);
      expect((await get("/v1/datasets/users/keys/a", { method: "PUT", body: "x" })).status).toBe(405);
      expect((await get("/v1/admin")).status).toBe(404);
    });

    it("batchGet: results in order, found/absent/wrong shard; limits enforced", async () => {
      const fk = foreignKey();
      const body = { keys: [keys[0], "missing/x", fk, keys[199]] };
      const r = await get("/v1/datasets/users/keys:batchGet", { method: "POST", body: JSON.stringify(body) });
      expect(r.status).toBe(200);
      const j = await json(r);
      expect(j.version).toBe("v1");
      expect(j.results.map((x: { key: string }) => x.key)).toEqual(body.keys);
      expect(j.results[0]).toMatchObject({ found: true, value: `one-${keys[0]}` });
      expect(j.results[1].found).toBe(false);
      const missingOwned = OWNED.includes(shardOf(Buffer.from("missing/x"), SHARDS));
      if (missingOwned) expect(j.results[1].error).toBeUndefined();
      expect(j.results[2]).toMatchObject({ found: false, error: "wrong shard" });
      expect(j.results[3]).toMatchObject({ found: true, value: `one-${keys[199]}` });
      const hexBody = { keys: [Buffer.from(keys[5]).toString("hex")], encoding: "hex" };
      const r2 = await get("/v1/datasets/users/keys:batchGet", { method: "POST", body: JSON.stringify(hexBody) });
      expect((await json(r2)).results[0].value).toBe(`one-${keys[5]}`);
      const tooMany = { keys: Array.from({ length: HOST.batchGetMaxKeys + 1 }, (_, i) => `k${i}`) };
      const r3 = await get("/v1/datasets/users/keys:batchGet", { method: "POST", body: JSON.stringify(tooMany) });
      expect(r3.status).toBe(413);
      const r4 = await get("/v1/datasets/users/keys:batchGet", { method: "POST", body: "{not json" });
      expect(r4.status).toBe(400);
      const r5 = await get("/v1/datasets/users/keys:batchGet", { method: "POST", body: JSON.stringify({ keys: [1] }) });
      expect(r5.status).toBe(400);
      expect((await get("/v1/datasets/users/keys:batchGet")).status).toBe(405);
    });

    it("status and healthz", async () => {
      expect(await json(await get("/healthz"))).toEqual({ ok: true });
      const s = await json(await get("/v1/status"));
      expect(s).toMatchObject({ hostId: "host-a", fleet: "fleet-1", shards: OWNED });
      expect(s.datasets.users.active).toMatchObject({ version: "v1", state: "ACTIVE" });
      expect(s.datasets.users.active.stats.backend).toBe(name);
    });

    it("cutover is atomic under concurrent reads: every answer is v1 or v2, whole, and v2 after the switch", async () => {
      const v2 = await makeVersion("v2", "two");
      let stop = false;
      const seen = { v1: 0, v2: 0, bad: 0 };
      const reader = async () => {
        let i = 0;
        while (!stop) {
          const k = keys[i++ % keys.length];
          const r = await get(`/v1/datasets/users/keys/${encodeURIComponent(k)}`);
          const ver = r.headers.get("x-ferry-version");
          const text = await r.text();
          if (ver === "v1" && text === `one-${k}`) seen.v1++;
          else if (ver === "v2" && text === `two-${k}`) seen.v2++;
          else seen.bad++;
        }
      };
      const readers = [reader(), reader(), reader()];
      await new Promise((r) => setTimeout(r, 150));
      const prev = resolver.setActive("users", { version: "v2", shards: OWNED, shardCount: SHARDS, store: v2 });
      expect(prev?.version).toBe("v1");
      await new Promise((r) => setTimeout(r, 150));
      stop = true;
      await Promise.all(readers);
      expect(seen.bad).toBe(0);
      expect(seen.v1).toBeGreaterThan(0);
      expect(seen.v2).toBeGreaterThan(0);
      const after = await get(`/v1/datasets/users/keys/${encodeURIComponent(keys[0])}`);
      expect(await after.text()).toBe(`two-${keys[0]}`);
      // roll back: the previous store is still open
      resolver.setActive("users", { version: "v1", shards: OWNED, shardCount: SHARDS, store: v1 });
      expect(await (await get(`/v1/datasets/users/keys/${encodeURIComponent(keys[0])}`)).text()).toBe(`one-${keys[0]}`);
      await v2.destroy();
    });
  });
}
