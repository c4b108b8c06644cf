/**
 * The embedded stack's stand-in for a Lambda Function URL: a tiny HTTP server on 127.0.0.1 that turns each request
 * into a Function URL event (payload format 2.0) for a handler and the handler's result back into the HTTP
 * response, with Function URL rules: a result without `statusCode` is a 200 JSON body; request bodies over 6 MB get
 * 413; binary bodies are base64-encoded. AWS_IAM auth (SigV4) is NOT checked locally: loopback only.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { APIGatewayProxyStructuredResultV2, LambdaFunctionURLEvent, LambdaFunctionURLResult } from "aws-lambda";

export type FunctionUrlHandler = (event: LambdaFunctionURLEvent) => Promise<LambdaFunctionURLResult | unknown>;

export interface FunctionUrlServer {
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

/** Function URLs accept request payloads up to 6 MB. */
export const MAX_REQUEST_BYTES = 6 * 1024 * 1024;

const TEXT_TYPES = /^(text\/|application\/(json|x-ndjson|jsonl|x-www-form-urlencoded|xml))/i;

export async function startFunctionUrlServer(opts: {
  handler: FunctionUrlHandler;
  port?: number;
  host?: string;
}): Promise<FunctionUrlServer> {
  const host = opts.host ?? "127.0.0.1";
  const server = createServer((req, res) => {
    void serve(req, opts.handler).then(
      ({ status, headers, body }) => {
        res.writeHead(status, headers);
        res.end(body);
      },
      (err) => {
        // the Function URL answers 502 when the function throws
        res.writeHead(502, { "content-type": "application/json" });
        res.end(JSON.stringify({ message: "Internal Server Error", error: String((err as Error)?.message ?? err) }));
      },
    );
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${port}/`,
    port,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

async function readBody(req: IncomingMessage): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > MAX_REQUEST_BYTES) return null;
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

async function serve(
  req: IncomingMessage,
  handler: FunctionUrlHandler,
): Promise<{ status: number; headers: Record<string, string>; body: string | Buffer }> {
  const raw = await readBody(req);
  if (raw === null) {
    return {
      status: 413,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ message: "Request must be smaller than 6291456 bytes for the InvokeFunction operation" }),
    };
  }
  const event = toEvent(req, raw);
  const result = await handler(event);
  return fromResult(result);
}

export function toEvent(req: IncomingMessage, raw: Buffer): LambdaFunctionURLEvent {
  const u = new URL(req.url ?? "/", "http://localhost");
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(",") : v;
  }
  const query: Record<string, string> = {};
  for (const [k, v] of u.searchParams) query[k] = query[k] === undefined ? v : `${query[k]},${v}`;
  const contentType = headers["content-type"] ?? "";
  const text = raw.length === 0 || contentType === "" || TEXT_TYPES.test(contentType);
  const now = new Date();
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: u.pathname,
    rawQueryString: u.search.slice(1),
    headers,
    queryStringParameters: Object.keys(query).length ? query : undefined,
    requestContext: {
      accountId: "anonymous",
      apiId: "local",
      domainName: headers.host ?? "127.0.0.1",
      domainPrefix: "local",
      http: {
        method: req.method ?? "GET",
        path: u.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? "127.0.0.1",
        userAgent: headers["user-agent"] ?? "",
      },
      requestId: randomUUID(),
      routeKey: "$default",
      stage: "$default",
      time: now.toISOString(),
      timeEpoch: now.getTime(),
    },
    body: raw.length === 0 ? undefined : text ? raw.toString("utf8") : raw.toString("base64"),
    isBase64Encoded: raw.length > 0 && !text,
  } as LambdaFunctionURLEvent;
}

function fromResult(result: unknown): { status: number; headers: Record<string, string>; body: string | Buffer } {
  if (result !== null && typeof result === "object" && "statusCode" in result) {
    const r = result as APIGatewayProxyStructuredResultV2;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(r.headers ?? {})) headers[k.toLowerCase()] = String(v);
    const body = r.body === undefined ? "" : r.isBase64Encoded ? Buffer.from(r.body, "base64") : r.body;
    return { status: r.statusCode ?? 200, headers, body };
  }
  // no statusCode: Lambda treats the result as a JSON body with status 200
  return {
    status: 200,
    headers: { "content-type": "application/json" },
    body: typeof result === "string" ? result : JSON.stringify(result ?? null),
  };
}
