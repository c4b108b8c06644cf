/**
 * The S3 client's request handler for GET requests: HTTP/1.1 over keep-alive sockets that read into one reused
 * buffer per connection (net/tls `onread`), so a body is copied once — from the socket's buffer into the caller's
 * window, or hashed in place — and no memory is allocated per socket read. Every other request (PUT, POST, HEAD,
 * DELETE, ...) goes to the SDK's own NodeHttpHandler.
 *
 * Why by hand: Node's http client (and undici) allocate a new 64 KiB buffer for every socket read. On a bulk load
 * that is gigabytes of short-lived external memory, and V8 starts a mark-compact for every ~64 MB of it ("external
 * memory pressure"), in a heap that holds a task's sort arrays: measured here, a ranged 8 MiB-window download costs
 * ~2.8-3.5 ns/B through node:http / the SDK and ~0.6 ns/B reading into a reused buffer; inside a Partition task the
 * difference was ~0.5 CPU-s per 128 MB chunk. No maintained Node HTTP client reads into a caller's buffer.
 *
 * Scope: what S3 answers to GET — a status line, headers, and a body framed by Content-Length, chunked encoding or
 * the connection's end; 1xx interim responses are skipped. The SDK still builds, signs, retries and deserializes
 * requests; a body is a node Readable (the SDK requires one) with two fast paths the S3 helpers use: readInto() and
 * forEachPiece(). `FERRY_S3_HTTP=node` turns this handler off (every request through NodeHttpHandler).
 */
import net from "node:net";
import { Readable } from "node:stream";
import tls from "node:tls";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import type { HttpHandlerOptions, HttpRequest, HttpResponse } from "@smithy/types";
import { S3_HTTP } from "../limits.js";

/** an error with a Node-style code (the retry classification in core/aws/errors.ts reads `code`) */
function netError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

function abortError(): Error {
  return Object.assign(new Error("Request aborted"), { name: "AbortError" });
}

const CRLF2 = Buffer.from("\r\n\r\n");

/** RFC 3986 escaping as the SDK's query-string builder does it (encodeURIComponent plus !'()*) */
function escapeUri(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function queryString(query: HttpRequest["query"]): string {
  const parts: string[] = [];
  if (!query) return "";
  for (const key of Object.keys(query).sort()) {
    const v = query[key];
    const k = escapeUri(key);
    if (Array.isArray(v)) for (const x of v) parts.push(`${k}=${escapeUri(x)}`);
    else if (v === null || v === undefined) parts.push(k);
    else parts.push(`${k}=${escapeUri(v)}`);
  }
  return parts.join("&");
}

/** The request line and headers of a GET (no body). */
export function requestHead(request: HttpRequest): string {
  let path = request.path || "/";
  const q = queryString(request.query);
  if (q) path += `?${q}`;
  let head = `${request.method} ${path} HTTP/1.1\r\n`;
  let host = false;
  for (const [name, value] of Object.entries(request.headers ?? {})) {
    if (value === undefined) continue;
    if (/[\r\n]/.test(name) || /[\r\n]/.test(String(value))) throw new TypeError(`invalid header ${name}`);
    if (name.toLowerCase() === "host") host = true;
    head += `${name}: ${value}\r\n`;
  }
  if (!host) {
    const port = request.port ? `:${request.port}` : "";
    head += `host: ${request.hostname}${port}\r\n`;
  }
  return `${head}\r\n`;
}

// ---------------------------------------------------------------------------------------------------------------
// the response body

type Mode = "none" | "into" | "each" | "stream";

/**
 * A response body. As a Readable it yields copies (for the SDK's error parsing and any other consumer); readInto()
 * and forEachPiece() take the bytes straight from the connection's read buffer. Use one of the three, once.
 */
export class LeanBody extends Readable {
  /** body bytes received before a consumer chose how to take them (copies) */
  private pending: Buffer[] = [];
  private pendingLen = 0;
  private mode: Mode = "none";
  private target: Uint8Array | undefined;
  private each: ((piece: Uint8Array) => void) | undefined;
  /** body bytes seen so far (all of them, also those past a readInto target's end) */
  private seen = 0;
  private finished = false;
  private failure: Error | undefined;
  private settle: { resolve: (n: number) => void; reject: (e: Error) => void } | undefined;

  constructor(
    private readonly conn: Connection,
    /** Content-Length when the body is framed by it */
    readonly contentLength: number | undefined,
  ) {
    super();
  }

  /**
   * Copies the body into `target` (bytes past target.length are read and counted, not kept); resolves to the
   * body's length once it has all arrived.
   */
  readInto(target: Uint8Array): Promise<number> {
    this.choose("into");
    this.target = target;
    return this.begin();
  }

  /**
   * Calls `fn` with every piece of the body in order, synchronously as it arrives: a piece is a view of the
   * connection's read buffer, valid only during the call. Resolves to the body's length.
   */
  forEachPiece(fn: (piece: Uint8Array) => void): Promise<number> {
    this.choose("each");
    this.each = fn;
    return this.begin();
  }

  private choose(mode: Mode): void {
    if (this.mode !== "none") throw new Error("LeanBody: the body is being read already");
    this.mode = mode;
  }

  /** hands what arrived before the consumer chose to it, then lets the connection go on */
  private begin(): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.settle = { resolve, reject };
      const pending = this.pending;
      this.pending = [];
      this.pendingLen = 0;
      this.seen = 0;
      try {
        for (const p of pending) this.deliver(p);
      } catch (err) {
        this.conn.destroy(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      if (this.failure) this.fail(this.failure);
      else if (this.finished) this.complete();
      else this.conn.resume();
    });
  }

  /** bytes of the body from the connection (a view of its read buffer); false asks the connection to pause */
  onBytes(view: Uint8Array): boolean {
    if (this.mode === "none") {
      const copy = Buffer.from(view);
      this.pending.push(copy);
      this.pendingLen += copy.length;
      this.seen += copy.length;
      return this.pendingLen < S3_HTTP.pendingBytes;
    }
    if (this.mode === "stream") {
      this.seen += view.length;
      return this.push(Buffer.from(view));
    }
    this.deliver(view);
    return true;
  }

  private deliver(view: Uint8Array): void {
    if (this.mode === "into") {
      const t = this.target as Uint8Array;
      if (this.seen < t.length) {
        const n = Math.min(view.length, t.length - this.seen);
        t.set(n === view.length ? view : view.subarray(0, n), this.seen);
      }
    } else if (this.mode === "each") (this.each as (p: Uint8Array) => void)(view);
    else if (this.mode === "stream") this.push(Buffer.from(view));
    this.seen += view.length;
  }

  /** the connection read the whole body */
  onEnd(): void {
    this.finished = true;
    if (this.mode === "into" || this.mode === "each") this.complete();
    else if (this.mode === "stream") this.push(null);
  }

  /** the connection failed before the body ended */
  onError(err: Error): void {
    if (this.finished) return;
    this.failure = err;
    if (this.mode === "into" || this.mode === "each") this.fail(err);
    else if (this.mode === "stream") this.destroy(err);
  }

  private complete(): void {
    const s = this.settle;
    this.settle = undefined;
    this.target = undefined;
    this.each = undefined;
    s?.resolve(this.seen);
  }

  private fail(err: Error): void {
    const s = this.settle;
    this.settle = undefined;
    this.target = undefined;
    this.each = undefined;
    s?.reject(err);
  }

  override _read(): void {
    if (this.mode === "none") {
      this.mode = "stream";
      const pending = this.pending;
      this.pending = [];
      this.pendingLen = 0;
      for (const p of pending) this.push(p);
      if (this.failure) {
        this.destroy(this.failure);
        return;
      }
      if (this.finished) {
        this.push(null);
        return;
      }
    }
    this.conn.resume();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // a body abandoned before its end leaves unread bytes on the connection: it cannot be reused
    if (!this.finished) this.conn.destroy(err ?? netError("response body destroyed before its end", "ECONNRESET"));
    cb(err);
  }
}

/** Whether `body` is a LeanBody (a response from this handler that nothing has wrapped). */
export function isLeanBody(body: unknown): body is LeanBody {
  return body instanceof LeanBody;
}

// ---------------------------------------------------------------------------------------------------------------
// connections

interface Exchange {
  resolve: (r: HttpResponse) => void;
  reject: (e: Error) => void;
  method: string;
  /** null until the head has arrived */
  body: LeanBody | null;
}

enum Phase {
  Head,
  /** body framed by Content-Length: `remaining` bytes to go */
  Length,
  /** chunked: reading a chunk-size line */
  ChunkSize,
  /** chunked: `remaining` bytes of chunk data to go */
  ChunkData,
  /** chunked: the CRLF after a chunk's data */
  ChunkEnd,
  /** chunked: trailer lines until an empty one */
  Trailers,
  /** body until the server closes the connection */
  UntilClose,
  Idle,
}

export interface ConnectOptions {
  protocol: "http:" | "https:";
  hostname: string;
  port: number;
  /** extra TLS options (tests: a private CA) */
  tls?: tls.ConnectionOptions;
}

/** One keep-alive HTTP/1.1 connection; one request at a time. */
export class Connection {
  readonly socket: net.Socket;
  private readonly buf: Buffer;
  private phase = Phase.Idle;
  private head: Buffer[] = [];
  private headLen = 0;
  private line = "";
  private remaining = 0;
  private reusable = false;
  private ex: Exchange | undefined;
  private connected = false;
  private paused = false;
  dead = false;
  /** called when the connection can take another request (or never again: dead) */
  onFree: (c: Connection) => void = () => {};

  constructor(
    readonly origin: string,
    opts: ConnectOptions,
  ) {
    this.buf = Buffer.allocUnsafe(S3_HTTP.readBufferBytes);
    const onread = { buffer: this.buf, callback: (n: number) => this.onRead(n) };
    const host = opts.hostname.startsWith("[") ? opts.hostname.slice(1, -1) : opts.hostname;
    this.socket =
      opts.protocol === "https:"
        ? tls.connect({
            host,
            port: opts.port,
            servername: net.isIP(host) ? undefined : host,
            onread,
            ...opts.tls,
          } as tls.ConnectionOptions)
        : net.connect({ host, port: opts.port, onread } as net.NetConnectOpts);
    this.socket.setNoDelay(true);
    this.socket.setKeepAlive(true, 30_000);
    this.socket.setTimeout(S3_HTTP.connectTimeoutMs);
    this.socket.once(opts.protocol === "https:" ? "secureConnect" : "connect", () => {
      this.connected = true;
      this.socket.setTimeout(S3_HTTP.socketTimeoutMs);
    });
    this.socket.on("timeout", () =>
      this.destroy(
        netError(
          this.connected ? "S3 connection timed out (no data)" : "S3 connection timed out (connecting)",
          "ETIMEDOUT",
        ),
      ),
    );
    this.socket.on("error", (err) => this.destroy(err));
    this.socket.on("end", () => this.onServerEnd());
    this.socket.on("close", () => this.destroy(netError("S3 connection closed", "ECONNRESET")));
  }

  /** sends a GET and resolves with the response once its head has arrived */
  request(head: string, method: string, signal?: HttpHandlerOptions["abortSignal"]): Promise<HttpResponse> {
    return new Promise<HttpResponse>((resolve, reject) => {
      if (this.dead) return reject(netError("S3 connection closed", "ECONNRESET"));
      this.ex = { resolve, reject, method, body: null };
      this.phase = Phase.Head;
      this.head = [];
      this.headLen = 0;
      this.socket.ref();
      // a body consumer may have paused the socket just before the last body bytes arrived
      this.resume();
      if (signal) {
        if (signal.aborted) {
          this.destroy(abortError());
          return;
        }
        const onAbort = () => this.destroy(abortError());
        if (typeof (signal as AbortSignal).addEventListener === "function") {
          (signal as AbortSignal).addEventListener("abort", onAbort, { once: true });
        } else (signal as { onabort: unknown }).onabort = onAbort;
      }
      this.socket.write(head);
    });
  }

  resume(): void {
    if (this.paused && !this.dead) {
      this.paused = false;
      this.socket.resume();
    }
  }

  private onRead(n: number): boolean {
    try {
      const keep = this.parse(this.buf.subarray(0, n));
      if (!keep && !this.dead) this.paused = true;
      return keep || this.dead;
    } catch (err) {
      this.destroy(err instanceof Error ? err : new Error(String(err)));
      return true;
    }
  }

  /** consumes bytes of the response; false when the body's consumer wants a pause */
  private parse(b: Buffer): boolean {
    let off = 0;
    let keep = true;
    while (off < b.length) {
      switch (this.phase) {
        case Phase.Idle:
          throw netError("S3 connection: bytes from the server with no request open", "ECONNRESET");
        case Phase.Head: {
          let text: string;
          if (this.headLen === 0) {
            // usually the whole head is in this read: parse it where it is
            const at = b.indexOf(CRLF2, off);
            if (at < 0) {
              this.head.push(Buffer.from(b.subarray(off)));
              this.headLen = b.length - off;
              if (this.headLen > S3_HTTP.maxHeadBytes) throw netError("S3 response head too long", "EPROTO");
              return true;
            }
            text = b.toString("latin1", off, at);
            off = at + 4;
          } else {
            // the head straddles reads: search the joined bytes (from 3 before the new ones)
            const prev = this.headLen;
            const joined = Buffer.concat([...this.head, b.subarray(off)]);
            const at = joined.indexOf(CRLF2, Math.max(0, prev - 3));
            if (at < 0) {
              this.head = [joined];
              this.headLen = joined.length;
              if (this.headLen > S3_HTTP.maxHeadBytes) throw netError("S3 response head too long", "EPROTO");
              return true;
            }
            text = joined.toString("latin1", 0, at);
            off += at + 4 - prev;
            this.head = [];
            this.headLen = 0;
          }
          this.onHead(text); // a 1xx interim response leaves the phase at Head: the real one follows
          break;
        }
        case Phase.Length: {
          const n = Math.min(this.remaining, b.length - off);
          keep = this.bodyBytes(b.subarray(off, off + n)) && keep;
          off += n;
          this.remaining -= n;
          if (this.remaining === 0) this.bodyDone();
          break;
        }
        case Phase.UntilClose: {
          keep = this.bodyBytes(b.subarray(off)) && keep;
          off = b.length;
          break;
        }
        case Phase.ChunkSize:
        case Phase.ChunkEnd:
        case Phase.Trailers: {
          const nl = b.indexOf(10, off);
          const end = nl < 0 ? b.length : nl + 1;
          this.line += b.toString("latin1", off, end);
          off = end;
          if (this.line.length > 8192) throw netError("S3 response: chunk line too long", "EPROTO");
          if (nl < 0) break;
          const line = this.line.trim();
          this.line = "";
          if (this.phase === Phase.ChunkEnd) {
            if (line !== "") throw netError("S3 response: bad chunk terminator", "EPROTO");
            this.phase = Phase.ChunkSize;
          } else if (this.phase === Phase.Trailers) {
            if (line === "") this.bodyDone();
          } else {
            const size = Number.parseInt(line.split(";")[0], 16);
            if (!Number.isFinite(size) || size < 0 || !/^[0-9a-fA-F]+$/.test(line.split(";")[0].trim())) {
              throw netError(`S3 response: bad chunk size line ${JSON.stringify(line.slice(0, 40))}`, "EPROTO");
            }
            if (size === 0) this.phase = Phase.Trailers;
            else {
              this.remaining = size;
              this.phase = Phase.ChunkData;
            }
          }
          break;
        }
        case Phase.ChunkData: {
          const n = Math.min(this.remaining, b.length - off);
          keep = this.bodyBytes(b.subarray(off, off + n)) && keep;
          off += n;
          this.remaining -= n;
          if (this.remaining === 0) this.phase = Phase.ChunkEnd;
          break;
        }
      }
    }
    return keep;
  }

  /** parses a response head (a 1xx interim response is skipped: the real one follows) */
  private onHead(text: string): void {
    const ex = this.ex as Exchange;
    const lines = text.split("\r\n");
    const m = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/.exec(lines[0]);
    if (!m) throw netError(`S3 response: bad status line ${JSON.stringify(lines[0].slice(0, 80))}`, "EPROTO");
    const status = Number(m[2]);
    if (status >= 100 && status < 200) return;
    const headers: Record<string, string> = {};
    for (let i = 1; i < lines.length; i++) {
      const c = lines[i].indexOf(":");
      if (c <= 0) continue;
      const name = lines[i].slice(0, c).trim().toLowerCase();
      const value = lines[i].slice(c + 1).trim();
      headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    }
    const connection = (headers.connection ?? "").toLowerCase();
    this.reusable = m[1] === "1" ? !connection.includes("close") : connection.includes("keep-alive");
    const te = (headers["transfer-encoding"] ?? "").toLowerCase();
    const cl = headers["content-length"];
    let length: number | undefined;
    if (ex.method === "HEAD" || status === 204 || status === 304) length = 0;
    else if (te.includes("chunked")) this.phase = Phase.ChunkSize;
    else if (cl !== undefined) {
      if (!/^\d+$/.test(cl)) throw netError(`S3 response: bad content-length ${JSON.stringify(cl)}`, "EPROTO");
      length = Number(cl);
    } else {
      this.phase = Phase.UntilClose;
      this.reusable = false;
    }
    const body = new LeanBody(this, length);
    ex.body = body;
    ex.resolve({ statusCode: status, reason: m[3], headers, body } as HttpResponse);
    if (length !== undefined) {
      this.phase = Phase.Length;
      this.remaining = length;
      if (length === 0) this.bodyDone();
    }
  }

  private bodyBytes(view: Uint8Array): boolean {
    const body = this.ex?.body;
    if (view.length === 0 || !body) return true;
    return body.onBytes(view);
  }

  private bodyDone(): void {
    const body = this.ex?.body as LeanBody;
    this.ex = undefined;
    this.phase = Phase.Idle;
    if (!this.reusable) this.destroy(undefined);
    else {
      this.socket.unref();
      this.onFree(this);
    }
    body.onEnd();
  }

  private onServerEnd(): void {
    if (this.phase === Phase.UntilClose) {
      this.reusable = false;
      this.bodyDone();
      return;
    }
    this.destroy(netError("S3 connection ended by the server", "ECONNRESET"));
  }

  /** closes the connection; a request or body in flight fails with `err` */
  destroy(err: Error | undefined): void {
    if (this.dead) return;
    this.dead = true;
    this.socket.destroy();
    const ex = this.ex;
    this.ex = undefined;
    this.phase = Phase.Idle;
    if (ex) {
      const e = err ?? netError("S3 connection closed", "ECONNRESET");
      if (ex.body) ex.body.onError(e);
      else ex.reject(e);
    }
    this.onFree(this);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// the handler

/** idle connections per origin, shared by every handler in the process (clients are re-created when env changes) */
const idle = new Map<string, Connection[]>();

function takeIdle(origin: string): Connection | undefined {
  const list = idle.get(origin);
  while (list && list.length > 0) {
    const c = list.pop() as Connection;
    if (!c.dead) return c;
  }
  return undefined;
}

function putIdle(c: Connection): void {
  if (c.dead) {
    const list = idle.get(c.origin);
    if (list) {
      const i = list.indexOf(c);
      if (i >= 0) list.splice(i, 1);
    }
    return;
  }
  let list = idle.get(c.origin);
  if (!list) {
    list = [];
    idle.set(c.origin, list);
  }
  if (list.length >= S3_HTTP.maxIdlePerOrigin) c.destroy(undefined);
  else list.push(c);
}

/** Closes every idle connection (tests; a process that wants to exit at once). */
export function closeIdleConnections(): void {
  for (const list of idle.values()) for (const c of list.splice(0)) c.destroy(undefined);
}

export interface LeanHttpHandlerOptions {
  /** extra TLS options for https endpoints (tests: a private CA) */
  tls?: tls.ConnectionOptions;
}

let handlers = 0;

/** An SDK request handler: GETs over lean connections, everything else through NodeHttpHandler. */
export class LeanHttpHandler {
  readonly metadata = { handlerProtocol: "http/1.1" };
  private readonly inner = new NodeHttpHandler();
  /** pool key suffix: connections made with TLS options of this handler's own are not shared with other handlers */
  private readonly poolTag: string;

  constructor(private readonly opts: LeanHttpHandlerOptions = {}) {
    this.poolTag = opts.tls ? `#${++handlers}` : "";
  }

  async handle(request: HttpRequest, options: HttpHandlerOptions = {}): Promise<{ response: HttpResponse }> {
    if (request.method !== "GET" || request.body !== undefined) return this.inner.handle(request as never, options);
    const protocol = request.protocol === "https:" ? "https:" : "http:";
    const port = request.port ?? (protocol === "https:" ? 443 : 80);
    const origin = `${protocol}//${request.hostname}:${port}${this.poolTag}`;
    const head = requestHead(request);
    let conn = takeIdle(origin);
    if (!conn) {
      conn = new Connection(origin, { protocol, hostname: request.hostname, port, tls: this.opts.tls });
      conn.onFree = putIdle;
    }
    const response = await conn.request(head, request.method, options.abortSignal);
    return { response };
  }

  updateHttpClientConfig(key: never, value: never): void {
    this.inner.updateHttpClientConfig(key, value);
  }

  httpHandlerConfigs(): ReturnType<NodeHttpHandler["httpHandlerConfigs"]> {
    return this.inner.httpHandlerConfigs();
  }

  destroy(): void {
    this.inner.destroy();
  }
}
