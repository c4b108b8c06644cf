import fc from "fast-check";
import { parquetMetadata, parquetReadObjects } from "hyparquet";
import { parquetWriteBuffer } from "hyparquet-writer";
import { describe, expect, it } from "vitest";
import { ParquetRowGroup } from "../../core/records/parquet-rows.js";

const asyncBuffer = (buf: ArrayBuffer) => ({
  byteLength: buf.byteLength,
  slice: async (s: number, e?: number) => buf.slice(s, e),
});

/** a random flat table: 1-4 columns of mixed types (nullable), 0-300 rows */
const table = fc.integer({ min: 1, max: 300 }).chain((rows) =>
  fc.record({
    rows: fc.constant(rows),
    rowGroupSize: fc.integer({ min: 1, max: 120 }),
    pageSize: fc.constantFrom(64, 512, 1 << 20),
    columns: fc.array(
      fc.oneof(
        fc.record({
          type: fc.constant("STRING" as const),
          data: fc.array(fc.option(fc.string({ maxLength: 12 }), { nil: null }), { minLength: rows, maxLength: rows }),
        }),
        fc.record({
          type: fc.constant("INT32" as const),
          data: fc.array(fc.option(fc.integer(), { nil: null }), { minLength: rows, maxLength: rows }),
        }),
        fc.record({
          type: fc.constant("DOUBLE" as const),
          data: fc.array(fc.option(fc.double({ noNaN: true }), { nil: null }), { minLength: rows, maxLength: rows }),
        }),
        fc.record({
          type: fc.constant("BOOLEAN" as const),
          data: fc.array(fc.option(fc.boolean(), { nil: null }), { minLength: rows, maxLength: rows }),
        }),
        fc.record({
          type: fc.constant("INT64" as const),
          data: fc.array(fc.option(fc.bigInt({ min: -(2n ** 62n), max: 2n ** 62n }), { nil: null }), {
            minLength: rows,
            maxLength: rows,
          }),
        }),
      ),
      { minLength: 1, maxLength: 4 },
    ),
  }),
);

describe("ParquetRowGroup: rows built on demand from top-level columns", () => {
  it("equal hyparquet's object rows (values and key order), row group by row group", async () => {
    await fc.assert(
      fc.asyncProperty(table, async (t) => {
        const buf = parquetWriteBuffer({
          columnData: t.columns.map((c, i) => ({ name: `c${i}`, type: c.type, data: c.data as never })),
          rowGroupSize: t.rowGroupSize,
          pageSize: t.pageSize,
        });
        const file = asyncBuffer(buf);
        const metadata = parquetMetadata(buf);
        let rowStart = 0;
        for (const g of metadata.row_groups) {
          const n = Number(g.num_rows);
          const expected = await parquetReadObjects({ file, metadata, rowStart, rowEnd: rowStart + n });
          const group = await ParquetRowGroup.read({ file, metadata, rowStart, rowEnd: rowStart + n });
          for (let i = 0; i < n; i++) {
            const row = group.row(rowStart + i);
            expect(Object.keys(row)).toEqual(Object.keys(expected[i]));
            expect(row).toEqual(expected[i]);
          }
          rowStart += n;
        }
        expect(rowStart).toBe(t.rows);
      }),
      { numRuns: 150 },
    );
  });

  it("a row group that does not decode rejects", async () => {
    const buf = parquetWriteBuffer({ columnData: [{ name: "a", type: "STRING", data: ["x", "y", "z"] }] });
    const bytes = new Uint8Array(buf.slice(0));
    const metadata = parquetMetadata(bytes.buffer);
    // garble the column chunk's bytes (between the magic and the footer)
    for (let i = 4; i < 30; i++) bytes[i] = 0xff;
    await expect(
      ParquetRowGroup.read({ file: asyncBuffer(bytes.buffer), metadata, rowStart: 0, rowEnd: 3 }),
    ).rejects.toThrow();
  });
});
