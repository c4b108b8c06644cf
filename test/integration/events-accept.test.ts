/** accept behind the local Function URL stand-in, against the local SQS. */
import { ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalAccept, startLocalAccept } from "../../cli/commands/events.js";
import { sqs } from "../../core/aws/clients.js";
import { ensureEventsQueues } from "../../core/events/resources.js";
import { EVENTS } from "../../core/limits.js";

process.env.POWERTOOLS_LOG_LEVEL = "SILENT";

let accept: LocalAccept;
let queueUrl: string;
beforeAll(async () => {
  queueUrl = (await ensureEventsQueues(`evacc-${process.pid}-${Date.now()}`)).queueUrl;
  accept = await startLocalAccept(queueUrl);
});
afterAll(async () => accept?.close());

const post = async (body: string | Uint8Array, headers: Record<string, string> = {}, method = "POST") => {
  const res = await fetch(accept.url, { method, body: method === "GET" ? undefined : body, headers });
  return {
    status: res.status,
    json: (await res.json()) as Record<string, unknown> & { results: { status: string; reason?: string }[] },
  };
};

describe("accept", () => {
  it("202 with per-event results: valid ones queued, invalid ones rejected with the reason (JSONL)", async () => {
    const body = [
      JSON.stringify({ entity: "a1", id: "e1", time: 1, type: "t", payload: { x: 1 } }),
      JSON.stringify({ entity: "a1", id: "e2", time: "nope", type: "t" }),
      "{oops",
      JSON.stringify({ entity: "a2", id: "e3", time: "2025-01-01T00:00:00Z", type: "t" }),
    ].join("\n");
    const r = await post(body, { "content-type": "application/x-ndjson" });
    expect(r.status).toBe(202);
    expect(r.json).toMatchObject({ accepted: 2, rejected: 2, failed: 0 });
    expect(r.json.results.map((x) => x.status)).toEqual(["accepted", "rejected", "rejected", "accepted"]);
    expect(r.json.results[1].reason).toMatch(/line 2: field 'time'/);
    expect(r.json.results[2].reason).toMatch(/line 3: not valid JSON/);
    const got = await sqs().send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
    );
    const bodies = (got.Messages ?? []).map((m) => JSON.parse(m.Body!));
    expect(bodies.map((b) => b.id).sort()).toEqual(["e1", "e3"]);
    expect(bodies.find((b) => b.id === "e3").time).toBe(Date.parse("2025-01-01T00:00:00Z"));
  });

  it("accepts a JSON array and a base64-encoded (binary content type) body", async () => {
    const arr = JSON.stringify([{ entity: "b", id: "1", time: 5, type: "t" }]);
    expect((await post(arr, { "content-type": "application/json" })).status).toBe(202);
    const bin = await post(new TextEncoder().encode(arr), { "content-type": "application/octet-stream" });
    expect(bin.status).toBe(202);
    expect(bin.json.accepted).toBe(1);
  });

  it("400 for an unusable body, 413 for too many events, 405 for GET", async () => {
    expect((await post("   ")).status).toBe(400);
    expect((await post("[1,")).status).toBe(400);
    const many = Array.from({ length: EVENTS.maxBatchEvents + 1 }, (_, i) =>
      JSON.stringify({ entity: "c", id: `i${i}`, time: i, type: "t" }),
    ).join("\n");
    const r = await post(many);
    expect(r.status).toBe(413);
    expect(String(r.json.error)).toMatch(/at most 500/);
    expect((await post("", {}, "GET")).status).toBe(405);
  });

  it("503 with `failed` results when the queue cannot take the events (nothing silently lost)", async () => {
    const broken = await startLocalAccept(`${queueUrl}-does-not-exist`);
    try {
      const res = await fetch(broken.url, {
        method: "POST",
        body: JSON.stringify([
          { entity: "d", id: "1", time: 1, type: "t" },
          { entity: "d", id: "bad id", time: 1, type: "t" },
        ]),
      });
      expect(res.status).toBe(503);
      const j = (await res.json()) as { results: { status: string }[]; failed: number };
      expect(j.failed).toBe(1);
      expect(j.results.map((x) => x.status)).toEqual(["failed", "rejected"]);
    } finally {
      await broken.close();
    }
  });
});
