/**
 * Where a host keeps things, and the checks that keep every path inside the data directory:
 *
 *   <data-dir>/host.json                                  the host id (stable across restarts)
 *   <data-dir>/<dataset>/<version>/download/shard=<s>/…   downloads (.part + .part.json journal while in flight)
 *   <data-dir>/<dataset>/<version>/db/                    the version's store (same filesystem: ingest moves files)
 *   <data-dir>/<dataset>/<version>/LOADED                 marker: the store holds the complete version
 */
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import { ValidationError } from "../../core/errors.js";
import { NAME_RE, SST_PATH_RE, VERSION_RE } from "../../core/manifest/schema.js";

export function checkDatasetName(d: string): string {
  if (!NAME_RE.test(d))
    throw new ValidationError(`dataset name ${JSON.stringify(d)} is not a valid name`, { dataset: d });
  return d;
}

export function checkVersionName(v: string): string {
  if (!VERSION_RE.test(v) || v.includes("..")) {
    throw new ValidationError(`version name ${JSON.stringify(v)} is not a valid name`, { version: v });
  }
  return v;
}

/**
 * Resolve `rel` under `root` and refuse anything that would leave it: the manifest path regex first, then the
 * resolved path must be strictly inside root (no '..', no absolute path, no drive letter, no symlink tricks in the
 * name itself).
 */
export function safeJoin(root: string, rel: string, what = "path"): string {
  if (!SST_PATH_RE.test(rel)) {
    throw new ValidationError(`${what} ${JSON.stringify(rel)} is not of the form shard=<n>/<name>.sst: refused`, {
      path: rel,
    });
  }
  const base = resolve(root);
  const full = resolve(base, rel);
  const r = relative(base, full);
  if (!r || r.startsWith("..") || isAbsolute(r) || !full.startsWith(base + sep)) {
    throw new ValidationError(`${what} ${JSON.stringify(rel)} would leave ${base}: refused`, { path: rel });
  }
  return full;
}

export function versionDir(dataDir: string, dataset: string, version: string): string {
  return join(resolve(dataDir), checkDatasetName(dataset), checkVersionName(version));
}

export const downloadDir = (vdir: string) => join(vdir, "download");
export const storeDir = (vdir: string) => join(vdir, "db");
export const loadedMarker = (vdir: string) => join(vdir, "LOADED");
