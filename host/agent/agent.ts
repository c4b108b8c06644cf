/**
 * The serving-host agent: registers the host in its fleet, heartbeats, polls the fleet's directives (consistent reads
 * every HOST.pollIntervalMs) and, per dataset, makes the host hold and serve what the directive says:
 *
 * - load the directive's activeVersion (first: a host that starts late serves the active version as soon as it can)
 *   and its targetVersion: read manifest.json (schema-validated, every path checked to stay inside the data dir),
 *   download this host's shards' files (download.ts: parallel ranged GETs, resumable, bandwidth cap), verify
 *   size + sha256, open an isolated per-version store and ingest (files moved: same filesystem), report progress and
 *   LOADED / FAILED in the host-load item;
 * - switch reads when the directive's activeVersion is loaded and differs from what is served: one assignment of the
 *   resolver's active entry (the KV server asks the resolver on every request);
 * - keep the previous version for rollback, destroy everything the directive no longer names (HOST.keepVersions).
 *
 * The agent is the KV server's resolver (getActive/status/ownerOf). One load runs at a time; polling, switching and
 * heartbeats go on meanwhile. stop() abandons the current download cleanly (the .part files and journals stay for
 * the next start to resume) and deregisters the host.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import {
  type Directive,
  deregisterHost,
  heartbeat,
  type HostItem,
  listDirectives,
  listHosts,
  putHostLoad,
  registerHost,
} from "../../core/control/fleet.js";
import type { HostLoadState } from "../../core/control/keys.js";
import { FerryError, NotFoundError, ValidationError } from "../../core/errors.js";
import { HOST } from "../../core/limits.js";
import { parseManifest } from "../../core/manifest/manifest.js";
import { getText } from "../../core/manifest/s3.js";
import { type Manifest, manifestKey, NAME_RE, versionPrefix } from "../../core/manifest/schema.js";
import type { ActiveVersion, DatasetStatus, HostStatus, KvResolver, VersionStatus } from "../server/types.js";
import type { StoreBackend, VersionStore } from "../store/types.js";
import { type DownloadFile, downloadFiles } from "./download.js";
import {
  checkDatasetName,
  checkVersionName,
  downloadDir,
  loadedMarker,
  safeJoin,
  storeDir,
  versionDir,
} from "./paths.js";
import { TokenBucket } from "./token-bucket.js";

export interface AgentOptions {
  fleet: string;
  shards: number[];
  dataDir: string;
  /** control table name */
  table: string;
  /** bucket of manifests/SSTs when the directive does not name one */
  bucket?: string;
  backend: StoreBackend;
  /** default: the id stored in <data-dir>/host.json, else a new one (then stored) */
  hostId?: string;
  /** megabits per second; 0/undefined = HOST.maxDownloadMbps (0 = no cap) */
  maxDownloadMbps?: number;
  pollIntervalMs?: number;
  heartbeatIntervalMs?: number;
  keepVersions?: number;
  downloadConcurrency?: number;
  downloadPartBytes?: number;
  /** structured log lines; default: JSON on stderr */
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

type EntryState = HostLoadState;

interface Progress {
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  bytesTotal: number;
}

interface Entry {
  version: string;
  state: EntryState;
  store?: VersionStore;
  shardCount?: number;
  error?: string;
  /** directive issuedAt when it FAILED: retried only when re-signalled (or after a restart) */
  failedIssuedAt?: number;
  /** transient failure: try again after this time (epoch ms) */
  retryAt?: number;
  progress: Progress;
  startedAt?: number;
  loadedAt?: number;
  loadSeconds?: number;
  downloadMbPerSec?: number;
}

interface DatasetState {
  versions: Map<string, Entry>;
  active?: ActiveVersion;
  previousServed?: string;
  directive?: Directive;
}

interface LoadJob {
  dataset: string;
  version: string;
  directive: Directive;
}

interface Marker {
  dataset: string;
  version: string;
  shardCount: number;
  shards: number[];
  files: number;
  bytes: number;
  loadedAt: string;
}

const PERMANENT = ["INPUT", "CONFIG", "VALIDATION", "CORRUPTION", "NOT_FOUND", "LIMIT"];

export class HostAgent implements KvResolver {
  readonly fleet: string;
  readonly shards: number[];
  readonly dataDir: string;
  hostId = "";
  endpoint = "";
  private readonly shardSet: ReadonlySet<number>;
  private readonly datasets = new Map<string, DatasetState>();
  private readonly queue: LoadJob[] = [];
  private current?: { job: LoadJob; abort: AbortController; done: Promise<void> };
  private readonly bucket: TokenBucket;
  private pollTimer?: NodeJS.Timeout;
  private hbTimer?: NodeJS.Timeout;
  private ticking?: Promise<void>;
  private stopped = false;
  private started = false;
  private fleetHosts: Array<HostItem & { live: boolean }> = [];
  private readonly log: (msg: string, fields?: Record<string, unknown>) => void;

  constructor(readonly opts: AgentOptions) {
    this.fleet = opts.fleet;
    this.shards = [...new Set(opts.shards)].sort((a, b) => a - b);
    this.shardSet = new Set(this.shards);
    this.dataDir = resolve(opts.dataDir);
    this.bucket = TokenBucket.fromMbps(opts.maxDownloadMbps ?? HOST.maxDownloadMbps);
    this.log =
      opts.log ??
      ((msg, fields) =>
        process.stderr.write(
          `${JSON.stringify({ t: new Date().toISOString(), host: this.hostId, msg, ...fields })}\n`,
        ));
  }

  // ------------------------------------------------------------------------------------------------ lifecycle

  /** Register (with the server's endpoint), reopen versions loaded before a restart, run the first poll, start timers. */
  async start(endpoint: string): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.endpoint = endpoint;
    await mkdir(this.dataDir, { recursive: true });
    this.hostId = this.opts.hostId ?? (await this.loadHostId());
    await this.reopenLoaded();
    await registerHost(this.opts.table, {
      fleet: this.fleet,
      hostId: this.hostId,
      shards: this.shards,
      endpoint,
    });
    await this.sendHeartbeat();
    this.log("host registered", { fleet: this.fleet, shards: this.shards, endpoint, store: this.opts.backend.name });
    await this.tick();
    this.schedulePoll();
    this.hbTimer = setInterval(
      () => void this.sendHeartbeat(),
      this.opts.heartbeatIntervalMs ?? HOST.heartbeatIntervalMs,
    );
    this.hbTimer.unref?.();
  }

  /**
   * Graceful stop: no more polls or heartbeats, the current download is abandoned cleanly (its finished parts stay for
   * a resume), stores are closed, the host item is deleted (unless `deregister: false`).
   */
  async stop(o: { deregister?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    if (this.hbTimer) clearInterval(this.hbTimer);
    this.queue.length = 0;
    this.current?.abort.abort(new Error("host stopping"));
    await this.ticking?.catch(() => {});
    await this.current?.done.catch(() => {});
    await this.hbInFlight.catch(() => {});
    if (this.started && o.deregister !== false) {
      await deregisterHost(this.opts.table, this.fleet, this.hostId).catch((err) =>
        this.log("deregister failed", { error: String(err) }),
      );
    }
    for (const ds of this.datasets.values()) {
      ds.active = undefined;
      for (const e of ds.versions.values()) await e.store?.close().catch(() => {});
    }
    this.log("host stopped");
  }

  private async loadHostId(): Promise<string> {
    const p = join(this.dataDir, "host.json");
    try {
      const j = JSON.parse(await readFile(p, "utf8")) as { hostId?: string; fleet?: string };
      if (j.hostId) return j.hostId;
    } catch {
      // first start
    }
    const id = `${hostname()
      .replace(/[^A-Za-z0-9_-]/g, "-")
      .slice(0, 40)}-${randomBytes(3).toString("hex")}`;
    await writeFile(`${p}.tmp`, JSON.stringify({ hostId: id, fleet: this.fleet }));
    await rename(`${p}.tmp`, p);
    return id;
  }

  /** Versions with a LOADED marker (and this host's shards) are opened as they are: no download, no ingest. */
  private async reopenLoaded(): Promise<void> {
    const dsNames = await readdir(this.dataDir).catch(() => [] as string[]);
    for (const dataset of dsNames) {
      if (!NAME_RE.test(dataset)) continue;
      const versions = await readdir(join(this.dataDir, dataset)).catch(() => [] as string[]);
      for (const version of versions) {
        let vdir: string;
        try {
          vdir = versionDir(this.dataDir, dataset, version);
        } catch {
          continue;
        }
        const marker = await readFile(loadedMarker(vdir), "utf8")
          .then((t) => JSON.parse(t) as Marker)
          .catch(() => undefined);
        if (!marker) continue;
        const relevant = this.shards.filter((s) => s < marker.shardCount);
        if (!relevant.every((s) => marker.shards.includes(s))) {
          await rm(loadedMarker(vdir), { force: true }); // loaded for other shards: load again
          continue;
        }
        try {
          const store = await this.opts.backend.open(storeDir(vdir), dataset, version);
          this.ds(dataset).versions.set(version, {
            version,
            state: "LOADED",
            store,
            shardCount: marker.shardCount,
            progress: {
              filesDone: marker.files,
              filesTotal: marker.files,
              bytesDone: marker.bytes,
              bytesTotal: marker.bytes,
            },
            loadedAt: Date.parse(marker.loadedAt),
          });
          this.log("reopened loaded version", { dataset, version });
        } catch (err) {
          this.log("could not reopen a loaded version; it will be loaded again", {
            dataset,
            version,
            error: String(err),
          });
          await rm(loadedMarker(vdir), { force: true });
        }
      }
    }
  }

  // ------------------------------------------------------------------------------------------------ resolver

  getActive(dataset: string): ActiveVersion | undefined {
    return this.datasets.get(dataset)?.active;
  }

  ownerOf(dataset: string, shard: number): string | undefined {
    const h = this.fleetHosts.find((x) => x.live && x.hostId !== this.hostId && x.shards.includes(shard));
    void dataset;
    return h?.endpoint;
  }

  status(): HostStatus {
    const datasets: Record<string, DatasetStatus> = {};
    for (const [name, ds] of this.datasets) {
      const vs = (e: Entry, state?: string): VersionStatus => ({
        version: e.version,
        state: state ?? e.state,
        ...(e.store && !e.store.stats().closed ? { stats: e.store.stats() } : {}),
        ...(e.error ? { error: e.error } : {}),
        progress: e.progress,
        ...(e.loadSeconds !== undefined ? { loadSeconds: e.loadSeconds, downloadMbPerSec: e.downloadMbPerSec } : {}),
      });
      const active = ds.active ? ds.versions.get(ds.active.version) : undefined;
      const prev = ds.previousServed ? ds.versions.get(ds.previousServed) : undefined;
      datasets[name] = {
        ...(active ? { active: vs(active, "ACTIVE") } : {}),
        ...(prev && prev !== active ? { previous: vs(prev, "PREVIOUS") } : {}),
        loading: [...ds.versions.values()].filter((e) => e.state !== "LOADED").map((e) => vs(e)),
        loaded: [...ds.versions.values()].filter((e) => e.state === "LOADED").map((e) => e.version),
      };
    }
    return {
      hostId: this.hostId,
      fleet: this.fleet,
      shards: this.shards,
      store: this.opts.backend.name,
      endpoint: this.endpoint,
      datasets,
    };
  }

  // ------------------------------------------------------------------------------------------------ polling

  private schedulePoll(): void {
    if (this.stopped) return;
    this.pollTimer = setTimeout(async () => {
      await this.tick();
      this.schedulePoll();
    }, this.opts.pollIntervalMs ?? HOST.pollIntervalMs);
    this.pollTimer.unref?.();
  }

  /** One poll: read the fleet's directives, reconcile every dataset. Never throws. */
  async tick(): Promise<void> {
    if (this.stopped) return;
    const run = (async () => {
      try {
        const directives = await listDirectives(this.opts.table, this.fleet);
        for (const d of directives) {
          if (!NAME_RE.test(d.dataset ?? "")) {
            this.log("ignoring a directive with an invalid dataset name", { dataset: d.dataset });
            continue;
          }
          this.reconcile(d);
        }
      } catch (err) {
        this.log("poll failed", { error: String(err) });
      }
    })();
    this.ticking = run;
    await run;
  }

  private ds(dataset: string): DatasetState {
    let ds = this.datasets.get(dataset);
    if (!ds) {
      ds = { versions: new Map() };
      this.datasets.set(dataset, ds);
    }
    return ds;
  }

  private wanted(d: Directive): string[] {
    const out: string[] = [];
    for (const v of [d.activeVersion, d.targetVersion]) if (v && !out.includes(v)) out.push(v);
    return out;
  }

  private reconcile(d: Directive): void {
    if (this.stopped) return;
    const dataset = d.dataset;
    const ds = this.ds(dataset);
    ds.directive = d;
    const want = this.wanted(d);
    const now = Date.now();
    for (const v of want) {
      try {
        checkVersionName(v);
      } catch {
        this.log("ignoring an invalid version name", { dataset, version: v });
        continue;
      }
      const e = ds.versions.get(v);
      const queued = this.queue.some((j) => j.dataset === dataset && j.version === v);
      const loading = this.current?.job.dataset === dataset && this.current.job.version === v;
      if (queued || loading) continue;
      if (
        !e ||
        (e.state === "FAILED" &&
          e.failedIssuedAt !== undefined &&
          e.failedIssuedAt !== d.issuedAt &&
          v === d.targetVersion) ||
        (e.retryAt !== undefined && now >= e.retryAt)
      ) {
        this.queue.push({ dataset, version: v, directive: d });
      }
    }
    // a load nobody wants any more (withdrawn, superseded): abandon it
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const j = this.queue[i];
      if (j.dataset === dataset && !want.includes(j.version)) this.queue.splice(i, 1);
    }
    if (this.current && this.current.job.dataset === dataset && !want.includes(this.current.job.version)) {
      this.log("abandoning a load the directive no longer wants", { dataset, version: this.current.job.version });
      this.current.abort.abort(new Error("no longer wanted"));
    }
    this.switchIfReady(dataset);
    void this.gc(dataset);
    this.pump();
  }

  /** Serve the directive's activeVersion as soon as it is loaded here (atomic: one assignment). */
  private switchIfReady(dataset: string): void {
    const ds = this.ds(dataset);
    const target = ds.directive?.activeVersion;
    if (!target || ds.active?.version === target) return;
    const e = ds.versions.get(target);
    if (e?.state !== "LOADED" || !e.store || e.shardCount === undefined) return;
    const before = ds.active?.version;
    ds.active = { version: target, shards: this.shardSet, shardCount: e.shardCount, store: e.store };
    if (before) ds.previousServed = before;
    this.log("switched reads", { dataset, from: before ?? null, to: target });
    void this.sendHeartbeat();
  }

  /** Destroy versions the directive no longer names (keeps active, target, previous while keepVersions ≥ 2). */
  private async gc(dataset: string): Promise<void> {
    const ds = this.ds(dataset);
    const d = ds.directive;
    if (!d) return;
    const keepN = this.opts.keepVersions ?? HOST.keepVersions;
    const keep = new Set<string>();
    for (const v of [d.activeVersion, d.targetVersion, ds.active?.version]) if (v) keep.add(v);
    if (keepN >= 2) for (const v of [d.previousVersion, ds.previousServed]) if (v) keep.add(v);
    if (this.current?.job.dataset === dataset) keep.add(this.current.job.version);
    for (const [v, e] of [...ds.versions]) {
      if (keep.has(v)) continue;
      ds.versions.delete(v);
      if (ds.previousServed === v) ds.previousServed = undefined;
      try {
        await e.store?.destroy();
      } catch (err) {
        this.log("destroying a store failed", { dataset, version: v, error: String(err) });
      }
      await rm(versionDir(this.dataDir, dataset, v), { recursive: true, force: true });
      this.log("dropped version", { dataset, version: v });
    }
    // leftovers on disk (partial downloads of withdrawn versions, versions from before a restart)
    const onDisk = await readdir(join(this.dataDir, dataset)).catch(() => [] as string[]);
    for (const v of onDisk) {
      if (keep.has(v) || ds.versions.has(v)) continue;
      if (this.current?.job.dataset === dataset && this.current.job.version === v) continue;
      try {
        await rm(versionDir(this.dataDir, dataset, v), { recursive: true, force: true });
        this.log("removed leftover version directory", { dataset, version: v });
      } catch {
        // not a version directory
      }
    }
  }

  // ------------------------------------------------------------------------------------------------ loading

  private pump(): void {
    if (this.current || this.stopped) return;
    const job = this.queue.shift();
    if (!job) return;
    const abort = new AbortController();
    const done = this.load(job, abort.signal).finally(() => {
      this.current = undefined;
      if (!this.stopped) {
        this.switchIfReady(job.dataset);
        void this.gc(job.dataset);
        this.pump();
      }
    });
    this.current = { job, abort, done };
  }

  private async report(job: LoadJob, e: Entry, force = false): Promise<void> {
    const now = Date.now();
    const last = (e as Entry & { reportedAt?: number }).reportedAt ?? 0;
    if (!force && now - last < HOST.progressReportMs) return;
    (e as Entry & { reportedAt?: number }).reportedAt = now;
    try {
      await putHostLoad(this.opts.table, {
        dataset: job.dataset,
        version: job.version,
        hostId: this.hostId,
        fleet: this.fleet,
        shards: this.shards,
        state: e.state,
        progress: { ...e.progress },
        error: e.error,
      });
    } catch (err) {
      this.log("could not report load state", { error: String(err) });
    }
  }

  private async load(job: LoadJob, signal: AbortSignal): Promise<void> {
    const { dataset, version, directive } = job;
    const ds = this.ds(dataset);
    const e: Entry = {
      version,
      state: "DOWNLOADING",
      progress: { filesDone: 0, filesTotal: 0, bytesDone: 0, bytesTotal: 0 },
      startedAt: Date.now(),
    };
    ds.versions.set(version, e);
    let store: VersionStore | undefined;
    try {
      checkDatasetName(dataset);
      const vdir = versionDir(this.dataDir, dataset, version);
      const bucket = directive.bucket ?? this.opts.bucket;
      if (!bucket)
        throw new ValidationError(
          `no bucket for ${dataset}/${version}: the directive names none and --bucket is unset`,
        );
      const key =
        directive.targetVersion === version && directive.manifestKey
          ? directive.manifestKey
          : manifestKey(dataset, version);
      const where = `s3://${bucket}/${key}`;
      const text = await getText(bucket, key);
      if (text === undefined) throw new NotFoundError(`manifest ${where} does not exist`);
      const manifest = parseManifest(text, where);
      if (manifest.dataset !== dataset || manifest.version !== version) {
        throw new ValidationError(
          `${where} describes ${manifest.dataset}/${manifest.version}, not ${dataset}/${version}: refused`,
        );
      }
      const files = this.planFiles(manifest, bucket, vdir);
      e.progress = {
        filesDone: 0,
        filesTotal: files.length,
        bytesDone: 0,
        bytesTotal: files.reduce((s, f) => s + f.bytes, 0),
      };
      this.log("loading", { dataset, version, files: files.length, bytes: e.progress.bytesTotal });
      await this.report(job, e, true);
      const t0 = performance.now();
      const st = await downloadFiles(files, {
        bucket: this.bucket,
        signal,
        concurrency: this.opts.downloadConcurrency,
        partBytes: this.opts.downloadPartBytes,
        onProgress: (n, fileDone) => {
          e.progress.bytesDone += n;
          if (fileDone) e.progress.filesDone++;
          void this.report(job, e);
        },
      });
      if (signal.aborted) throw signal.reason;
      e.downloadMbPerSec = st.seconds > 0 ? st.fetchedBytes / 1e6 / st.seconds : undefined;
      const tIngest = performance.now();
      e.state = "INGESTING";
      await this.report(job, e, true);
      const sdir = storeDir(vdir);
      await rm(sdir, { recursive: true, force: true }); // a half-done ingest from before a crash
      store = await this.opts.backend.open(sdir, dataset, version);
      const byShard = new Map<number, string[]>();
      for (const f of files) {
        const shard = Number(/^shard=(\d+)\//.exec(f.rel)?.[1]);
        byShard.set(shard, [...(byShard.get(shard) ?? []), f.dest]);
      }
      for (const shard of [...byShard.keys()].sort((a, b) => a - b)) {
        if (signal.aborted) throw signal.reason;
        await store.ingest(byShard.get(shard)!);
      }
      const marker: Marker = {
        dataset,
        version,
        shardCount: manifest.shards,
        shards: this.shards,
        files: files.length,
        bytes: e.progress.bytesTotal,
        loadedAt: new Date().toISOString(),
      };
      await writeFile(`${loadedMarker(vdir)}.tmp`, JSON.stringify(marker));
      await rename(`${loadedMarker(vdir)}.tmp`, loadedMarker(vdir));
      await rm(downloadDir(vdir), { recursive: true, force: true });
      e.store = store;
      e.shardCount = manifest.shards;
      e.state = "LOADED";
      e.loadedAt = Date.now();
      e.loadSeconds = (performance.now() - t0) / 1000;
      e.error = undefined;
      e.retryAt = undefined;
      await this.report(job, e, true);
      this.log("loaded", {
        dataset,
        version,
        seconds: Number(e.loadSeconds.toFixed(3)),
        downloadSeconds: Number(st.seconds.toFixed(3)),
        ingestSeconds: Number(((performance.now() - tIngest) / 1000).toFixed(3)),
        downloadMbPerSec: e.downloadMbPerSec && Number(e.downloadMbPerSec.toFixed(1)),
        resumedBytes: st.resumedBytes,
      });
      void this.sendHeartbeat();
    } catch (err) {
      await store?.destroy().catch(() => {});
      if (signal.aborted || this.stopped) {
        ds.versions.delete(version); // abandoned: finished parts stay on disk for a resume
        this.log("load abandoned", { dataset, version });
        return;
      }
      const msg = err instanceof Error ? err.message : String(err);
      if (err instanceof FerryError && PERMANENT.includes(err.code)) {
        e.state = "FAILED";
        e.error = msg;
        e.failedIssuedAt = directive.issuedAt;
        e.retryAt = undefined;
        this.log("load failed", { dataset, version, error: msg, details: err.details });
        await this.report(job, e, true);
      } else {
        // transient (network, S3/DynamoDB hiccup, disk): try again later, the host-load item says why
        e.error = `will retry: ${msg}`;
        e.retryAt = Date.now() + HOST.loadRetryMs;
        this.log("load interrupted, will retry", { dataset, version, error: msg });
        await this.report(job, e, true);
      }
    }
  }

  /** This host's files of the manifest, each with a local path proven to stay inside the version's download dir. */
  private planFiles(m: Manifest, bucket: string, vdir: string): DownloadFile[] {
    const root = downloadDir(vdir);
    const prefix = versionPrefix(m.dataset, m.version);
    const out: DownloadFile[] = [];
    const seen = new Set<string>();
    for (const f of m.files) {
      if (!f.path.startsWith(`shard=${f.shard}/`)) {
        throw new ValidationError(`manifest file ${f.path}: shard ${f.shard} does not match its path: refused`, {
          path: f.path,
        });
      }
      if (f.shard >= m.shards) {
        throw new ValidationError(`manifest file ${f.path}: shard ${f.shard} is out of range (shards: ${m.shards})`);
      }
      const dest = safeJoin(root, f.path, "manifest file path");
      if (seen.has(dest)) throw new ValidationError(`manifest lists ${f.path} twice: refused`, { path: f.path });
      seen.add(dest);
      if (!this.shardSet.has(f.shard)) continue;
      out.push({ rel: f.path, bucket, key: `${prefix}${f.path}`, dest, bytes: f.bytes, sha256: f.sha256 });
    }
    return out;
  }

  // ------------------------------------------------------------------------------------------------ heartbeat

  private hbInFlight: Promise<void> = Promise.resolve();

  private sendHeartbeat(): Promise<void> {
    if (this.stopped || !this.hostId) return this.hbInFlight;
    this.hbInFlight = this.hbInFlight.then(() => this.heartbeatOnce());
    return this.hbInFlight;
  }

  private async heartbeatOnce(): Promise<void> {
    if (this.stopped) return;
    const datasets: NonNullable<HostItem["datasets"]> = {};
    for (const [name, ds] of this.datasets) {
      datasets[name] = {
        ...(ds.active ? { active: ds.active.version } : {}),
        loaded: [...ds.versions.values()].filter((e) => e.state === "LOADED").map((e) => e.version),
      };
    }
    try {
      await heartbeat(this.opts.table, {
        fleet: this.fleet,
        hostId: this.hostId,
        shards: this.shards,
        endpoint: this.endpoint,
        datasets,
      });
      this.fleetHosts = await listHosts(this.opts.table, this.fleet);
    } catch (err) {
      this.log("heartbeat failed", { error: String(err) });
    }
  }
}
