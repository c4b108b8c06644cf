/**
 * The apply rule against the local DynamoDB: any permutation of any duplication of an event set — with writes
 * failing before or after they land (lost responses) and retried later — ends in exactly the state of in-order,
 * exactly-once application.
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { dynamoRaw } from "../../core/aws/clients.js";
import { NotFoundError } from "../../core/errors.js";
import { diffState, expectedStates, type FerryEvent } from "../../core/events/model.js";
import { ensureEventsTable } from "../../core/events/resources.js";
import { applyEvent, getEntityState, storeStats } from "../../core/events/store.js";
import { mulberry32 } from "../../core/random.js";

const table = `events-store-${process.pid}-${Date.now()}`;

/** Failure injection the emulator cannot produce: a request that fails before it lands, or lands and its response is lost. */
function flakyClient(real: DynamoDBClient, rnd: () => number, pBefore: number, pAfter: number): DynamoDBClient {
  return {
    send: async (cmd: unknown) => {
      if (rnd() < pBefore) throw Object.assign(new Error("injected: connection reset"), { name: "TimeoutError" });
      const res = await real.send(cmd as never);
      if (rnd() < pAfter) throw Object.assign(new Error("injected: response lost"), { name: "TimeoutError" });
      return res;
    },
  } as unknown as DynamoDBClient;
}

const ev = (entity: string, time: number, id: string): FerryEvent => ({
  entity,
  id,
  time,
  type: "progress",
  payload: { at: time, id },
});

beforeAll(async () => {
  await ensureEventsTable(table);
});

describe("events store", () => {
  it("classifies applied, duplicate and stale, and reads the state back", async () => {
    const deps = { table };
    expect(await applyEvent(ev("s1", 10, "b"), deps)).toBe("applied");
    expect(await applyEvent(ev("s1", 10, "b"), deps)).toBe("duplicate");
    expect(await applyEvent(ev("s1", 10, "a"), deps)).toBe("stale"); // same time, smaller id
    expect(await applyEvent(ev("s1", 5, "z"), deps)).toBe("stale");
    expect(await applyEvent(ev("s1", 10, "c"), deps)).toBe("applied");
    expect(await applyEvent(ev("s1", 10, "a"), deps)).toBe("duplicate");
    // same identity, different content: a conflict — the first recorded wins, latest is not overwritten
    expect(await applyEvent({ ...ev("s1", 10, "c"), payload: { other: true } }, deps)).toBe("duplicate");
    const s = await getEntityState("s1", deps);
    expect(s.latest).toEqual(ev("s1", 10, "c"));
    expect(s.history.map((e) => `${e.time}/${e.id}`)).toEqual(["5/z", "10/a", "10/b", "10/c"]);
    const limited = await getEntityState("s1", { table, historyLimit: 2 });
    expect(limited.history.map((e) => e.id)).toEqual(["b", "c"]);
    await expect(getEntityState("nobody", deps)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("uses at most 2 write requests per event", async () => {
    const before = storeStats.writeRequests;
    for (let i = 0; i < 10; i++) await applyEvent(ev("w1", i % 3, `i${i % 5}`), { table });
    expect(storeStats.writeRequests - before).toBe(20);
  });

  it("any order, any duplication, lost responses and retries → the in-order exactly-once state", async () => {
    let run = 0;
    const eventArb = fc.record({
      entity: fc.constantFrom("a", "b", "c"),
      time: fc.integer({ min: 0, max: 4 }),
      id: fc.constantFrom("x", "y", "z", "w"),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(eventArb, { minLength: 1, maxLength: 10, selector: (e) => `${e.entity}/${e.time}/${e.id}` }),
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.integer(),
        fc.integer({ min: 0, max: 30 }),
        async (raw, dupIdx, seed, failPct) => {
          const pFail = failPct / 100;
          const prefix = `r${run++}-`;
          const events = raw.map((r) => ev(prefix + r.entity, r.time, r.id));
          const rnd = mulberry32(seed);
          // deliveries: every event once, plus duplicates, in a random order
          const queue = [...events, ...dupIdx.map((i) => events[i % events.length]!)];
          for (let i = queue.length - 1; i > 0; i--) {
            const j = Math.floor(rnd() * (i + 1));
            [queue[i], queue[j]] = [queue[j]!, queue[i]!];
          }
          const client = flakyClient(dynamoRaw(), rnd, pFail, pFail);
          let guard = 0;
          while (queue.length > 0) {
            const e = queue.shift()!;
            try {
              await applyEvent(e, { table, client });
            } catch {
              // a failed delivery comes back later (SQS redelivery after the visibility timeout)
              queue.splice(Math.floor(rnd() * (queue.length + 1)), 0, e);
            }
            if (++guard > 2000) throw new Error("did not converge");
          }
          for (const [entity, want] of expectedStates(events)) {
            const got = await getEntityState(entity, { table });
            expect(diffState(want, got)).toEqual([]);
          }
        },
      ),
      { numRuns: 20 },
    );
  }, 300_000);
});
