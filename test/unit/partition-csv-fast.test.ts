import { gzipSync } from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { partitionChunk } from "../../core/pipeline/partition.js";
import { chooseBuckets } from "../../core/pipeline/sample.js";
import type { LoadRequest, Plan } from "../../core/pipeline/types.js";
import { memoryStore, planChunks } from "../../core/records/index.js";
import { makeFastCsvMapper } from "../../core/records/csv-fast.js";
import { forEachCsvRecord } from "../../core/records/readers.js";
import { memorySinks } from "../../core/shuffle/index.js";

/**
 * Partition with the CSV fast path (core/records/csv-fast.ts, forEachCsvRecord) gives the same run objects (byte for
 * byte), the same skipped counts and examples, and the same errors as with the fast path off (fastPath: false: every
 * record through csvFields, a record object and the mapper): random files with quoted fields ("" escapes, commas,
 * newlines inside quotes), empty fields, CRLF, blank lines, a BOM, unicode and invalid UTF-8, rows with the wrong
 * field count, malformed quoting, header quirks; byte-range chunks, small pieces, spills.
 */

const text = fc.oneof(
  { weight: 6, arbitrary: fc.string({ maxLength: 6 }) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 3 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom("", ",", '"', "a,b", 'x"y', "\\", "\t", "\r", "\u0001", "é", "😀", " ", "k1", "k2"),
  },
);

/** one field as written: unquoted, quoted (may hold a newline), or broken */
const field = fc.oneof(
  { weight: 6, arbitrary: text.filter((s) => !/[",\r\n]/.test(s)) },
  { weight: 5, arbitrary: text.map((s) => `"${s.replace(/"/g, '""')}"`) },
  { weight: 1, arbitrary: fc.constantFrom('"two\nlines"', '"a\r\nb"', '"x\n\ny"') },
  { weight: 1, arbitrary: fc.constantFrom('a"b', '"a"b', "\uFFFD", "\u0000", "") },
);

const HEADERS = [
  ["id", "n", "s", "v"],
  ["n", "id", "2021", "s", "0"],
  ["id", "__proto__", "s", "n"],
  ["id", 'q"', "v", "n", "s"],
];

const row = (cols: number) =>
  fc.oneof(
    { weight: 12, arbitrary: fc.array(field, { minLength: cols, maxLength: cols }).map((f) => f.join(",")) },
    {
      weight: 2,
      arbitrary: fc.array(field, { minLength: Math.max(1, cols - 1), maxLength: cols + 1 }).map((f) => f.join(",")),
    },
    { weight: 1, arbitrary: fc.constantFrom("", " ", '"open', "k9") },
  );

function request(over: Partial<LoadRequest>): LoadRequest {
  return {
    dataset: "ds",
    version: "v1",
    input: "s3://in/",
    format: "csv",
    key: ["id"],
    shards: 3,
    duplicates: "last",
    badRecords: "skip",
    maxBadRecords: 1_000_000,
    sstCompression: "none",
    bloomBitsPerKey: 10,
    targetFileSize: 64 << 20,
    minReplicas: 1,
    keepVersions: 2,
    ...over,
  };
}

async function runBoth(
  bytes: Uint8Array,
  req: LoadRequest,
  chunkBytes: number,
  piece: number,
  more: { splitKeys?: Uint8Array[]; memoryBytes?: number; csvSplit?: boolean; gzip?: boolean } = {},
) {
  const name = more.gzip ? "a.csv.gz" : "a.csv";
  const data = new Map<string, Uint8Array>([[`in/${name}`, more.gzip ? gzipSync(bytes) : bytes]]);
  const open = memoryStore(data, piece);
  let chunks: Awaited<ReturnType<typeof planChunks>>;
  try {
    chunks = await planChunks(
      [...data].map(([k, v]) => ({ bucket: "in", key: k.slice(3), size: v.length })),
      "csv",
      chunkBytes,
      {
        open,
        csvSplit: more.csvSplit,
      },
    );
  } catch {
    return [[], []];
  }
  const plan: Plan = {
    request: req,
    dataBucket: "d",
    createdAt: "t",
    chunks: chunks.length,
    buckets: more.splitKeys
      ? chooseBuckets(
          more.splitKeys.map((key) => ({ key, bytes: 1 })),
          more.splitKeys.length,
          req.shards,
          2,
        )
      : chooseBuckets([], 0, req.shards, 1),
    inputBytes: 0,
  };
  const results = [];
  for (const fastPath of [true, false]) {
    const out = new Map<string, Uint8Array>();
    const res: unknown[] = [];
    for (const chunk of chunks) {
      try {
        const r = await partitionChunk({
          plan,
          chunk,
          dataBucket: "d",
          open,
          openSink: memorySinks(out),
          fastPath,
          memoryBytes: more.memoryBytes,
        });
        res.push({ ...r, run: Buffer.from(out.get(`d/${r.runKey}`) as Uint8Array).toString("base64") });
      } catch (e) {
        res.push({ error: (e as Error).message, name: (e as Error).name });
      }
    }
    results.push(res);
  }
  return results;
}

const file = fc
  .tuple(fc.constantFrom(...HEADERS), fc.constantFrom("\n", "\r\n"), fc.boolean(), fc.boolean(), fc.boolean())
  .chain(([header, nl, finalNewline, bom, badByte]) =>
    fc.array(row(header.length), { maxLength: 40 }).map((rows) => {
      const t = [header.map((h) => (/[",]/.test(h) ? `"${h.replace(/"/g, '""')}"` : h)).join(","), ...rows].join(nl);
      let b = Buffer.from((bom ? "\ufeff" : "") + t + (finalNewline ? nl : ""));
      // invalid UTF-8 in a field ("\uFFFD" marks where)
      if (badByte) b = Buffer.from(b.toString("latin1").replace(/\u00ef\u00bf\u00bd/g, "\u00ff"), "latin1");
      return b;
    }),
  );

describe("partition: CSV fast path = record-object path", () => {
  for (const req of [
    request({}),
    request({ key: ["id", "n"], value: ["s", "v", "2021", "n"] }),
    request({ key: ["n", "id"] }),
    request({ valueRaw: "s" }),
    request({ value: [] }),
    request({ badRecords: "fail", maxBadRecords: 0 }),
    request({ badRecords: "skip", maxBadRecords: 2 }),
  ]) {
    it(`same runs, skips and errors (${JSON.stringify({ key: req.key, value: req.value, valueRaw: req.valueRaw, badRecords: req.badRecords, maxBadRecords: req.maxBadRecords })}) (property)`, async () => {
      await fc.assert(
        fc.asyncProperty(
          file,
          fc.integer({ min: 30, max: 3000 }),
          fc.integer({ min: 5, max: 300 }),
          fc.constantFrom(undefined, false),
          async (bytes, chunkBytes, piece, csvSplit) => {
            const [fast, slow] = await runBoth(bytes, req, chunkBytes, piece, { csvSplit });
            expect(fast).toEqual(slow);
          },
        ),
        { numRuns: 60 },
      );
    });
  }

  it("same runs with bucket ranges and spills (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        file,
        fc.array(
          fc.oneof(
            fc.string({ minLength: 1, maxLength: 4 }).map((k) => Buffer.from(k)),
            fc.uint8Array({ minLength: 1, maxLength: 4 }),
          ),
          { maxLength: 30 },
        ),
        fc.constantFrom(undefined, 1, 300, 5000),
        fc.integer({ min: 5, max: 300 }),
        async (bytes, splitKeys, memoryBytes, piece) => {
          const [fast, slow] = await runBoth(bytes, request({ key: ["id", "n"] }), 1 << 20, piece, {
            splitKeys,
            memoryBytes,
          });
          expect(fast).toEqual(slow);
        },
      ),
      { numRuns: 40 },
    );
  });

  it("gzip input with quoted newlines, a BOM, CRLF and a record longer than a piece", async () => {
    const rows = ["\ufeffid,n,s,v", `k1,1,"${"x".repeat(3000)}",a`, 'k2,2,"two\r\nlines",b', "", "k3,3,,c", "bad"];
    const bytes = Buffer.from(`${rows.join("\r\n")}\r\n`);
    const [fast, slow] = await runBoth(bytes, request({}), 1 << 20, 64, { gzip: true });
    expect(fast).toEqual(slow);
    expect(fast).toMatchObject([{ records: 3, skipped: 1 }]);
  });

  it("the fast path takes the plain records (forEachCsvRecord), the rest reach onRecord with their lines", async () => {
    const rows = ["id,n,s,v"];
    for (let i = 0; i < 500; i++) rows.push(`k${i},${i},"s ""${i}""",v${i % 7}`);
    rows.push('k500,500,"two', 'lines",v', "k501,only-two");
    const bytes = Buffer.from(`${rows.join("\r\n")}\r\n`);
    const [fast, slow] = await runBoth(bytes, request({}), 1 << 20, 64);
    expect(fast).toEqual(slow);
    const open = memoryStore(new Map([["in/a.csv", new Uint8Array(bytes)]]), 64);
    const fastLines: number[] = [];
    const slowLines: number[] = [];
    await forEachCsvRecord(
      { id: "c0000000", bucket: "in", key: "a.csv", size: bytes.length },
      { open },
      (header) => {
        const f = makeFastCsvMapper({ key: ["id"] }, header);
        return (buf, s, e, line) => {
          if (!f?.map(buf, s, e)) return false;
          fastLines.push(line);
          return true;
        };
      },
      (rec) => {
        slowLines.push(rec.line);
      },
    );
    expect(fastLines).toEqual(Array.from({ length: 500 }, (_, i) => i + 2));
    expect(slowLines).toEqual([502, 504]);
  });
});
