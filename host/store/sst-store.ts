/**
 * The "sst" store backend: a read-only store over core/sst, no native code. Ingest moves the files into the
 * store directory (rename; copy + unlink across filesystems) as `<seq>.sst` and opens an SstReader per file
 * (bloom filter + block cache). `store.json` lists the files in ingest order; it is replaced atomically after the
 * files are in place, so a crash mid-ingest leaves the previous state (plus stray files that the next ingest
 * overwrites or destroy() removes).
 *
 * Reads: files of one ingest call do not overlap, so each call forms a "layer" sorted by smallest key; a get
 * binary-searches each layer newest first and returns the first hit (newest-ingested wins, as in RocksDB where a
 * later ingest gets a higher sequence number).
 */
import {
  closeSync,
  copyFileSync,
  fsyncSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { CorruptionError, EnvironmentError, FerryError, ValidationError } from "../../core/errors.js";
import { HOST } from "../../core/limits.js";
import { SstReader } from "../../core/sst/index.js";
import { preflightSstFiles } from "./preflight.js";
import type { Bytes, OpenOptions, StoreBackend, StoreStats, VersionStore } from "./types.js";

const STATE_FILE = "store.json";

interface StateFile {
  format: "ferry-sst-store/1";
  dataset: string;
  version: string;
  /** ingest calls in order; each one a list of file names inside the store dir */
  layers: { files: string[] }[];
  nextSeq: number;
}

interface OpenFile {
  name: string;
  reader: SstReader;
  smallest: Buffer;
  largest: Buffer;
  entries: number;
  bytes: number;
}

/** one ingest call: non-overlapping files sorted by smallest key */
interface Layer {
  files: OpenFile[];
}

function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // best effort
  }
}

function moveFile(src: string, dst: string): void {
  try {
    renameSync(src, dst);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EXDEV") throw e;
    copyFileSync(src, dst);
    const fd = openSync(dst, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    unlinkSync(src);
  }
}

function asBuf(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

class SstVersionStore implements VersionStore {
  readonly backend = "sst" as const;
  private layers: Layer[] = [];
  private state: StateFile;
  private gets = 0;
  private misses = 0;
  private closed = false;
  private destroyed = false;
  private ingesting: Promise<void> = Promise.resolve();

  constructor(
    readonly dataset: string,
    readonly version: string,
    readonly dir: string,
    private readonly readOnly: boolean,
    state: StateFile,
  ) {
    this.state = state;
  }

  private check(): void {
    if (this.closed) throw new EnvironmentError(`sst store ${this.dataset}/${this.version}: used after close()`);
  }

  private readerCacheBytes(files: number): number {
    return Math.max(256 * 1024, Math.floor(HOST.storeBlockCacheBytes / Math.max(1, files)));
  }

  /** open the readers of the layers listed in the state file */
  async load(): Promise<void> {
    const total = this.state.layers.reduce((s, l) => s + l.files.length, 0);
    for (const l of this.state.layers) this.layers.push(await this.openLayer(l.files, total));
  }

  private async openLayer(names: string[], totalFiles: number): Promise<Layer> {
    const files: OpenFile[] = [];
    try {
      for (const name of names) {
        const path = join(this.dir, name);
        let reader: SstReader;
        try {
          reader = await SstReader.open(path, { blockCacheBytes: this.readerCacheBytes(totalFiles) });
        } catch (e) {
          if (e instanceof FerryError) throw e;
          throw new CorruptionError(`sst store: cannot open ${path}: ${(e as Error).message}`, { file: path });
        }
        files.push({
          name,
          reader,
          smallest: asBuf(reader.smallestKey),
          largest: asBuf(reader.largestKey),
          entries: reader.entries,
          bytes: statSync(path).size,
        });
      }
    } catch (e) {
      for (const f of files) await f.reader.close();
      throw e;
    }
    files.sort((a, b) => Buffer.compare(a.smallest, b.smallest));
    return { files };
  }

  async ingest(files: string[]): Promise<void> {
    this.check();
    if (this.readOnly) throw new ValidationError(`sst store ${this.dir}: opened read-only, cannot ingest`);
    if (files.length === 0) return;
    // serialize ingests: each one rewrites the state file
    const run = this.ingesting.then(() => this.ingestNow(files));
    this.ingesting = run.catch(() => {});
    return run;
  }

  private async ingestNow(files: string[]): Promise<void> {
    await preflightSstFiles(files);
    const names: string[] = [];
    let seq = this.state.nextSeq;
    const moved: { src: string; dst: string }[] = [];
    try {
      for (const src of files) {
        const name = `${String(seq++).padStart(6, "0")}.sst`;
        const dst = join(this.dir, name);
        moveFile(resolve(src), dst);
        moved.push({ src: resolve(src), dst });
        names.push(name);
      }
      fsyncDir(this.dir);
      const total = this.state.layers.reduce((s, l) => s + l.files.length, 0) + names.length;
      const layer = await this.openLayer(names, total);
      const next: StateFile = { ...this.state, layers: [...this.state.layers, { files: names }], nextSeq: seq };
      try {
        writeState(this.dir, next);
      } catch (e) {
        for (const f of layer.files) await f.reader.close();
        throw e;
      }
      this.state = next;
      this.layers.push(layer);
    } catch (e) {
      // put the files back where they were: a failed ingest leaves the store (and the inputs) as they were
      for (const m of moved.reverse()) {
        try {
          moveFile(m.dst, m.src);
        } catch {}
      }
      throw e;
    }
  }

  getSync(key: Bytes): Bytes | undefined {
    this.check();
    this.gets++;
    const k = asBuf(key);
    for (let li = this.layers.length - 1; li >= 0; li--) {
      const fs = this.layers[li].files;
      // last file whose smallest key <= k
      let lo = 0;
      let hi = fs.length - 1;
      let idx = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1;
        if (Buffer.compare(fs[mid].smallest, k) <= 0) {
          idx = mid;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      if (idx < 0) continue;
      const f = fs[idx];
      if (Buffer.compare(k, f.largest) > 0) continue;
      const v = f.reader.getSync(k);
      if (v !== undefined) return v;
    }
    this.misses++;
    return undefined;
  }

  async get(key: Bytes): Promise<Bytes | undefined> {
    return this.getSync(key);
  }

  async multiGet(keys: Bytes[]): Promise<(Bytes | undefined)[]> {
    return this.multiGetSync(keys);
  }

  multiGetSync(keys: Bytes[]): (Bytes | undefined)[] {
    return keys.map((k) => this.getSync(k));
  }

  stats(): StoreStats {
    let files = 0;
    let entries = 0;
    let bytes = 0;
    for (const l of this.layers) {
      for (const f of l.files) {
        files++;
        entries += f.entries;
        bytes += f.bytes;
      }
    }
    return {
      backend: "sst",
      dataset: this.dataset,
      version: this.version,
      dir: this.dir,
      files,
      entries,
      bytes,
      gets: this.gets,
      misses: this.misses,
      closed: this.closed,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.ingesting;
    const layers = this.layers;
    this.layers = [];
    for (const l of layers) for (const f of l.files) await f.reader.close();
  }

  async destroy(): Promise<void> {
    await this.close();
    if (!this.destroyed) {
      rmSync(this.dir, { recursive: true, force: true });
      this.destroyed = true;
    }
  }
}

function writeState(dir: string, s: StateFile): void {
  const tmp = join(dir, `${STATE_FILE}.tmp`);
  writeFileSync(tmp, `${JSON.stringify(s, null, 2)}\n`);
  const fd = openSync(tmp, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, join(dir, STATE_FILE));
  fsyncDir(dir);
}

async function readState(dir: string): Promise<StateFile | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, STATE_FILE), "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  let s: StateFile;
  try {
    s = JSON.parse(text) as StateFile;
  } catch (e) {
    throw new CorruptionError(`sst store ${dir}/${STATE_FILE}: not JSON (${(e as Error).message})`, {
      file: join(dir, STATE_FILE),
    });
  }
  if (s.format !== "ferry-sst-store/1" || !Array.isArray(s.layers) || typeof s.nextSeq !== "number") {
    throw new CorruptionError(`sst store ${dir}/${STATE_FILE}: unknown format`, { file: join(dir, STATE_FILE) });
  }
  for (const l of s.layers) {
    for (const f of l.files) {
      if (!/^\d{6,}\.sst$/.test(f)) {
        throw new CorruptionError(`sst store ${dir}/${STATE_FILE}: bad file name ${JSON.stringify(f)}`, {
          file: join(dir, STATE_FILE),
        });
      }
    }
  }
  return s;
}

export const sstBackend: StoreBackend = {
  name: "sst",
  available(): true {
    return true;
  },
  async open(dir: string, dataset: string, version: string, options: OpenOptions = {}): Promise<VersionStore> {
    const abs = resolve(dir);
    const readOnly = options.readOnly ?? false;
    if (!readOnly) mkdirSync(abs, { recursive: true });
    let state = await readState(abs);
    if (state === undefined) {
      if (readOnly) throw new ValidationError(`sst store ${dataset}/${version}: no store in ${abs} (read-only open)`);
      state = { format: "ferry-sst-store/1", dataset, version, layers: [], nextSeq: 1 };
      writeState(abs, state);
    } else if (state.dataset !== dataset || state.version !== version) {
      throw new ValidationError(`sst store ${abs} holds ${state.dataset}/${state.version}, not ${dataset}/${version}`, {
        dir: abs,
      });
    }
    const store = new SstVersionStore(dataset, version, abs, readOnly, state);
    await store.load();
    return store;
  },
};
