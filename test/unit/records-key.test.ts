import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InputError } from "../../core/errors.js";
import {
  canonicalString,
  decodeTupleKey,
  decodeTupleKeyStrings,
  encodeTupleKey,
  isSkipped,
  makeRecordMapper,
  type SourceRecord,
} from "../../core/records/index.js";

const bytes = fc.uint8Array({ maxLength: 12 });
const cmp = (a: Uint8Array, b: Uint8Array) => Math.sign(Buffer.compare(a, b));
function cmpTuple(a: Uint8Array[], b: Uint8Array[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const c = cmp(a[i], b[i]);
    if (c !== 0) return c;
  }
  return Math.sign(a.length - b.length);
}

describe("composite key encoding", () => {
  it("round-trips (unambiguous)", () => {
    fc.assert(
      fc.property(fc.array(bytes, { minLength: 1, maxLength: 5 }), (parts) => {
        expect(decodeTupleKey(encodeTupleKey(parts)).map((p) => Buffer.from(p))).toEqual(
          parts.map((p) => Buffer.from(p)),
        );
      }),
      { numRuns: 500 },
    );
  });
  it("different tuples never encode to the same bytes", () => {
    fc.assert(
      fc.property(
        fc.array(bytes, { minLength: 1, maxLength: 4 }),
        fc.array(bytes, { minLength: 1, maxLength: 4 }),
        (a, b) => {
          const same = cmpTuple(a, b) === 0;
          expect(Buffer.compare(encodeTupleKey(a), encodeTupleKey(b)) === 0).toBe(same);
        },
      ),
      { numRuns: 500 },
    );
  });
  it("is order-preserving: bytewise order of encodings = tuple order (same arity)", () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 4 })
          .chain((n) =>
            fc.tuple(fc.array(bytes, { minLength: n, maxLength: n }), fc.array(bytes, { minLength: n, maxLength: n })),
          ),
        ([a, b]) => {
          expect(cmp(encodeTupleKey(a), encodeTupleKey(b))).toBe(cmpTuple(a, b));
        },
      ),
      { numRuns: 1000 },
    );
  });
  it("handles the tricky cases: embedded 0x00, prefixes", () => {
    const e = (...p: string[]) => encodeTupleKey(p.map((s) => Buffer.from(s, "latin1")));
    expect(Buffer.from(e("a", "b")).toString("hex")).toBe("61000162" + "0001");
    expect(Buffer.from(e("a\u0000")).toString("hex")).toBe("6100ff0001");
    expect(cmp(e("ab"), e("ab\u0000"))).toBe(-1);
    expect(cmp(e("a", "z"), e("ab", "a"))).toBe(-1);
    expect(decodeTupleKeyStrings(encodeTupleKey(["user", 42, 1.5, true]))).toEqual(["user", "42", "1.5", "true"]);
    expect(() => decodeTupleKey(Uint8Array.from([0x61, 0x00, 0x05]))).toThrow(/not a tuple key/);
    expect(() => decodeTupleKey(Uint8Array.from([0x61]))).toThrow(/terminator/);
  });
  it("canonical scalars", () => {
    expect(canonicalString(42)).toBe("42");
    expect(canonicalString(-0)).toBe("0");
    expect(canonicalString(1e21)).toBe("1e+21");
    expect(canonicalString(12345678901234567890n)).toBe("12345678901234567890");
    expect(canonicalString(new Date(0))).toBe("1970-01-01T00:00:00.000Z");
  });
});

function rec(record: Record<string, unknown>, line = 7, extra: Partial<SourceRecord> = {}): SourceRecord {
  return { record, source: "s3://in/x.jsonl", line, ...extra };
}

describe("record mapper", () => {
  it("one key column: UTF-8 of its canonical form; value = JSON of the other fields", () => {
    const m = makeRecordMapper({ key: ["id"], badRecords: "fail", maxBadRecords: 0 });
    const r = m(rec({ id: 12, name: "ann", big: 2n ** 60n }));
    if (isSkipped(r)) throw new Error("skipped");
    expect(Buffer.from(r.key).toString()).toBe("12");
    expect(JSON.parse(Buffer.from(r.value).toString())).toEqual({ name: "ann", big: "1152921504606846976" });
  });
  it("value columns, valueRaw, composite keys", () => {
    const m1 = makeRecordMapper({ key: ["a", "b"], value: ["c", "missing"], badRecords: "fail", maxBadRecords: 0 });
    const r1 = m1(rec({ a: "x", b: 2, c: { deep: [1] } }));
    if (isSkipped(r1)) throw new Error("skipped");
    expect(decodeTupleKeyStrings(r1.key)).toEqual(["x", "2"]);
    expect(Buffer.from(r1.value).toString()).toBe('{"c":{"deep":[1]},"missing":null}');
    const m2 = makeRecordMapper({ key: ["a"], valueRaw: "payload", badRecords: "fail", maxBadRecords: 0 });
    const r2 = m2(rec({ a: "k", payload: "raw bytes ✓" }));
    if (isSkipped(r2)) throw new Error("skipped");
    expect(Buffer.from(r2.value).toString()).toBe("raw bytes ✓");
  });
  it("fail policy: InputError naming source, line and field", () => {
    const m = makeRecordMapper({ key: ["profile_id"], badRecords: "fail", maxBadRecords: 0 });
    for (const [record, why] of [
      [{ profile_id: "" }, /column 'profile_id' is empty/],
      [{}, /column 'profile_id' is missing/],
      [{ profile_id: null }, /is null/],
      [{ profile_id: { a: 1 } }, /is not a scalar/],
      [{ profile_id: [1] }, /is not a scalar \(array\)/],
    ] as const) {
      let err: unknown;
      try {
        m(rec(record, 1042));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InputError);
      expect((err as InputError).message).toMatch(/^s3:\/\/in\/x\.jsonl line 1042: key column/);
      expect((err as InputError).message).toMatch(why);
      expect((err as InputError).details).toMatchObject({ source: "s3://in/x.jsonl", line: 1042, field: "profile_id" });
    }
  });
  it("key and value size limits", () => {
    const m = makeRecordMapper({ key: ["k"], badRecords: "fail", maxBadRecords: 0, maxKeyBytes: 4, maxValueBytes: 10 });
    expect(() => m(rec({ k: "12345" }))).toThrow(/key is 5 bytes, more than the 4 allowed/);
    expect(() => m(rec({ k: "1", v: "x".repeat(20) }))).toThrow(/value is \d+ bytes, more than the 10 allowed/);
  });
  it("skip policy: skips up to maxBadRecords, then fails with examples", () => {
    const m = makeRecordMapper({ key: ["k"], badRecords: "skip", maxBadRecords: 2 });
    expect(isSkipped(m(rec({}, 1)))).toBe(true);
    expect(isSkipped(m(rec({ k: "ok" }, 2)))).toBe(false);
    expect(isSkipped(m(rec({ k: "" }, 3, { chunkStart: 1000 })))).toBe(true);
    expect(m.skipped).toBe(2);
    expect(m.examples[1]).toBe("s3://in/x.jsonl line 3 of the chunk starting at byte 1000: key column 'k' is empty");
    expect(() => m(rec({ k: null }, 4))).toThrow(
      /more than maxBadRecords=2 bad records; examples: s3:\/\/in\/x\.jsonl line 1: key column 'k' is missing/,
    );
  });
  it("unparseable records are bad records", () => {
    const m = makeRecordMapper({ key: ["k"], badRecords: "fail", maxBadRecords: 0 });
    expect(() => m(rec({}, 9, { problem: "is not valid JSON (x)" }))).toThrow(/line 9: record is not valid JSON/);
  });
});
