import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { valueJson } from "../../core/records/mapper.js";

/** what valueJson promises: bigints in the safe range as numbers, beyond as strings; byte arrays as base64 */
function reference(obj: Record<string, unknown>): string {
  return JSON.stringify(obj, (_k, v) => {
    if (typeof v === "bigint") return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
    if (v instanceof Uint8Array) return Buffer.from(v).toString("base64");
    return v;
  });
}

const scalar = fc.oneof(
  fc.string(),
  fc.double(),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
  fc.uint8Array({ maxLength: 8 }),
  fc.date({ noInvalidDate: true }),
);
const value = fc.oneof(
  { weight: 4, arbitrary: scalar },
  { weight: 1, arbitrary: fc.array(scalar, { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 4 }), scalar, { maxKeys: 3 }) },
);

describe("valueJson", () => {
  it("serializes every value as the replacer would, with or without the plain-values shortcut", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 6 }), value, { maxKeys: 6 }), (obj) => {
        expect(valueJson(obj)).toBe(reference(obj));
      }),
      { numRuns: 2000 },
    );
  });

  it("plain rows (strings, numbers, dates) and typed ones", () => {
    const d = new Date(Date.UTC(2026, 10, 22));
    expect(valueJson({ a: "x", b: 1, c: null, d, e: true })).toBe(
      '{"a":"x","b":1,"c":null,"d":"2026-11-22T00:00:00.000Z","e":true}',
    );
    expect(valueJson({ a: 2n ** 60n, b: 5n, c: new Uint8Array([1, 2, 3]) })).toBe(
      '{"a":"1152921504606846976","b":5,"c":"AQID"}',
    );
    expect(valueJson({ nested: { big: 7n } })).toBe('{"nested":{"big":7}}');
  });
});
