import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type FastJsonlMapper, type FastJsonlOptions, makeFastJsonlMapper } from "../../core/records/jsonl-fast.js";
import { JSONL_WASM } from "../../core/limits.js";
import { jsonlWasmEnabled, makeWasmJsonlMapper, type WasmJsonlMapper } from "../../core/records/jsonl-wasm.js";
import { isSkipped, makeRecordMapper } from "../../core/records/mapper.js";
import { jsonlRecord } from "../../core/records/readers.js";

/**
 * The fast path must give exactly what the straightforward path gives (jsonlRecord → makeRecordMapper), or decline
 * the line (then the caller takes the straightforward path). Lines come from a generator of JSON *text* (so number
 * forms like 1.0/1e5/-0, escapes, whitespace, duplicate and integer-like names appear as written), plus mutations
 * that break it.
 *
 * The WebAssembly mapper (core/records/jsonl-wasm.ts) is checked on the same lines: against the straightforward path
 * and against the JS mapper (the same lines accepted, the same bytes), with the line inside its arena (as Partition
 * passes it, stale bytes after it) and handed in from another array (copied in).
 */

// ---- JSON text generator ----

const ws = fc.constantFrom("", "", "", " ", "  ", "\t", " \r ");
const numberToken = fc.oneof(
  fc.integer({ min: -1e6, max: 1e6 }).map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)),
  fc.constantFrom(
    "0",
    "-0",
    "1.0",
    "1e5",
    "1E2",
    "0.10",
    "-0.0",
    "1e+21",
    "1e21",
    "123456789012345678901",
    "9007199254740993",
    "999999999999999",
    "1000000000000000",
    "1.5e-7",
    "1e400",
    "-1e-400",
    "2.5",
    "0.1",
  ),
  fc
    .tuple(
      fc.boolean(),
      fc.oneof(fc.constant("0"), fc.integer({ min: 1, max: 99999999 }).map(String)),
      fc.option(fc.integer({ min: 0, max: 9999 }).map(String)),
      fc.option(fc.tuple(fc.constantFrom("e", "E"), fc.constantFrom("", "+", "-"), fc.integer({ min: 0, max: 400 }))),
    )
    .map(
      ([neg, int, frac, exp]) =>
        `${neg ? "-" : ""}${int}${frac !== null ? `.${frac}` : ""}${exp ? `${exp[0]}${exp[1]}${exp[2]}` : ""}`,
    ),
);
/** the inside of a JSON string literal (valid JSON text) */
const stringBody = fc
  .array(
    fc.oneof(
      { weight: 6, arbitrary: fc.string({ maxLength: 8 }).map((s) => JSON.stringify(s).slice(1, -1)) },
      {
        weight: 2,
        arbitrary: fc.string({ unit: "grapheme", maxLength: 4 }).map((s) => JSON.stringify(s).slice(1, -1)),
      },
      {
        weight: 2,
        arbitrary: fc.constantFrom(
          '\\"',
          "\\\\",
          "\\/",
          "\\b",
          "\\f",
          "\\n",
          "\\r",
          "\\t",
          "\\u0041",
          "\\u00e9",
          "\\u0001",
          "\\ud83d\\ude00",
          "\\ud800",
          "é",
          "😀",
          "\u2028",
          "\u007f",
        ),
      },
    ),
    { maxLength: 4 },
  )
  .map((parts) => parts.join(""));
const str = stringBody.map((b) => `"${b}"`);
const memberName = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom("id", "a", "b", "c", "name", "id2", "zz") },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "1",
      "01",
      "42",
      "-1",
      "__proto__",
      "constructor",
      "",
      "k\u00e9",
      "i\\u0064",
      "a b",
      'q\\"',
      "q\\u0001",
      "q\\n",
    ),
  },
  { weight: 1, arbitrary: stringBody },
);

const { value } = fc.letrec<{ value: string; object: string; array: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    str,
    numberToken,
    fc.constantFrom("true", "false", "null"),
    tie("object"),
    tie("array"),
  ),
  object: fc
    .tuple(fc.array(fc.tuple(ws, memberName, ws, ws, tie("value"), ws), { maxLength: 4 }), ws)
    .map(([ms, w]) =>
      ms.length === 0 ? `{${w}}` : `{${ms.map(([a, n, b, c, v, d]) => `${a}"${n}"${b}:${c}${v}${d}`).join(",")}}`,
    ),
  array: fc
    .tuple(fc.array(fc.tuple(ws, tie("value"), ws), { maxLength: 4 }), ws)
    .map(([vs, w]) => (vs.length === 0 ? `[${w}]` : `[${vs.map(([a, v, b]) => `${a}${v}${b}`).join(",")}]`)),
}));

/** a top-level record: the interesting members first (in random order), then the rest */
const keyValue = fc.oneof(
  { weight: 8, arbitrary: fc.string({ minLength: 1, maxLength: 12 }).map((s) => JSON.stringify(s)) },
  { weight: 2, arbitrary: numberToken },
  { weight: 1, arbitrary: fc.constantFrom('""', "null", "true", "false", "{}", "[1]", '"x\\u0041"', '"a\\"b"') },
  { weight: 1, arbitrary: value },
);
const member = (n: string) =>
  fc.option(
    keyValue.map((v) => [n, v] as [string, string]),
    { freq: 4, nil: undefined },
  );
const record = fc
  .tuple(
    fc.tuple(member("id"), member("a"), member("b"), member("zz")),
    fc.array(fc.tuple(memberName, value), { maxLength: 4 }),
    fc.array(fc.tuple(ws, ws, ws, ws), { minLength: 10, maxLength: 10 }),
    fc.boolean(),
  )
  .chain(([special, rest, wss, shuffle]) => {
    const members = [...special.filter((m) => m !== undefined), ...rest];
    return (shuffle ? fc.shuffledSubarray(members, { minLength: members.length }) : fc.constant(members)).map((ms) => {
      const w = (i: number) => wss[i % wss.length];
      if (ms.length === 0) return `${w(0)[0]}{${w(0)[1]}}${w(0)[2]}`;
      return `${w(0)[0]}{${ms.map(([n, v], i) => `${w(i)[1]}"${n}"${w(i)[2]}:${w(i)[3]}${v}${w(i + 1)[1]}`).join(",")}}${w(1)[3]}`;
    });
  });

/** lines that are not (or no longer) valid JSON objects */
const mutated = fc
  .tuple(record, fc.nat(), fc.constantFrom("cut", "insert", "replace"), fc.constantFrom(...'{}[],:"\\ 0-e.xn\u0000é'))
  .map(([text, at, how, ch]) => {
    const i = text.length === 0 ? 0 : at % text.length;
    if (how === "cut") return text.slice(0, i);
    if (how === "insert") return text.slice(0, i) + ch + text.slice(i);
    return text.slice(0, i) + ch + text.slice(i + 1);
  });

const lineText = fc.oneof(
  { weight: 4, arbitrary: record },
  { weight: 1, arbitrary: mutated },
  {
    weight: 1,
    arbitrary: fc.constantFrom("", "  ", "[]", "1", '"x"', "null", "{", "}", '{"id":"a"', '{"id":"a"}}', '{"id":"a",}'),
  },
);

// ---- the comparison ----

type Opts = FastJsonlOptions;
const OPTIONS: Opts[] = [
  { key: ["id"] },
  { key: ["id"], maxKeyBytes: 6, maxValueBytes: 40 },
  { key: ["id", "a"] },
  { key: ["id"], value: ["b", "a", "zz", "b"] },
  { key: ["id"], valueRaw: "b" },
  { key: ["a", "id"], value: [] },
  { key: ["id"], value: ['q"', "a"] },
];

function straight(opts: Opts, line: Buffer) {
  const mapper = makeRecordMapper({
    ...opts,
    badRecords: "skip",
    maxBadRecords: Number.MAX_SAFE_INTEGER,
    typedValues: false,
  });
  const rec = jsonlRecord(line, "s3://in/x.jsonl", 7, undefined);
  if (!rec) return { blank: true as const };
  const m = mapper(rec);
  if (isSkipped(m)) return { skip: m.skip };
  return { key: Buffer.from(m.key).toString("hex"), value: Buffer.from(m.value).toString("hex") };
}

/** one mapper per options, reused across lines (as partition does): no state may leak from line to line */
const mappers = new Map<Opts, FastJsonlMapper | undefined>();
function fast(opts: Opts, buf: Uint8Array, start: number, end: number) {
  if (!mappers.has(opts)) mappers.set(opts, makeFastJsonlMapper(opts));
  const f = mappers.get(opts);
  if (!f?.map(buf, start, end)) return undefined;
  return result(f);
}

const ARENA = 1 << 16;
const wasmMappers = new Map<Opts, WasmJsonlMapper | undefined>();
/** the WebAssembly mapper on the line: inside its arena (at the same offsets) or handed in from `buf` */
function wasm(opts: Opts, buf: Uint8Array, start: number, end: number, inArena: boolean) {
  if (!wasmMappers.has(opts)) wasmMappers.set(opts, makeWasmJsonlMapper(opts, ARENA));
  const f = wasmMappers.get(opts);
  if (!f) return undefined;
  let b = buf;
  if (inArena && buf.length <= ARENA) {
    f.arena.set(buf, 0);
    b = f.arena;
  }
  if (!f.map(b, start, end)) return undefined;
  if (end - start <= ARENA) {
    expect(f.keySrc).toBe(f.arena);
    expect(f.valSrc).toBe(f.arena);
  }
  return result(f);
}

function result(f: FastJsonlMapper) {
  const key = Buffer.from(f.keySrc.subarray(f.keyStart, f.keyEnd)).toString("hex");
  const parts: Buffer[] = [];
  for (let j = 0; j < f.nsegs; j++) parts.push(Buffer.from(f.valSrc.subarray(f.segs[2 * j], f.segs[2 * j + 1])));
  const v = Buffer.concat(parts);
  expect(v.length).toBe(f.valueLen);
  return { key, value: v.toString("hex") };
}

/** the line placed inside a larger buffer (as in a piece of input): the mapper must not read outside it */
function embed(line: Buffer, before: string, after: string): { buf: Uint8Array; start: number; end: number } {
  const buf = Buffer.concat([Buffer.from(before), line, Buffer.from(after)]);
  return {
    buf: new Uint8Array(buf.buffer, buf.byteOffset, buf.length),
    start: before.length,
    end: before.length + line.length,
  };
}

function check(opts: Opts, line: Buffer, stats: { fast: number; total: number }) {
  const want = straight(opts, line);
  for (const [before, after] of [
    ["", ""],
    ['{"id":"zz"}\n', '\n{"id":"q"}'],
    ["x", '0"}]\r\n'],
  ]) {
    const { buf, start, end } = embed(line, before, after);
    const got = fast(opts, buf, start, end);
    if (got) {
      stats.fast++;
      expect(want).toEqual(got);
    }
    stats.total++;
    for (const inArena of [true, false]) {
      const w = wasm(opts, buf, start, end, inArena);
      if (w) expect(want).toEqual(w);
      // the same lines take the fast path in WebAssembly as in JS
      expect(w).toEqual(got);
    }
  }
}

describe("JSONL fast path = JSON.parse path", () => {
  for (const opts of OPTIONS) {
    it(`random and tricky JSON text, options ${JSON.stringify(opts)} (property)`, () => {
      const stats = { fast: 0, total: 0 };
      fc.assert(
        fc.property(lineText, (text) => {
          check(opts, Buffer.from(text, "utf8"), stats);
        }),
        { numRuns: 1500 },
      );
      // the fast path must actually take part (not decline everything)
      console.log(`fast path took ${stats.fast} of ${stats.total} lines`);
      expect(stats.fast).toBeGreaterThan(stats.total / 100);
    });
  }

  it("JSON.stringify output (compact and indented onto one line) nearly always takes the fast path (property)", () => {
    const stats = { fast: 0, total: 0 };
    const rec = fc.tuple(
      fc.oneof(fc.string({ minLength: 1 }), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })),
      fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 }),
      fc.constantFrom(0, 1, 2),
    );
    for (const opts of OPTIONS) {
      fc.assert(
        fc.property(rec, ([id, rest, indent]) => {
          const o: Record<string, unknown> = { ...rest, id, a: rest.b ?? 1 };
          const text = JSON.stringify(o, null, indent).replace(/\n/g, " ");
          check(opts, Buffer.from(text, "utf8"), stats);
        }),
        { numRuns: 400 },
      );
    }
    console.log(`fast path took ${stats.fast} of ${stats.total} lines`);
    expect(stats.fast).toBeGreaterThan(stats.total / 3);
  });

  it("invalid UTF-8 and stray bytes decline (the JSON.parse path sees U+FFFD)", () => {
    fc.assert(
      fc.property(
        record,
        fc.nat(),
        fc.constantFrom(0x80, 0xbf, 0xc0, 0xc3, 0xe2, 0xed, 0xf0, 0xf5, 0xff),
        (text, at, byte) => {
          const b = Buffer.from(text, "utf8");
          const i = b.length === 0 ? 0 : at % b.length;
          const line = Buffer.concat([b.subarray(0, i), Buffer.from([byte]), b.subarray(i)]);
          const stats = { fast: 0, total: 0 };
          check({ key: ["id"] }, line, stats);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("examples: canonical lines take the fast path, the rest decline", () => {
    const o = { key: ["id"] };
    const yes = [
      '{"id":"u1","a":1,"b":"x"}',
      '{"a":1,"id":"u1"}',
      '{"id":"u1"}',
      '{ "id" : "u1" , "a" : [ 1 , { "b" : null } ] }',
      '{"id":12,"a":1.5,"b":1e+21,"c":"\\"q\\"\\n","d":"é😀"}',
      '{"a":{},"id":true,"b":[]}',
    ];
    const no = [
      '{"id":"u1","a":1.0}',
      '{"id":"u1","a":1e5}',
      '{"id":"u1","a":-0}',
      '{"id":"u1","a":"\\u0041"}',
      '{"id":"u1","a":"\\/"}',
      '{"id":"u1","a":1,"a":2}',
      '{"id":"u1","1":1}',
      '{"id":"u1","__proto__":{}}',
      '{"id":"u1","a":{"b":1,"b":2}}',
      '{"id":""}',
      '{"id":null}',
      '{"id":"a\\"b"}',
      '{"a":1}',
      "{}",
      '{"id":"u1",}',
      '{"id":"u1"} x',
      "[1]",
      "",
    ];
    for (const l of yes) {
      const b = Buffer.from(l);
      expect(fast(o, b, 0, b.length), l).toEqual(straight(o, b));
      expect(wasm(o, b, 0, b.length, true), l).toEqual(straight(o, b));
    }
    for (const l of no) {
      const b = Buffer.from(l);
      expect(fast(o, b, 0, b.length), l).toBeUndefined();
      expect(wasm(o, b, 0, b.length, true), l).toBeUndefined();
    }
    expect(makeFastJsonlMapper({ key: ["toString"] })).toBeUndefined();
    expect(makeFastJsonlMapper({ key: ["id"], valueRaw: "constructor" })).toBeUndefined();
    expect(makeWasmJsonlMapper({ key: ["toString"] })).toBeUndefined();
    expect(makeWasmJsonlMapper({ key: ["id"], valueRaw: "constructor" })).toBeUndefined();
  });

  it("WebAssembly is in use here (else the comparisons above checked nothing)", () => {
    expect(jsonlWasmEnabled()).toBe(true);
    expect(makeWasmJsonlMapper({ key: ["id"] })).toBeDefined();
  });

  it("WebAssembly: long lines, deep nesting, many members and gaps, composite keys and value objects", () => {
    const lines = [
      `{"id":"${"k".repeat(3000)}","a":"${"é".repeat(5000)}","b":[${"1,".repeat(3000)}2]}`,
      `{"id":"x","a":${"[".repeat(63)}${"]".repeat(63)}}`,
      `{"id":"x","a":${"[".repeat(64)}${"]".repeat(64)}}`,
      `{"id":"x",${Array.from({ length: 600 }, (_, i) => `"m${i}":${i}`).join(",")}}`,
      `{ "id" : "x" , "a" : [ ${Array.from({ length: 5000 }, (_, i) => i).join(" , ")} ] }`,
      `{"a":"${"x".repeat(100)}","id":"${"y".repeat(40)}","b":${"9".repeat(16)},"zz":1.5e-7}`,
      `{"id":"a\u001fb","a":"\u00e9","b":"\ud83d\ude00"}`,
      `{"id":"${"\t".repeat(20)}","a":"${"😀".repeat(20)}\n"}`,
    ];
    for (const opts of [...OPTIONS, { key: ["id"], value: ["a"], maxValueBytes: 1 << 20 }]) {
      for (const l of lines) {
        const b = Buffer.from(l);
        const want = straight(opts, b);
        const got = fast(opts, b, 0, b.length);
        for (const inArena of [true, false]) {
          const w = wasm(opts, b, 0, b.length, inArena);
          if (w) expect(want, l.slice(0, 40)).toEqual(w);
          expect(w, l.slice(0, 40)).toEqual(got);
        }
      }
    }
    // more whitespace runs than JSONL_WASM.maxGaps: WebAssembly declines (the JS mapper may take it)
    const spaced = Buffer.from(`{"id":"x","a":[${Array.from({ length: JSONL_WASM.maxGaps }, () => " 1 ").join(",")}]}`);
    expect(fast({ key: ["id"] }, spaced, 0, spaced.length)).toBeDefined();
    expect(wasm({ key: ["id"] }, spaced, 0, spaced.length, false)).toBeUndefined();
  });
});
