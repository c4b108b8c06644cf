/**
 * core/aws/s3.ts response bodies against a scripted HTTP endpoint (no emulator): a connection dropped mid-body is
 * retried, a short or long body is an error with the same message on every read path (getRange, s3RangeReader with
 * window and network pieces, lent windows), and the fast paths return what a straightforward read returns; lent
 * windows (reuseWindows) come from a few buffers and stay intact until the next window is asked for; pooled windows
 * (pooledWindows) stay intact until releaseWindow. The read paths run through both GET transports (core/aws/lean-http.ts
 * and, with FERRY_S3_HTTP=node, the SDK's NodeHttpHandler).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { s3 } from "../../core/aws/clients.js";
import { isLeanBody } from "../../core/aws/lean-http.js";
import { getBytes, getRange, putBytes, releaseWindow, s3RangeReader } from "../../core/aws/s3.js";
import { LimitError } from "../../core/errors.js";

type SdkBody = { transformToByteArray(): Promise<Uint8Array> };

/** what the endpoint does with the next GETs (shifted per request; then "ok") */
type Mode = "ok" | "drop" | "short" | "long";
let script: Mode[] = [];
let requests = 0;
const object = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7 + (i >> 9)) & 0xff));

/** the Expect header of each PUT the endpoint saw */
const putExpect: (string | undefined)[] = [];

function handle(req: IncomingMessage, res: ServerResponse): void {
  requests++;
  if (req.method === "PUT") putExpect.push(req.headers.expect);
  req.resume();
  const mode = script.shift() ?? "ok";
  const m = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? "");
  const start = m ? Number(m[1]) : 0;
  const end = m ? Math.min(object.length - 1, Number(m[2])) : object.length - 1;
  let body = object.subarray(start, end + 1);
  if (mode === "short") body = body.subarray(0, Math.max(0, body.length - 10));
  if (mode === "long") body = Buffer.concat([body, Buffer.alloc(10, 1)]);
  res.writeHead(m ? 206 : 200, {
    "content-length": String(body.length),
    "content-type": "application/octet-stream",
    etag: '"x"',
    ...(m ? { "content-range": `bytes ${start}-${end}/${object.length}` } : {}),
  });
  if (mode === "drop") {
    // half the body, then the connection dies
    res.write(body.subarray(0, body.length >> 1), () => setTimeout(() => res.socket?.destroy(), 5));
    return;
  }
  res.end(body);
}

let server: Server;
const saved: Record<string, string | undefined> = {};
const ENV = {
  AWS_REGION: "us-east-1",
  AWS_ACCESS_KEY_ID: "test",
  AWS_SECRET_ACCESS_KEY: "test",
  AWS_REQUEST_CHECKSUM_CALCULATION: "WHEN_REQUIRED",
  AWS_RESPONSE_CHECKSUM_VALIDATION: "WHEN_REQUIRED",
  AWS_EC2_METADATA_DISABLED: "true",
};

beforeAll(async () => {
  server = createServer(handle);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  for (const k of [
    ...Object.keys(ENV),
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL",
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
  ]) {
    saved[k] = process.env[k];
  }
  delete process.env.AWS_ENDPOINT_URL;
  delete process.env.AWS_PROFILE;
  delete process.env.AWS_SESSION_TOKEN;
  Object.assign(process.env, ENV, { AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}` });
});

afterAll(async () => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await new Promise<void>((r) => server.close(() => r()));
});

async function collect(it: AsyncIterable<Uint8Array>): Promise<{ bytes: Buffer; pieces: Uint8Array[] }> {
  const pieces: Uint8Array[] = [];
  for await (const p of it) pieces.push(p);
  return { bytes: Buffer.concat(pieces), pieces };
}

const readers = {
  getRange: async (s: number, e: number) => Buffer.from(await getRange("bkt", "obj", s, e)),
  window: async (s: number, e: number) =>
    (await collect(s3RangeReader("bkt", "obj", s, e, { chunkBytes: 100_000, prefetch: 1 }))).bytes,
  network: async (s: number, e: number) =>
    (await collect(s3RangeReader("bkt", "obj", s, e, { chunkBytes: 100_000, prefetch: 1, pieces: "network" }))).bytes,
  // lent windows are valid until the next is asked for: copied here
  reuseWindows: async (s: number, e: number) => {
    const copies: Buffer[] = [];
    for await (const w of s3RangeReader("bkt", "obj", s, e, { chunkBytes: 100_000, prefetch: 1, reuseWindows: true })) {
      copies.push(Buffer.from(w));
    }
    return Buffer.concat(copies);
  },
};

describe("S3 response bodies (scripted endpoint)", () => {
  it("fast paths return what a whole-object read returns, as plain Uint8Arrays the caller owns", async () => {
    script = [];
    const whole = Buffer.from(await getBytes("bkt", "obj"));
    expect(whole.equals(object)).toBe(true);
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 12; i++) {
      const s = rnd(object.length);
      const e = s + rnd(object.length - s + 1);
      for (const [name, read] of Object.entries(readers)) {
        const got = await read(s, e);
        expect(got.equals(whole.subarray(s, e)), `${name} [${s}, ${e})`).toBe(true);
      }
    }
    const r = await getRange("bkt", "obj", 10, 70_000);
    expect(r.constructor).toBe(Uint8Array);
    expect(r.byteOffset).toBe(0);
    expect(r.buffer.byteLength).toBe(r.length);
    const { pieces } = await collect(
      s3RangeReader("bkt", "obj", 0, 250_000, { chunkBytes: 100_000, pieces: "network" }),
    );
    // at least one piece per window (3 windows); how a window's body splits depends on the socket reads
    expect(pieces.length).toBeGreaterThanOrEqual(3);
    expect(pieces.every((p) => p.constructor === Uint8Array && p.length > 0)).toBe(true);
    // every piece is the consumer's: later reads do not overwrite earlier pieces
    expect(Buffer.concat(pieces).equals(object.subarray(0, 250_000))).toBe(true);
  });

  it("reuseWindows lends each window from prefetch + 2 buffers, intact until the next is asked for", async () => {
    script = [];
    for (const prefetch of [0, 1, 3]) {
      const buffers = new Set<ArrayBufferLike>();
      let at = 5;
      for await (const w of s3RangeReader("bkt", "obj", 5, 290_001, {
        chunkBytes: 30_000,
        prefetch,
        reuseWindows: true,
      })) {
        buffers.add(w.buffer);
        // let the prefetched GETs land before looking at the window: they must not write into it
        await new Promise((r) => setTimeout(r, 5));
        expect(Buffer.from(w).equals(object.subarray(at, at + w.length)), `prefetch ${prefetch} at ${at}`).toBe(true);
        at += w.length;
      }
      expect(at).toBe(290_001);
      expect(buffers.size).toBeLessThanOrEqual(prefetch + 2);
    }
    // a read shorter than a window, with no window-sized buffer idle: its own buffer, no whole window allocated
    const opts = { chunkBytes: 77_777, reuseWindows: true };
    const { pieces } = await collect(s3RangeReader("bkt", "obj", 100, 1100, opts));
    expect(pieces.map((p) => [p.length, p.buffer.byteLength])).toEqual([[1000, 1000]]);
  });

  it("pooledWindows lends windows the consumer gives back with releaseWindow (anything else is ignored)", async () => {
    script = [];
    const opts = { chunkBytes: 40_000, prefetch: 1, pooledWindows: true };
    const kept: Uint8Array[] = [];
    let at = 0;
    // kept, never released: every window stays intact while later ones land
    for await (const w of s3RangeReader("bkt", "obj", 0, 200_000, opts)) kept.push(w);
    for (const w of kept) {
      expect(Buffer.from(w).equals(object.subarray(at, at + w.length))).toBe(true);
      at += w.length;
    }
    expect(new Set(kept.map((w) => w.buffer)).size).toBe(5);
    // given back: later windows reuse those buffers
    for (const w of kept) releaseWindow(w);
    releaseWindow(kept[0]); // twice: ignored
    releaseWindow(new Uint8Array(40_000)); // not lent: ignored
    const again = new Set<ArrayBufferLike>();
    at = 10;
    for await (const w of s3RangeReader("bkt", "obj", 10, 160_010, opts)) {
      expect(Buffer.from(w).equals(object.subarray(at, at + w.length))).toBe(true);
      at += w.length;
      again.add(w.buffer);
      releaseWindow(w);
    }
    expect([...again].every((b) => kept.some((w) => w.buffer === b))).toBe(true);
  });

  it("the S3 client's GET bodies are LeanBody; FERRY_S3_HTTP=node gives the SDK's own, same bytes", async () => {
    script = [];
    const read = async () => {
      const res = await s3().send(new GetObjectCommand({ Bucket: "bkt", Key: "obj" }));
      return { lean: isLeanBody(res.Body), bytes: Buffer.from(await (res.Body as SdkBody).transformToByteArray()) };
    };
    const lean = await read();
    expect(lean.lean).toBe(true);
    expect(lean.bytes.equals(object)).toBe(true);
    process.env.FERRY_S3_HTTP = "node";
    try {
      const node = await read();
      expect(node.lean).toBe(false);
      expect(node.bytes.equals(object)).toBe(true);
    } finally {
      delete process.env.FERRY_S3_HTTP;
    }
  });

  it("PUTs of 2 MiB and more go without Expect: 100-continue (kept on keep-alive connections)", async () => {
    script = [];
    putExpect.length = 0;
    await putBytes("bkt", "big", new Uint8Array(3 << 20));
    expect(putExpect).toEqual([undefined]);
  });

  // every read path, through the lean GET transport and through the SDK's NodeHttpHandler
  for (const transport of ["lean", "node"] as const) {
    describe(`${transport} transport`, () => {
      beforeAll(() => {
        if (transport === "node") process.env.FERRY_S3_HTTP = "node";
      });
      afterAll(() => {
        delete process.env.FERRY_S3_HTTP;
      });
      for (const [name, read] of Object.entries(readers)) {
        it(`${name}: a connection dropped mid-body is retried`, async () => {
          script = ["drop"];
          requests = 0;
          const got = await read(1000, 91_000);
          expect(got.equals(object.subarray(1000, 91_000))).toBe(true);
          expect(requests).toBe(2);
        });

        it(`${name}: a short or long body is an error naming the range and both lengths`, async () => {
          for (const [mode, actual] of [
            ["short", 89_990],
            ["long", 90_010],
          ] as const) {
            script = [mode];
            const err = await read(1000, 91_000).catch((e: unknown) => e);
            expect(err).toBeInstanceOf(LimitError);
            expect((err as Error).message).toBe(
              `GetObject s3://bkt/obj bytes=1000-90999: got ${actual} bytes, expected 90000 (is the range past the end of the object?)`,
            );
          }
        });
      }
    });
  }
});
