import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { APPEND_NO_ROOM, type FastCsvOptions, makeFastCsvMapper } from "../../core/records/csv-fast.js";
import { isSkipped, makeRecordMapper } from "../../core/records/mapper.js";
import { memoryStore, readChunk, type SourceRecord } from "../../core/records/index.js";

/**
 * The CSV fast path must give exactly what the straightforward path gives (readChunk: header, csvFields, record
 * object → makeRecordMapper), or decline the line (then the caller takes the straightforward path). Lines are built
 * as bytes from fields written unquoted or quoted ("" escapes), with commas, quotes, backslashes, control
 * characters, unicode, invalid UTF-8, stray quotes and wrong field counts; headers with integer-like names,
 * "__proto__", Object.prototype names, names that need JSON escapes.
 */

const fieldText = fc.oneof(
  { weight: 6, arbitrary: fc.string({ maxLength: 8 }) },
  { weight: 2, arbitrary: fc.string({ unit: "grapheme", maxLength: 4 }) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      "",
      ",",
      '"',
      '""',
      "a,b",
      'say "hi"',
      "\\",
      "\r",
      "\n",
      "\t",
      "\b",
      "\f",
      "\u0000",
      "\u0001",
      "\u001f",
      "\u007f",
      "é",
      "😀",
      "\u2028",
      "\ufeff",
      " ",
      "x\u0000y",
    ),
  },
);

/** one field's bytes as written in the file */
const field = fc.oneof(
  // unquoted (malformed when it holds a quote; a comma or newline splits it differently)
  { weight: 8, arbitrary: fieldText.map((s) => Buffer.from(s)) },
  // quoted, "" escapes
  { weight: 10, arbitrary: fieldText.map((s) => Buffer.from(`"${s.replace(/"/g, '""')}"`)) },
  // broken: invalid UTF-8, a closing quote followed by text, an unclosed quote
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      Buffer.from([0xff]),
      Buffer.from([0x61, 0xc3]),
      Buffer.from([0xed, 0xa0, 0x80]),
      Buffer.from('"a"b'),
      Buffer.from('"open'),
      Buffer.from('a"b'),
      Buffer.from([0x22, 0xe9, 0x22]),
    ),
  },
);

const HEADERS = [
  ["id", "a", "b", "zz"],
  ["a", "id", "2021", "b", "0"],
  ["id", "__proto__", "b", "a"],
  ["zz", "b", "toString", "id", "a"],
  ["id", 'q"', "a\\b", "é", "a"],
  ["id"],
  ["b", "id", "10", "a", "1", "zz"],
];

const OPTIONS: FastCsvOptions[] = [
  { key: ["id"] },
  { key: ["id"], maxKeyBytes: 6, maxValueBytes: 40 },
  { key: ["id", "a"] },
  { key: ["a", "id"], maxKeyBytes: 8 },
  { key: ["id"], value: ["b", "a", "zz", "b", "2021", "nope"] },
  { key: ["id"], value: [] },
  { key: ["id"], valueRaw: "b" },
  { key: ["id"], valueRaw: "a", maxValueBytes: 3 },
  { key: ["id"], value: ['q"', "a", "0"] },
  { key: ["constructor"] },
  { key: ["id"], value: ["toString"] },
  { key: ["nope"] },
];

const csvHeaderLine = (h: string[]) => h.map((n) => (/[",\r\n]/.test(n) ? `"${n.replace(/"/g, '""')}"` : n)).join(",");

/** the straightforward path's result for a file of header + line: a key/value, a skip message, an error, or multi */
async function straight(opts: FastCsvOptions, header: string[], line: Buffer) {
  const text = Buffer.concat([Buffer.from(`${csvHeaderLine(header)}\n`), line, Buffer.from("\n")]);
  const open = memoryStore(new Map([["in/x.csv", new Uint8Array(text)]]));
  const recs: SourceRecord[] = [];
  try {
    for await (const r of readChunk({ id: "c0000000", bucket: "in", key: "x.csv", size: text.length }, "csv", {
      open,
    }))
      recs.push(r);
  } catch (e) {
    // the first record is what counts (a '\n' in an unquoted field starts another record)
    if (recs.length === 0) return { error: (e as Error).message };
  }
  if (recs.length === 0) return { none: true };
  if (recs[0].line !== 2) return { line: recs[0].line };
  const mapper = makeRecordMapper({ ...opts, badRecords: "skip", maxBadRecords: Number.MAX_SAFE_INTEGER });
  const m = mapper(recs[0]);
  if (isSkipped(m)) return { skip: m.skip };
  return { key: Buffer.from(m.key).toString("hex"), value: Buffer.from(m.value).toString("hex") };
}

/** the fast path on the file's second line (the line's bytes up to a '\n') */
function fast(opts: FastCsvOptions, header: string[], whole: Buffer) {
  const nl = whole.indexOf(10);
  const line = nl < 0 ? whole : whole.subarray(0, nl);
  const m = makeFastCsvMapper(opts, header);
  if (!m) return undefined;
  // the line inside a larger array, bytes around it, as scanLines hands it over
  // (0-3 bytes after it: the last field's bytes are copied as whole words only when the array has them)
  const buf = new Uint8Array(line.length + 3 + (line.length % 4));
  buf.fill(0x2c);
  buf.set(line, 3);
  let e = 3 + line.length;
  if (e > 3 && buf[e - 1] === 13) e--;
  if (!m.map(buf, 3, e)) return undefined;
  const value = Buffer.concat(
    Array.from({ length: m.nsegs }, (_, j) => Buffer.from(m.valSrc.subarray(m.segs[2 * j], m.segs[2 * j + 1]))),
  );
  expect(value.length).toBe(m.valueLen);
  // mapAppend writes the same record in the run writer's encoding (bytes before and after it untouched/slack)
  const key = Buffer.from(m.keySrc.subarray(m.keyStart, m.keyEnd));
  const dst = new Uint8Array(5 + key.length + value.length + 12 + 8).fill(0xee);
  const len = m.mapAppend(buf, 3, e, 300, dst, 5, dst.length);
  const rec = Buffer.concat([
    Buffer.from(encodeVarint(key.length)),
    key,
    Buffer.from(encodeVarint(value.length)),
    value,
    Buffer.from(encodeVarint(300)),
  ]);
  expect(len).toBe(rec.length);
  expect(Buffer.from(dst.subarray(0, 5 + len))).toEqual(Buffer.concat([Buffer.alloc(5, 0xee), rec]));
  expect(Buffer.from(m.keySrc.subarray(m.keyStart, m.keyEnd))).toEqual(key);
  expect(m.mapAppend(buf, 3, e, 300, dst, 5, 5 + len + 7)).toBe(APPEND_NO_ROOM);
  return {
    key: key.toString("hex"),
    value: value.toString("hex"),
  };
}

function encodeVarint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

const stats = { fast: 0, declined: 0 };

async function check(opts: FastCsvOptions, header: string[], line: Buffer) {
  const f = fast(opts, header, line);
  if (f === undefined) {
    stats.declined++;
    return;
  }
  stats.fast++;
  expect(f).toEqual(await straight(opts, header, line));
}

describe("CSV fast path = straightforward path", () => {
  it("random lines for every header and option set (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...HEADERS),
        fc.constantFrom(...OPTIONS),
        fc.constantFrom(0, 0, 0, 0, -1, 1),
        fc.array(field, { minLength: 7, maxLength: 7 }),
        fc.constantFrom("", "", "\r"),
        async (header, opts, extra, fields, cr) => {
          const n = Math.max(1, header.length + extra);
          const parts: Buffer[] = [];
          for (let i = 0; i < n; i++) {
            if (i > 0) parts.push(Buffer.from(","));
            parts.push(fields[i % fields.length]);
          }
          parts.push(Buffer.from(cr));
          await check(opts, header, Buffer.concat(parts));
        },
      ),
      { numRuns: 5000 },
    );
    // the generator must exercise the fast path, not only declines
    console.log("csv fast property:", stats);
    expect(stats.fast).toBeGreaterThan(600);
  });

  it('well-formed lines of plain fields map (not declined), with JSON escapes and "" pairs', async () => {
    const header = ["id", "a", "2021", "b"];
    for (const line of [
      "k1,x,y,z",
      '"k,2","say ""hi""",\\,"\t"',
      'k3,,"",',
      'é😀,"a\u0001b","x\ry",\u007f',
      'k"",a,b,c'.replace('k""', '"k"""'),
    ]) {
      const f = fast({ key: ["id"] }, header, Buffer.from(line));
      expect(f, line).toBeDefined();
      expect(f).toEqual(await straight({ key: ["id"] }, header, Buffer.from(line)));
    }
  });

  it("declines what the straightforward path treats specially", () => {
    const h = ["id", "a"];
    const d = (line: string | Buffer, opts: FastCsvOptions = { key: ["id"] }, header = h) =>
      fast(opts, header, Buffer.isBuffer(line) ? line : Buffer.from(line));
    expect(d("")).toBeUndefined(); // blank line: not a record
    expect(d("k")).toBeUndefined(); // too few fields
    expect(d("k,a,b")).toBeUndefined(); // too many
    expect(d(",a")).toBeUndefined(); // empty key
    expect(d('"",a')).toBeUndefined(); // empty key
    expect(d('k,"open')).toBeUndefined(); // a quoted field continuing on the next line
    expect(d('k,a"b')).toBeUndefined(); // malformed
    expect(d('k,"a"b')).toBeUndefined(); // malformed
    expect(d(Buffer.from([0x6b, 0x2c, 0xff]))).toBeUndefined(); // invalid UTF-8
    expect(makeFastCsvMapper({ key: ["nope"] }, h)).toBeUndefined();
    expect(makeFastCsvMapper({ key: ["id"], valueRaw: "nope" }, h)).toBeUndefined();
    expect(makeFastCsvMapper({ key: ["__proto__"] }, h)).toBeUndefined();
    expect(makeFastCsvMapper({ key: ["id"], value: ["constructor"] }, h)).toBeUndefined();
    expect(makeFastCsvMapper({ key: ["id"] }, ["id", "a", "a"])).toBeUndefined();
    expect(d("k,a")).toBeDefined();
  });
});
