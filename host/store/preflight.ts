/**
 * Checks SST files before a store takes them: each opens as a table (footer, metaindex, properties, index: no data
 * block is read unless `checksums` is asked for), holds entries, and the files of one ingest call do not overlap.
 *
 * Why: RocksDB's IngestExternalFile only looks at the properties and the first and last keys, and the Debian
 * librocksdb has assert() compiled in, so some malformed files abort the process instead of returning a Status.
 * Byte-level integrity is the caller's job (sha256 + size against the manifest); this catches the rest cheaply.
 */
import { statSync } from "node:fs";
import { CorruptionError, FerryError, NotFoundError, ValidationError } from "../../core/errors.js";
import { SstReader } from "../../core/sst/index.js";

export interface SstFileCheck {
  path: string;
  smallestKey: Uint8Array;
  largestKey: Uint8Array;
  entries: number;
  bytes: number;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}

export async function preflightSstFiles(files: string[], o: { checksums?: boolean } = {}): Promise<SstFileCheck[]> {
  const out: SstFileCheck[] = [];
  for (const path of files) {
    let bytes: number;
    try {
      bytes = statSync(path).size;
    } catch {
      throw new NotFoundError(`ingest: ${path} does not exist`, { file: path });
    }
    let r: SstReader | undefined;
    try {
      r = await SstReader.open(path, { blockCacheBytes: 0 });
      if (o.checksums) await r.verify();
      if (!(r.entries > 0)) throw new ValidationError(`ingest: ${path} holds no entries`, { file: path });
      out.push({ path, smallestKey: r.smallestKey, largestKey: r.largestKey, entries: r.entries, bytes });
    } catch (e) {
      if (e instanceof FerryError) throw e;
      throw new CorruptionError(`ingest: ${path} is not a readable SST file: ${(e as Error).message}`, { file: path });
    } finally {
      await r?.close();
    }
  }
  const sorted = [...out].sort((a, b) => Buffer.compare(a.smallestKey, b.smallestKey));
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    const cur = sorted[i];
    if (Buffer.compare(prev.largestKey, cur.smallestKey) >= 0) {
      throw new ValidationError(
        `ingest: ${prev.path} [${hex(prev.smallestKey)}..${hex(prev.largestKey)}] overlaps ${cur.path} ` +
          `[${hex(cur.smallestKey)}..${hex(cur.largestKey)}] (files of one ingest must not overlap)`,
        { files: [prev.path, cur.path] },
      );
    }
  }
  return out;
}
