/**
 * Key encoding: how record fields become key bytes. Recorded in the manifest as `key.kind`:
 *
 * - "utf8" (one key column): the UTF-8 bytes of the field's canonical string form.
 * - "tuple" (several key columns): each component's canonical string form as UTF-8 bytes, every 0x00 byte in it
 *   escaped as 0x00 0xFF, followed by the terminator 0x00 0x01. Components back to back, nothing else.
 *   Unambiguous (decodeTupleKey inverts it) and order-preserving: comparing encoded keys bytewise equals comparing the
 *   tuples component by component, each component bytewise (a shorter component that is a prefix sorts first).
 *
 * Canonical string form of a scalar: strings as they are; integers in decimal without exponent (safe integers and
 * bigints); other finite numbers as JavaScript's shortest round-trip form (`String(n)`: 1.5, 1e+21, -0 → "0");
 * booleans "true"/"false"; dates as ISO-8601 UTC (`toISOString()`); byte arrays as their bytes. Empty strings, null,
 * missing fields, NaN/Infinity and objects/arrays are not keys (InputError / bad record).
 */

export type KeyKind = "utf8" | "tuple";

/** Why a value is not a usable key component (undefined = usable). */
export function keyProblem(v: unknown): string | undefined {
  if (v === undefined) return "is missing";
  if (v === null) return "is null";
  if (typeof v === "string") return v.length === 0 ? "is empty" : undefined;
  if (typeof v === "number") return Number.isFinite(v) ? undefined : `is not a finite number (${v})`;
  if (typeof v === "bigint" || typeof v === "boolean") return undefined;
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? "is an invalid date" : undefined;
  if (v instanceof Uint8Array) return v.length === 0 ? "is empty" : undefined;
  return `is not a scalar (${Array.isArray(v) ? "array" : typeof v})`;
}

/** Canonical string form of a scalar (see the module comment). Call keyProblem first. */
export function canonicalString(v: unknown): string {
  if (typeof v === "string") return v;
  if (typeof v === "number") return Object.is(v, -0) ? "0" : String(v);
  if (typeof v === "bigint" || typeof v === "boolean") return String(v);
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Uint8Array) return Buffer.from(v).toString("utf8");
  return JSON.stringify(v);
}

/** Bytes of one scalar (byte arrays stay raw; everything else UTF-8 of its canonical form). */
export function scalarBytes(v: unknown): Uint8Array {
  if (v instanceof Uint8Array) return v;
  return Buffer.from(canonicalString(v), "utf8");
}

/** Encodes a composite key (see the module comment). Components are byte arrays or scalars. */
export function encodeTupleKey(
  components: ReadonlyArray<Uint8Array | string | number | bigint | boolean | Date>,
): Uint8Array {
  const parts = components.map((c) => (c instanceof Uint8Array ? c : scalarBytes(c)));
  let n = 0;
  for (const p of parts) {
    n += p.length + 2;
    for (let i = 0; i < p.length; i++) if (p[i] === 0) n++;
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    for (let i = 0; i < p.length; i++) {
      const b = p[i];
      out[o++] = b;
      if (b === 0) out[o++] = 0xff;
    }
    out[o++] = 0;
    out[o++] = 1;
  }
  return out;
}

/** Decodes a composite key into its components' bytes. Throws on bytes that no encoder produced. */
export function decodeTupleKey(key: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let cur: number[] = [];
  for (let i = 0; i < key.length; i++) {
    const b = key[i];
    if (b !== 0) {
      cur.push(b);
      continue;
    }
    const next = key[i + 1];
    i++;
    if (next === 0xff) cur.push(0);
    else if (next === 1) {
      out.push(Uint8Array.from(cur));
      cur = [];
    } else throw new Error(`not a tuple key: byte 0x00 at ${i - 1} followed by ${next === undefined ? "end" : next}`);
  }
  if (cur.length) throw new Error("not a tuple key: missing terminator after the last component");
  return out;
}

/** Decodes a composite key into UTF-8 strings. */
export function decodeTupleKeyStrings(key: Uint8Array): string[] {
  return decodeTupleKey(key).map((c) => Buffer.from(c).toString("utf8"));
}

/** Printable form of key bytes for messages: the UTF-8 text when it is printable, else hex. */
export function printableKey(key: Uint8Array): string {
  const s = Buffer.from(key).toString("utf8");
  // biome-ignore lint/suspicious/noControlCharactersInRegex: detecting control characters is the point
  if (!/[\u0000-\u001f\ufffd]/.test(s)) return JSON.stringify(s.length > 200 ? `${s.slice(0, 200)}…` : s);
  const hex = Buffer.from(key).toString("hex");
  return `0x${hex.length > 400 ? `${hex.slice(0, 400)}…` : hex}`;
}
