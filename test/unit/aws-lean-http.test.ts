/**
 * core/aws/lean-http.ts against real sockets on 127.0.0.1 (node:http / node:https servers, and a raw TCP server for
 * framings node:http does not produce): bodies framed by Content-Length, chunked encoding and the connection's end;
 * heads split across reads; 1xx interim responses; keep-alive reuse and a server closing an idle connection; body
 * bytes that arrive before the consumer (paused past the pending limit, nothing lost); a connection dropped mid-body
 * (a retryable ECONNRESET); every way of taking a body (readInto, forEachPiece, Readable); HTTPS; non-GET requests
 * through the SDK's NodeHttpHandler. Through the S3 client: bodies are LeanBody unless FERRY_S3_HTTP=node.
 */
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import net, { type AddressInfo } from "node:net";
import path from "node:path";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import type { HttpRequest } from "@smithy/types";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  closeIdleConnections,
  isLeanBody,
  type LeanBody,
  LeanHttpHandler,
  requestHead,
} from "../../core/aws/lean-http.js";
import { S3_HTTP } from "../../core/limits.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const cert = readFileSync(path.join(here, "../fixtures/tls/localhost-cert.pem"));
const key = readFileSync(path.join(here, "../fixtures/tls/localhost-key.pem"));

/** deterministic bytes */
function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

function get(port: number, p: string, extra: Partial<HttpRequest> = {}): HttpRequest {
  return {
    method: "GET",
    protocol: "http:",
    hostname: "127.0.0.1",
    port,
    path: p,
    query: {},
    headers: {},
    ...extra,
  } as HttpRequest;
}

async function drain(body: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterEach(() => closeIdleConnections());

describe("lean GET transport (node:http server)", () => {
  const big = bytes(3 * S3_HTTP.pendingBytes + 12345, 7);
  let server: Server;
  let port = 0;
  let connections = 0;
  const seen: IncomingMessage[] = [];

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      seen.push(req);
      const u = new URL(req.url ?? "/", "http://x");
      if (u.pathname === "/fixed") {
        res.writeHead(200, { "content-length": String(big.length) });
        res.end(big);
      } else if (u.pathname === "/chunked") {
        // no content-length: node:http sends chunked encoding; pieces of odd sizes, some after a pause
        res.writeHead(200);
        let o = 0;
        const step = () => {
          while (o < big.length) {
            const n = Math.min(big.length - o, 1 + ((o * 31) % 70_001));
            const more = res.write(big.subarray(o, o + n));
            o += n;
            if (o % 7 === 0) return setTimeout(step, 1);
            if (!more) return res.once("drain", step);
          }
          res.end();
        };
        step();
      } else if (u.pathname === "/close") {
        res.writeHead(200, { "content-length": "5", connection: "close" });
        res.end("hello");
      } else if (u.pathname === "/empty") {
        res.writeHead(204);
        res.end();
      } else if (u.pathname === "/error") {
        res.writeHead(404, { "content-type": "application/xml" });
        res.end("<Error><Code>NoSuchKey</Code></Error>");
      } else if (u.pathname === "/drop") {
        res.writeHead(200, { "content-length": String(big.length) });
        res.write(big.subarray(0, 100_000), () => setTimeout(() => res.socket?.destroy(), 5));
      } else if (u.pathname === "/echo") {
        const parts: Buffer[] = [];
        req.on("data", (c) => parts.push(c));
        req.on("end", () => {
          const body = Buffer.concat(parts);
          res.writeHead(200, { "content-length": String(body.length), "x-method": req.method ?? "" });
          res.end(body);
        });
        return;
      } else {
        res.writeHead(200, { "content-length": "2", "x-query": u.search, "x-custom": String(req.headers["x-custom"]) });
        res.end("ok");
      }
      req.resume();
    });
    server.on("connection", () => connections++);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    closeIdleConnections();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it("readInto copies a Content-Length body into the target; the connection is reused", async () => {
    const h = new LeanHttpHandler();
    const before = connections;
    for (let i = 0; i < 3; i++) {
      const { response } = await h.handle(get(port, "/fixed"));
      expect(response.statusCode).toBe(200);
      expect(isLeanBody(response.body)).toBe(true);
      const t = new Uint8Array(big.length);
      expect(await (response.body as LeanBody).readInto(t)).toBe(big.length);
      expect(Buffer.from(t).equals(big)).toBe(true);
    }
    expect(connections - before).toBe(1);
  });

  it("readInto into a short target keeps the prefix and counts every byte", async () => {
    const { response } = await new LeanHttpHandler().handle(get(port, "/fixed"));
    const t = new Uint8Array(1000);
    expect(await (response.body as LeanBody).readInto(t)).toBe(big.length);
    expect(Buffer.from(t).equals(big.subarray(0, 1000))).toBe(true);
  });

  it("chunked bodies arrive whole through forEachPiece and as a Readable", async () => {
    const h = new LeanHttpHandler();
    const r1 = (await h.handle(get(port, "/chunked"))).response;
    expect(r1.headers["transfer-encoding"]).toBe("chunked");
    const parts: Buffer[] = [];
    const n = await (r1.body as LeanBody).forEachPiece((p) => parts.push(Buffer.from(p)));
    expect(n).toBe(big.length);
    expect(Buffer.concat(parts).equals(big)).toBe(true);
    const r2 = (await h.handle(get(port, "/chunked"))).response;
    expect((await drain(r2.body as Readable)).equals(big)).toBe(true);
  });

  it("body bytes that come before the consumer are kept (the socket pauses past the pending limit)", async () => {
    const h = new LeanHttpHandler();
    for (const how of ["into", "each", "stream"] as const) {
      const { response } = await h.handle(get(port, "/fixed"));
      await sleep(150); // the whole body (3× the pending limit) would have arrived by now without the pause
      const body = response.body as LeanBody;
      if (how === "into") {
        const t = new Uint8Array(big.length);
        await body.readInto(t);
        expect(Buffer.from(t).equals(big), how).toBe(true);
      } else if (how === "each") {
        const parts: Buffer[] = [];
        await body.forEachPiece((p) => parts.push(Buffer.from(p)));
        expect(Buffer.concat(parts).equals(big), how).toBe(true);
      } else expect((await drain(body)).equals(big), how).toBe(true);
    }
  });

  it("a slow Readable consumer gets every byte in order (backpressure pauses the socket)", async () => {
    const { response } = await new LeanHttpHandler().handle(get(port, "/fixed"));
    const parts: Buffer[] = [];
    let i = 0;
    for await (const c of response.body as Readable) {
      parts.push(c as Buffer);
      if (i++ % 5 === 0) await sleep(2);
    }
    expect(Buffer.concat(parts).equals(big)).toBe(true);
  });

  it("Connection: close, 204 and error bodies", async () => {
    const h = new LeanHttpHandler();
    const before = connections;
    for (let i = 0; i < 2; i++) {
      const { response } = await h.handle(get(port, "/close"));
      expect((await drain(response.body as Readable)).toString()).toBe("hello");
    }
    expect(connections - before).toBe(2);
    const e = (await h.handle(get(port, "/empty"))).response;
    expect(e.statusCode).toBe(204);
    expect(await (e.body as LeanBody).readInto(new Uint8Array(0))).toBe(0);
    const x = (await h.handle(get(port, "/error"))).response;
    expect(x.statusCode).toBe(404);
    expect((await drain(x.body as Readable)).toString()).toContain("NoSuchKey");
  });

  it("a connection dropped mid-body fails the read with a retryable ECONNRESET; the next request works", async () => {
    const h = new LeanHttpHandler();
    const { response } = await h.handle(get(port, "/drop"));
    const err = await (response.body as LeanBody).readInto(new Uint8Array(big.length)).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as { code?: string }).code).toBe("ECONNRESET");
    const ok = (await h.handle(get(port, "/fixed"))).response;
    const t = new Uint8Array(big.length);
    await (ok.body as LeanBody).readInto(t);
    expect(Buffer.from(t).equals(big)).toBe(true);
  });

  it("an idle connection the server closed is not reused", async () => {
    const h = new LeanHttpHandler();
    const old = server.keepAliveTimeout;
    server.keepAliveTimeout = 50;
    try {
      const r1 = (await h.handle(get(port, "/q"))).response;
      await drain(r1.body as Readable);
      await sleep(200);
      const r2 = (await h.handle(get(port, "/q"))).response;
      expect((await drain(r2.body as Readable)).toString()).toBe("ok");
    } finally {
      server.keepAliveTimeout = old;
    }
  });

  it("sends the path, the query (escaped, sorted) and the headers; other methods go through NodeHttpHandler", async () => {
    const h = new LeanHttpHandler();
    const { response } = await h.handle(
      get(port, "/q", {
        query: { "x-id": "GetObject", b: ["1", "2"], "a key": "v!'()*/" },
        headers: { "x-custom": "c" },
      }),
    );
    expect(response.headers["x-query"]).toBe("?a%20key=v%21%27%28%29%2A%2F&b=1&b=2&x-id=GetObject");
    expect(response.headers["x-custom"]).toBe("c");
    await drain(response.body as Readable);
    const put = await h.handle({
      ...get(port, "/echo"),
      method: "PUT",
      body: "payload",
      headers: { "content-length": "7" },
    } as HttpRequest);
    expect(isLeanBody(put.response.body)).toBe(false);
    expect(put.response.headers["x-method"]).toBe("PUT");
    expect((await drain(put.response.body as Readable)).toString()).toBe("payload");
    h.destroy();
  });

  it("requestHead refuses header values that would split the request", () => {
    expect(() => requestHead(get(1, "/", { headers: { a: "b\r\nx: y" } }))).toThrow(/invalid header/);
    expect(requestHead(get(8080, "/k", { headers: { host: "h" } }))).toBe("GET /k HTTP/1.1\r\nhost: h\r\n\r\n");
    expect(requestHead(get(8080, "/k"))).toBe("GET /k HTTP/1.1\r\nhost: 127.0.0.1:8080\r\n\r\n");
  });
});

describe("lean GET transport (raw TCP server: framings node:http does not produce)", () => {
  let server: net.Server;
  let port = 0;
  /** what the server writes for the next request: pieces, with a pause between them */
  let script: (string | Buffer)[] = [];
  let endAfter = false;

  beforeAll(async () => {
    server = net.createServer((sock) => {
      let got = "";
      sock.on("data", async (d) => {
        got += d.toString("latin1");
        if (!got.includes("\r\n\r\n")) return;
        got = "";
        const pieces = script;
        for (const p of pieces) {
          sock.write(p);
          await sleep(5);
        }
        if (endAfter) sock.end();
      });
      sock.on("error", () => {});
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    closeIdleConnections();
    await new Promise((r) => server.close(r));
  });

  it("a head split across reads, a 100 Continue first, a body in pieces", async () => {
    endAfter = false;
    script = [
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Le",
      "ngth: 11\r\nX-A: 1\r",
      "\n\r\nhello",
      " world",
    ];
    const { response } = await new LeanHttpHandler().handle(get(port, "/"));
    expect(response.statusCode).toBe(200);
    expect(response.headers["x-a"]).toBe("1");
    expect((await drain(response.body as Readable)).toString()).toBe("hello world");
  });

  it("a body framed by the connection's end", async () => {
    endAfter = true;
    script = ["HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil ", "the end"];
    const { response } = await new LeanHttpHandler().handle(get(port, "/"));
    const t = new Uint8Array(64);
    const n = await (response.body as LeanBody).readInto(t);
    expect(Buffer.from(t.subarray(0, n)).toString()).toBe("until the end");
  });

  it("chunk extensions and trailers; a garbled response is an EPROTO error", async () => {
    endAfter = false;
    script = ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n", "2\r\nde\r\n0\r\nT: 1\r\n\r\n"];
    const r = (await new LeanHttpHandler().handle(get(port, "/"))).response;
    expect((await drain(r.body as Readable)).toString()).toBe("abcde");
    endAfter = true;
    script = ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"];
    const bad = (await new LeanHttpHandler().handle(get(port, "/"))).response;
    const err = await (bad.body as LeanBody).readInto(new Uint8Array(8)).catch((e) => e);
    expect((err as { code?: string }).code).toBe("EPROTO");
    script = ["SMTP ready\r\n\r\n"];
    const err2 = await new LeanHttpHandler().handle(get(port, "/")).catch((e) => e);
    expect((err2 as { code?: string }).code).toBe("EPROTO");
  });
});

describe("lean GET transport over TLS", () => {
  it("reads an https body into the target (certificate checked against the given CA)", async () => {
    const body = bytes(700_000, 3);
    const server = createHttpsServer({ key, cert }, (_req, res) => {
      res.writeHead(200, { "content-length": String(body.length) });
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    try {
      const h = new LeanHttpHandler({ tls: { ca: cert } });
      for (let i = 0; i < 2; i++) {
        const { response } = await h.handle(get(port, "/", { protocol: "https:", hostname: "localhost" }));
        const t = new Uint8Array(body.length);
        expect(await (response.body as LeanBody).readInto(t)).toBe(body.length);
        expect(Buffer.from(t).equals(body)).toBe(true);
      }
      // without the CA the self-signed certificate is refused
      const err = await new LeanHttpHandler()
        .handle(get(port, "/", { protocol: "https:", hostname: "localhost" }))
        .catch((e) => e);
      expect(String((err as Error).message)).toMatch(/self[- ]signed|certificate/i);
    } finally {
      closeIdleConnections();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
