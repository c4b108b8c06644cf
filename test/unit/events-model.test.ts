import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  compareEvents,
  diffState,
  expectedStates,
  type FerryEvent,
  parseEvent,
  parseEventText,
  serializeEvent,
  splitBody,
} from "../../core/events/model.js";
import { eventKeys } from "../../core/events/store.js";
import { EVENTS } from "../../core/limits.js";

const ev = (entity: string, time: number, id: string, payload: unknown = { n: id }): FerryEvent => ({
  entity,
  id,
  time,
  type: "progress",
  payload,
});

describe("event schema", () => {
  it("accepts epoch ms and ISO-8601 times and normalizes them", () => {
    const a = parseEvent({ entity: "p1", id: "e-1", time: 1763790000123, type: "progress", payload: { pos: 3 } });
    expect(a).toEqual({ ok: true, event: ev("p1", 1763790000123, "e-1", { pos: 3 }) });
    const b = parseEvent({ entity: "p1", id: "e-1", time: "2025-11-22T05:40:00.123Z", type: "progress" });
    expect(b.ok && b.event.time).toBe(Date.parse("2025-11-22T05:40:00.123Z"));
    expect(b.ok && b.event.payload).toBeNull();
  });

  it("rejects with a reason naming the field", () => {
    const cases: [unknown, RegExp][] = [
      [{ id: "e", time: 1, type: "t" }, /field 'entity'/],
      [{ entity: "", id: "e", time: 1, type: "t" }, /field 'entity'.*empty/],
      [{ entity: "p", id: "has space", time: 1, type: "t" }, /field 'id'.*ASCII/],
      [{ entity: "p", id: "e", time: -1, type: "t" }, /field 'time'/],
      [{ entity: "p", id: "e", time: 1.5, type: "t" }, /field 'time'/],
      [{ entity: "p", id: "e", time: "yesterday", type: "t" }, /field 'time'/],
      [{ entity: "p", id: "e", time: 1, type: "t", extra: 1 }, /extra/],
      [
        { entity: "p", id: "e", time: 1, type: "t", payload: "x".repeat(EVENTS.maxPayloadBytes) },
        /field 'payload'.*bytes/,
      ],
      [{ entity: "x".repeat(EVENTS.maxEntityKeyBytes + 1), id: "e", time: 1, type: "t" }, /field 'entity'.*bytes/],
      [[1, 2], /JSON object/],
    ];
    for (const [value, re] of cases) {
      const r = parseEvent(value);
      expect(r.ok, JSON.stringify(value).slice(0, 80)).toBe(false);
      if (!r.ok) expect(r.reason).toMatch(re);
    }
    const t = parseEventText("{not json");
    expect(t.ok).toBe(false);
    if (!t.ok) expect(t.reason).toMatch(/not valid JSON/);
  });

  it("splits JSON arrays and JSONL bodies, keeping line numbers and undecodable lines", () => {
    expect(splitBody('[{"a":1},{"b":2}]').map((i) => i.value)).toEqual([{ a: 1 }, { b: 2 }]);
    const items = splitBody('{"a":1}\n\n{oops\n{"c":3}\n');
    expect(items.map((i) => [i.index, i.line, i.error === undefined])).toEqual([
      [0, 1, true],
      [1, 3, false],
      [2, 4, true],
    ]);
    expect(items[1]!.error).toMatch(/line 3/);
    expect(() => splitBody("   ")).toThrow(/empty body/);
    expect(() => splitBody("[1,")).toThrow(/JSON array/);
  });
});

describe("ordering and the reference model", () => {
  it("history sort keys order exactly like (time, id)", () => {
    const idArb = fc.stringMatching(/^[\x21-\x7e]{1,12}$/);
    fc.assert(
      fc.property(fc.nat({ max: 2 ** 48 }), idArb, fc.nat({ max: 2 ** 48 }), idArb, (t1, i1, t2, i2) => {
        const a = eventKeys.history({ entity: "x", time: t1, id: i1 }).sk;
        const b = eventKeys.history({ entity: "x", time: t2, id: i2 }).sk;
        const keyCmp = Buffer.compare(Buffer.from(a), Buffer.from(b));
        expect(Math.sign(keyCmp)).toBe(Math.sign(compareEvents({ time: t1, id: i1 }, { time: t2, id: i2 })));
      }),
    );
  });

  it("the model is independent of delivery order and duplication", () => {
    const evArb = fc.record({
      entity: fc.constantFrom("a", "b", "c"),
      time: fc.integer({ min: 0, max: 5 }),
      id: fc.constantFrom("x", "y", "z"),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(evArb, { selector: (e) => `${e.entity}/${e.time}/${e.id}` }),
        fc.nat(),
        (raw, seed) => {
          const events = raw.map((r) => ev(r.entity, r.time, r.id));
          const shuffled = [...events, ...events.filter((_, i) => (i + seed) % 3 === 0)].sort(
            (p, q) => ((serializeEvent(p).length * 31 + seed) % 7) - ((serializeEvent(q).length * 17 + seed) % 5),
          );
          const a = expectedStates(events);
          const b = expectedStates(shuffled);
          expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
          for (const [k, s] of a) expect(diffState(s, b.get(k) ?? null)).toEqual([]);
        },
      ),
    );
  });

  it("latest is the greatest (time, id); ties on time broken by id", () => {
    const s = expectedStates([ev("p", 5, "b"), ev("p", 5, "a"), ev("p", 4, "z")]).get("p")!;
    expect(s.latest!.id).toBe("b");
    expect(s.history.map((e) => e.id)).toEqual(["z", "a", "b"]);
    expect(diffState(s, { ...s, latest: s.history[0]! })[0]).toMatch(/latest is 4\/z, expected 5\/b/);
  });
});
