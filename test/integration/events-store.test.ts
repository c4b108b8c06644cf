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

  it("uses at most 2 write requests per event; a latest write that cannot win is skipped (the latest floor)", async () => {
    const before = storeStats.writeRequests;
    const skippedBefore = storeStats.latestSkipped;
    const outcomes: string[] = [];
    for (let i = 0; i < 10; i++) outcomes.push(await applyEvent(ev("w1", i % 3, `i${i % 5}`), { table }));
    const writes = storeStats.writeRequests - before;
    const skipped = storeStats.latestSkipped - skippedBefore;
    // every event: one history write, plus a latest write unless a greater (or the same) event is known stored
    expect(writes + skipped).toBe(20);
    expect(writes).toBeLessThanOrEqual(20);
    // (0,i0) applied, (1,i1) applied, (2,i2) applied; then (0,i3) and (1,i4) are below the floor (2,i2): skipped
    expect(outcomes.slice(0, 5)).toEqual(["applied", "applied", "applied", "stale", "stale"]);
    expect(skipped).toBeGreaterThanOrEqual(2);
    const s = await getEntityState("w1", { table });
    expect(s.latest).toEqual(ev("w1", 2, "i3"));
  });

  it("the floor learns only from writes known to have landed", async () => {
    const real = dynamoRaw();
    // the latest write of (5,b) lands but its response is lost: the store must not assume it landed
    let lose = true;
    const lossy = {
      send: async (cmd: { input?: { Item?: { sk?: { S?: string } } } }) => {
        const res = await real.send(cmd as never);
        if (lose && cmd.input?.Item?.sk?.S === "L") {
          lose = false;
          throw Object.assign(new Error("injected: response lost"), { name: "TimeoutError" });
        }
        return res;
      },
    } as unknown as DynamoDBClient;
    await expect(applyEvent(ev("f1", 5, "b"), { table, client: lossy })).rejects.toThrow(/response lost/);
    const before = storeStats.writeRequests;
    // the retry must still write latest (a repair when it had landed): 2 requests, counted duplicate
    expect(await applyEvent(ev("f1", 5, "b"), { table })).toBe("duplicate");
    expect(storeStats.writeRequests - before).toBe(2);
    // now the floor knows (5,b): an older event needs only its history write
    expect(await applyEvent(ev("f1", 4, "z"), { table })).toBe("stale");
    expect(storeStats.writeRequests - before).toBe(3);
    expect((await getEntityState("f1", { table })).latest).toEqual(ev("f1", 5, "b"));
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
