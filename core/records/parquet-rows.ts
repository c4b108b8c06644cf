/**
 * Parquet rows without materializing a row group as objects. hyparquet's `onComplete` with rowFormat "object"
 * builds an object per row for the whole row group before the first is used (a 128 MB row group is ~10⁶ objects that
 * survive every scavenge and get promoted: GC was ~22% of a Parquet Partition). Here the row group is read as its
 * top-level columns (hyparquet's `onChunk`: decoded and assembled, structs included) and each row object is built
 * when it is asked for, so it dies young. Same values, same key order as hyparquet's object rows: the schema's
 * top-level columns in order, each row's value `columnData[row - rowStart]` of the piece holding that row (tested
 * against parquetReadObjects).
 */
import { type AsyncBuffer, type Compressors, type FileMetaData, parquetRead, parquetSchema } from "hyparquet";

interface Piece {
  rowStart: number;
  rowEnd: number;
  data: ArrayLike<unknown>;
}

/** One row group (or a row range of the file) as top-level column pieces, rows made on demand. */
export class ParquetRowGroup {
  private readonly cursor: Int32Array;

  private constructor(
    private readonly names: string[],
    private readonly pieces: Piece[][],
  ) {
    this.cursor = new Int32Array(names.length);
  }

  /** Reads rows [rowStart, rowEnd) of `file` as columns. Decoding errors reject (as parquetRead's). */
  static async read(options: {
    file: AsyncBuffer;
    metadata: FileMetaData;
    rowStart: number;
    rowEnd: number;
    compressors?: Compressors;
  }): Promise<ParquetRowGroup> {
    const names = parquetSchema(options.metadata).children.map((c) => c.element.name);
    const index = new Map(names.map((n, i) => [n, i]));
    const pieces: Piece[][] = names.map(() => []);
    await parquetRead({
      ...options,
      onChunk: (c) => {
        const i = index.get(c.columnName);
        if (i !== undefined) pieces[i].push({ rowStart: c.rowStart, rowEnd: c.rowEnd, data: c.columnData });
      },
    });
    for (const p of pieces) p.sort((a, b) => a.rowStart - b.rowStart);
    return new ParquetRowGroup(names, pieces);
  }

  /** Row `row` (absolute row number) as an object. Rows must be asked for in ascending order. */
  row(row: number): Record<string, unknown> {
    const o: Record<string, unknown> = {};
    const { names, pieces, cursor } = this;
    for (let i = 0; i < names.length; i++) {
      const ps = pieces[i];
      let c = cursor[i];
      while (c < ps.length && ps[c].rowEnd <= row) c++;
      cursor[i] = c;
      const p = ps[c];
      o[names[i]] = p !== undefined && p.rowStart <= row ? p.data[row - p.rowStart] : undefined;
    }
    return o;
  }
}
