/**
 * The demo dataset: viewing-profile records, generated deterministically so any record can be recomputed from its
 * index (the verifier needs no copy of the file in memory). Version 2 changes every value.
 */
import { createWriteStream } from "node:fs";
import { once } from "node:events";

export const DEMO_KEY_COLUMN = "profile_id";

export interface DemoRecord {
  profile_id: string;
  title: string;
  minutes: number;
  completed: boolean;
  rev: number;
}

const TITLES = [
  "Arcane",
  "Dark",
  "Ozark",
  "The Crown",
  "Narcos",
  "Mindhunter",
  "Lupin",
  "Squid Game",
  "Wednesday",
  "1899",
];

export function demoKey(i: number): string {
  return `p${String(i).padStart(9, "0")}`;
}

/** record i of revision `rev` (1 or 2): every value differs between revisions */
export function demoRecord(i: number, rev: number): DemoRecord {
  const h = Math.imul(i + 1, 0x9e3779b1) >>> 0;
  return {
    profile_id: demoKey(i),
    title: TITLES[h % TITLES.length],
    minutes: ((h >>> 8) % 600) + rev * 1000,
    completed: ((h >>> 4) & 1) === 1,
    rev,
  };
}

/** The value ferry serves for a record: JSON of every column but the key, as the pipeline encodes it. */
export function demoExpectedValue(i: number, rev: number): Record<string, unknown> {
  const { profile_id: _k, ...rest } = demoRecord(i, rev);
  return rest;
}

/**
 * Write `records` JSONL lines to `path` in a shuffled (but deterministic) order — offline exports are not sorted —
 * and return the byte size.
 */
export async function writeDemoDataset(path: string, records: number, rev: number): Promise<number> {
  const out = createWriteStream(path);
  let bytes = 0;
  let buf = "";
  // a full-period LCG over [0, records) visits every index once, in scrambled order
  const m = nextPow2(records);
  let x = 0;
  for (let n = 0; n < m; n++) {
    x = (Math.imul(x, 5) + 0x3c6ef35f) & (m - 1);
    if (x >= records) continue;
    buf += `${JSON.stringify(demoRecord(x, rev))}\n`;
    if (buf.length > 1 << 20) {
      bytes += Buffer.byteLength(buf);
      if (!out.write(buf)) await once(out, "drain");
      buf = "";
    }
  }
  bytes += Buffer.byteLength(buf);
  out.end(buf);
  await once(out, "finish");
  return bytes;
}

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return Math.max(p, 2);
}

/** `count` distinct record indexes in [0, records), deterministic for a seed */
export function sampleIndexes(records: number, count: number, seed: number): number[] {
  const picked = new Set<number>();
  let s = seed >>> 0 || 1;
  const n = Math.min(count, records);
  while (picked.size < n) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    picked.add((s >>> 0) % records);
  }
  return [...picked];
}
