/**
 * The reference KV server of a serving host: read-only HTTP over the ACTIVE version of each dataset.
 *
 *   GET  /v1/datasets/<d>/keys/<key>[?encoding=utf8|hex|base64][&format=json][&valueEncoding=utf8|hex|base64]
 *        200 value bytes (application/octet-stream) or JSON; 404 absent; 421 {error, shard, owner?} when this host
 *        does not serve the key's shard; 400 bad key/encoding; 503 no active version of the dataset here
 *   POST /v1/datasets/<d>/keys:batchGet   {"keys": [...], "encoding"?: "utf8"|"hex"|"base64", "valueEncoding"?}
 *        200 {dataset, version, results: [{key, found, value?, shard, error?, owner?}]} (≤ HOST.batchGetMaxKeys)
 *   GET  /v1/status   the resolver's HostStatus
 *   GET  /healthz     {"ok": true}
 *
 * Nothing administrative is on this port. Responses carry `x-ferry-version` and `x-ferry-shard`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { FerryError } from "../../core/errors.js";
import { HOST } from "../../core/limits.js";
import { NAME_RE } from "../../core/manifest/schema.js";
import { shardOf } from "../../core/shuffle/shard.js";
import type { ActiveVersion, KvResolver } from "./types.js";

export type KeyEncoding = "utf8" | "hex" | "base64";
const ENCODINGS: readonly string[] = ["utf8", "hex", "base64"];

export interface KvServerOptions {
  /** 0 = any free port (default) */
  port?: number;
  /** default 127.0.0.1 */
  host?: string;
  resolver: KvResolver;
}

export interface KvServer {
  readonly server: Server;
  readonly port: number;
  readonly host: string;
  /** http://host:port */
  readonly url: string;
  /** stop listening and drop idle/keep-alive connections */
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

const JSON_TYPE = "application/json";

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": JSON_TYPE,
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export function decodeKey(raw: string, encoding: string, what = "key"): Buffer {
  if (!ENCODINGS.includes(encoding)) {
    throw new HttpError(400, `unknown encoding ${JSON.stringify(encoding)}: use utf8, hex or base64`);
  }
  if (encoding === "hex") {
    if (raw.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(raw)) {
      throw new HttpError(400, `${what} ${JSON.stringify(raw)} is not valid hex`);
    }
    return Buffer.from(raw, "hex");
  }
  if (encoding === "base64") {
    if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(raw)) throw new HttpError(400, `${what} ${JSON.stringify(raw)} is not base64`);
    return Buffer.from(raw, "base64");
  }
  return Buffer.from(raw, "utf8");
}

function encodeValue(v: Uint8Array, encoding: string): { value: string; valueEncoding: string } {
  const b = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (encoding === "hex") return { value: b.toString("hex"), valueEncoding: "hex" };
  if (encoding === "base64") return { value: b.toString("base64"), valueEncoding: "base64" };
  const s = b.toString("utf8");
  // not valid UTF-8: say so and fall back to base64 instead of silently mangling bytes
  if (s.includes("\ufffd") && !Buffer.from(s, "utf8").equals(b)) {
    return { value: b.toString("base64"), valueEncoding: "base64" };
  }
  return { value: s, valueEncoding: "utf8" };
}

function ownsShard(av: ActiveVersion, shard: number): boolean {
  const s = av.shards;
  return Array.isArray(s) ? s.includes(shard) : ((s as ReadonlySet<number>).has?.(shard) ?? false);
}

function parseQuery(qs: string): Map<string, string> {
  const m = new Map<string, string>();
  if (!qs) return m;
  for (const part of qs.split("&")) {
    if (!part) continue;
    const i = part.indexOf("=");
    const k = i < 0 ? part : part.slice(0, i);
    const v = i < 0 ? "" : part.slice(i + 1);
    try {
      m.set(decodeURIComponent(k), decodeURIComponent(v.replace(/\+/g, " ")));
    } catch {
      throw new HttpError(400, `bad query string parameter ${JSON.stringify(k)}`);
    }
  }
  return m;
}

function active(resolver: KvResolver, dataset: string): ActiveVersion {
  if (!NAME_RE.test(dataset)) throw new HttpError(400, `bad dataset name ${JSON.stringify(dataset)}`);
  const av = resolver.getActive(dataset);
  if (!av) {
    throw new HttpError(503, `dataset ${dataset} has no active version on this host`, { dataset });
  }
  return av;
}

function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolveBody, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    let failed = false;
    req.on("data", (c: Buffer) => {
      if (failed) return;
      n += c.length;
      if (n > max) {
        failed = true;
        reject(new HttpError(413, `request body larger than ${max} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => {
      if (!failed) resolveBody(Buffer.concat(chunks));
    });
    req.on("error", (e) => {
      if (!failed) reject(e);
    });
  });
}

function handleGet(resolver: KvResolver, res: ServerResponse, dataset: string, rawKey: string, qs: string): void {
  const q = parseQuery(qs);
  const encoding = q.get("encoding") ?? "utf8";
  let keyText: string;
  try {
    keyText = decodeURIComponent(rawKey);
  } catch {
    throw new HttpError(400, `key ${JSON.stringify(rawKey)} is not valid percent-encoded UTF-8`);
  }
  const key = decodeKey(keyText, encoding);
  const av = active(resolver, dataset);
  const shard = shardOf(key, av.shardCount);
  const headers = { "x-ferry-version": av.version, "x-ferry-shard": String(shard) };
  if (!ownsShard(av, shard)) {
    const owner = resolver.ownerOf?.(dataset, shard);
    sendJson(
      res,
      421,
      {
        error: `this host does not serve shard ${shard} of ${dataset} (it serves ${[...av.shards].join(",")})`,
        dataset,
        shard,
        ...(owner ? { owner } : {}),
      },
      headers,
    );
    return;
  }
  const value = av.store.getSync(key);
  const asJson = q.get("format") === "json";
  if (value === undefined) {
    sendJson(res, 404, { error: "not found", dataset, version: av.version, key: keyText, shard }, headers);
    return;
  }
  if (asJson) {
    sendJson(
      res,
      200,
      { dataset, version: av.version, shard, key: keyText, ...encodeValue(value, q.get("valueEncoding") ?? "utf8") },
      headers,
    );
    return;
  }
  res.writeHead(200, { "content-type": "application/octet-stream", "content-length": value.length, ...headers });
  res.end(value);
}

async function handleBatchGet(
  resolver: KvResolver,
  req: IncomingMessage,
  res: ServerResponse,
  dataset: string,
): Promise<void> {
  if (!NAME_RE.test(dataset)) throw new HttpError(400, `bad dataset name ${JSON.stringify(dataset)}`);
  const body = await readBody(req, HOST.serverMaxBodyBytes);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch (e) {
    throw new HttpError(400, `batchGet body is not JSON: ${(e as Error).message}`);
  }
  const p = parsed as { keys?: unknown; encoding?: unknown; valueEncoding?: unknown };
  if (!p || typeof p !== "object" || !Array.isArray(p.keys)) {
    throw new HttpError(400, 'batchGet body must be {"keys": [...]}');
  }
  if (p.keys.length > HOST.batchGetMaxKeys) {
    throw new HttpError(413, `batchGet of ${p.keys.length} keys: at most ${HOST.batchGetMaxKeys} per request`, {
      max: HOST.batchGetMaxKeys,
    });
  }
  const encoding = typeof p.encoding === "string" ? p.encoding : "utf8";
  const valueEncoding = typeof p.valueEncoding === "string" ? p.valueEncoding : "utf8";
  if (!ENCODINGS.includes(valueEncoding)) throw new HttpError(400, `unknown valueEncoding ${valueEncoding}`);
  const keys = p.keys.map((k, i) => {
    if (typeof k !== "string") throw new HttpError(400, `keys[${i}] is not a string`);
    return decodeKey(k, encoding, `keys[${i}]`);
  });
  // everything below is synchronous: the whole batch reads one version even across a cutover
  const av = active(resolver, dataset);
  const shards = keys.map((k) => shardOf(k, av.shardCount));
  const ownedIdx: number[] = [];
  for (let i = 0; i < keys.length; i++) if (ownsShard(av, shards[i])) ownedIdx.push(i);
  const values = ownedIdx.length ? av.store.multiGetSync(ownedIdx.map((i) => keys[i])) : [];
  const byIdx = new Map<number, Uint8Array | undefined>();
  for (let j = 0; j < ownedIdx.length; j++) byIdx.set(ownedIdx[j], values[j]);
  const results = (p.keys as string[]).map((k, i) => {
    const shard = shards[i];
    if (!byIdx.has(i)) {
      const owner = resolver.ownerOf?.(dataset, shard);
      return { key: k, found: false, shard, error: "wrong shard", ...(owner ? { owner } : {}) };
    }
    const v = byIdx.get(i);
    return v === undefined
      ? { key: k, found: false, shard }
      : { key: k, found: true, shard, ...encodeValue(v, valueEncoding) };
  });
  sendJson(res, 200, { dataset, version: av.version, results }, { "x-ferry-version": av.version });
}

function fail(res: ServerResponse, e: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (e instanceof HttpError) {
    sendJson(res, e.status, { error: e.message, ...e.body });
    return;
  }
  if (e instanceof FerryError) {
    const status = e.code === "NOT_FOUND" ? 404 : e.code === "TRANSIENT" || e.code === "ENVIRONMENT" ? 503 : 500;
    sendJson(res, status, { error: e.message, code: e.code });
    return;
  }
  sendJson(res, 500, { error: `internal error: ${(e as Error)?.message ?? String(e)}` });
}

const KEY_ROUTE = /^\/v1\/datasets\/([^/]+)\/keys\/(.+)$/;
const BATCH_ROUTE = /^\/v1\/datasets\/([^/]+)\/keys:batchGet$/;

export function kvRequestHandler(resolver: KvResolver): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const url = req.url ?? "/";
    const qi = url.indexOf("?");
    const path = qi < 0 ? url : url.slice(0, qi);
    const qs = qi < 0 ? "" : url.slice(qi + 1);
    try {
      const method = req.method ?? "GET";
      let m = KEY_ROUTE.exec(path);
      if (m) {
        if (method !== "GET" && method !== "HEAD") throw new HttpError(405, `${method} not allowed here: read-only`);
        handleGet(resolver, res, m[1], m[2], qs);
        return;
      }
      m = BATCH_ROUTE.exec(path);
      if (m) {
        if (method !== "POST") throw new HttpError(405, "batchGet is POST");
        handleBatchGet(resolver, req, res, m[1]).catch((e) => fail(res, e));
        return;
      }
      if (path === "/healthz") {
        sendJson(res, 200, { ok: true });
        return;
      }
      if (path === "/v1/status") {
        if (method !== "GET") throw new HttpError(405, "status is GET");
        Promise.resolve(resolver.status()).then(
          (s) => sendJson(res, 200, s),
          (e) => fail(res, e),
        );
        return;
      }
      throw new HttpError(404, `no route for ${method} ${path}`);
    } catch (e) {
      fail(res, e);
    }
  };
}

/** Starts the server (127.0.0.1 by default) and resolves once it listens. */
export async function createKvServer(o: KvServerOptions): Promise<KvServer> {
  const host = o.host ?? "127.0.0.1";
  const server = createServer({ keepAliveTimeout: 5000 }, kvRequestHandler(o.resolver));
  await new Promise<void>((resolveListen, reject) => {
    server.once("error", reject);
    server.listen(o.port ?? 0, host, () => {
      server.off("error", reject);
      resolveListen();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    host,
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolveClose) => {
        server.close(() => resolveClose());
        server.closeAllConnections();
      }),
  };
}
