/**
 * Dataset / load configuration, validated with zod. One schema serves the CLI (`ferry load` options), the stack's
 * dataset configs (triggers: schedule, marker) and the state machine's execution input. Every failure is a
 * ConfigError naming the field and saying why ("field 'shards': must be between 1 and 4096").
 */
import { z } from "zod";
import { ConfigError } from "../errors.js";
import { PIPELINE, SST, UNITS } from "../limits.js";
import { NAME_RE, VERSION_RE } from "../manifest/schema.js";
import type { LoadRequest } from "./types.js";

export const INPUT_FORMATS = ["jsonl", "csv", "parquet"] as const;
export const INPUT_COMPRESSIONS = ["none", "gzip", "zstd"] as const;
export const SST_COMPRESSIONS = ["none", "snappy", "lz4", "zstd"] as const;
export const DUPLICATE_POLICIES = ["error", "last", "first"] as const;
export const BAD_RECORD_POLICIES = ["fail", "skip"] as const;

export const S3_URI_RE = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/;
/** EventBridge schedule expressions: rate(5 minutes), cron(0 2 * * ? *) */
export const SCHEDULE_RE = /^(rate\(\s*\d+\s+(minute|minutes|hour|hours|day|days)\s*\)|cron\(([^)]+)\))$/;

/** Columns: "a,b" or ["a","b"]; trimmed, non-empty, unique. */
const columns = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : v.split(",")).map((c) => c.trim()))
  .refine((cols) => cols.length > 0 && cols.every((c) => c.length > 0), "column names must not be empty")
  .refine((cols) => new Set(cols).size === cols.length, "column names must be unique");

const intFrom = (min: number, max: number) =>
  z.coerce
    .number({ error: "must be a number" })
    .int("must be a whole number")
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);

const enumOf = <T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: (iss) => `'${String(iss.input)}' is not supported: use ${values.join(", ")}` });

/** A dataset's load settings (no version). Used by the stack's dataset configs and as the CLI/execution input. */
export const datasetConfigSchema = z
  .object({
    dataset: z.string({ error: "is required" }).regex(NAME_RE, {
      error: "must be 1-63 chars of lowercase letters, digits, '-' and '_', starting with a letter or digit",
    }),
    input: z
      .string({ error: "is required" })
      .regex(S3_URI_RE, { error: "must be an S3 URI like s3://bucket/prefix/ or s3://bucket/key.jsonl" }),
    format: enumOf(INPUT_FORMATS),
    compression: enumOf(INPUT_COMPRESSIONS).optional(),
    key: columns,
    value: columns.optional(),
    valueRaw: z.string().trim().min(1, "must name one column").optional(),
    /** CSV only: split large uncompressed objects into byte ranges (unsafe with newlines inside quoted fields) */
    csvSplit: z.boolean().optional(),
    shards: intFrom(1, PIPELINE.maxShards).default(PIPELINE.defaultShards),
    fleet: z.string().regex(NAME_RE, { error: "must be a valid fleet name" }).optional(),
    sstCompression: enumOf(SST_COMPRESSIONS).default("none"),
    bloomBitsPerKey: intFrom(0, 64).default(SST.bloomBitsPerKey),
    targetFileSize: intFrom(64 * UNITS.KiB, 64 * UNITS.GiB).default(SST.targetFileSize),
    duplicates: enumOf(DUPLICATE_POLICIES).default("error"),
    badRecords: enumOf(BAD_RECORD_POLICIES).default("fail"),
    maxBadRecords: intFrom(0, Number.MAX_SAFE_INTEGER).default(PIPELINE.maxBadRecords),
    schedule: z
      .string()
      .regex(SCHEDULE_RE, { error: "must be an EventBridge expression like rate(1 day) or cron(0 2 * * ? *)" })
      .optional(),
    /** start a load when this object name appears under the input prefix (default _SUCCESS) */
    marker: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,128}$/, { error: "must be a plain object name like _SUCCESS" })
      .optional(),
    keepVersions: intFrom(1, 1000).default(PIPELINE.keepVersions),
    minReplicas: intFrom(1, 100).default(PIPELINE.minReplicas),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.value && c.valueRaw) {
      ctx.addIssue({ code: "custom", path: ["valueRaw"], message: "use either value or valueRaw, not both" });
    }
    const keySet = new Set(c.key);
    if (c.valueRaw && keySet.has(c.valueRaw)) {
      ctx.addIssue({ code: "custom", path: ["valueRaw"], message: `'${c.valueRaw}' is a key column` });
    }
  });

export type DatasetConfigInput = z.input<typeof datasetConfigSchema>;
export type DatasetConfig = z.output<typeof datasetConfigSchema>;

export const loadRequestInputSchema = z.object({ version: z.string().optional() }).passthrough();

/** "20261122T021500Z" — the default version: the UTC time, second precision. */
export function defaultVersion(at: Date = new Date()): string {
  return at
    .toISOString()
    .replace(/\.\d{3}Z$/, "Z")
    .replace(/[-:]/g, "");
}

/** Turn a zod error into a ConfigError naming the first failing field. */
export function toConfigError(err: z.ZodError, prefix = ""): ConfigError {
  const issue = err.issues[0];
  const field = issue.path.map(String).join(".") || "(config)";
  const msg =
    issue.code === "unrecognized_keys"
      ? `unknown field${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `'${k}'`).join(", ")}`
      : issue.message;
  const fieldName = issue.code === "unrecognized_keys" ? issue.keys[0] : field;
  return new ConfigError(`${prefix}field '${fieldName}': ${msg}`, {
    field: fieldName,
    issues: err.issues.map((i) => ({ path: i.path.map(String).join("."), message: i.message })),
  });
}

export function parseDatasetConfig(raw: unknown): DatasetConfig {
  const r = datasetConfigSchema.safeParse(raw);
  if (!r.success) throw toConfigError(r.error);
  return r.data;
}

export function parseVersion(raw: unknown): string {
  if (typeof raw !== "string" || !VERSION_RE.test(raw) || raw.includes("..")) {
    throw new ConfigError(
      `field 'version': ${JSON.stringify(raw)} is not a valid version: letters, digits, '.', '-' and '_', 1-63 chars`,
      { field: "version" },
    );
  }
  return raw;
}

/**
 * Validate a load request (dataset config + version) and fill in defaults. `version` defaults to the current
 * UTC time. Unknown fields are rejected (a typo must not silently fall back to a default).
 */
export function parseLoadRequest(raw: unknown, opts: { now?: Date } = {}): LoadRequest {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError("the load request must be a JSON object", { field: "(request)" });
  }
  const { version, ...rest } = raw as Record<string, unknown>;
  const cfg = parseDatasetConfig(rest);
  const v =
    version === undefined || version === null || version === "" ? defaultVersion(opts.now) : parseVersion(version);
  return toLoadRequest(cfg, v);
}

export function toLoadRequest(cfg: DatasetConfig, version: string): LoadRequest {
  const req: LoadRequest = {
    dataset: cfg.dataset,
    version,
    input: cfg.input,
    format: cfg.format,
    key: cfg.key,
    shards: cfg.shards,
    duplicates: cfg.duplicates,
    badRecords: cfg.badRecords,
    maxBadRecords: cfg.maxBadRecords,
    sstCompression: cfg.sstCompression,
    bloomBitsPerKey: cfg.bloomBitsPerKey,
    targetFileSize: cfg.targetFileSize,
    minReplicas: cfg.minReplicas,
    keepVersions: cfg.keepVersions,
  };
  if (cfg.compression) req.compression = cfg.compression;
  if (cfg.value) req.value = cfg.value;
  if (cfg.valueRaw) req.valueRaw = cfg.valueRaw;
  if (cfg.fleet) req.fleet = cfg.fleet;
  if (cfg.csvSplit !== undefined) req.csvSplit = cfg.csvSplit;
  return req;
}

/** Split s3://bucket/rest into its parts. */
export function parseS3Uri(uri: string): { bucket: string; key: string } {
  const m = S3_URI_RE.exec(uri);
  if (!m) throw new ConfigError(`'${uri}' is not an S3 URI like s3://bucket/prefix/`, { field: "input" });
  return { bucket: m[1], key: m[2] ?? "" };
}

/** What an EventBridge rule puts into the execution input (infra/constructs/triggers.ts). */
export interface TriggerInput {
  dataset: string;
  /** the dataset's load settings (from the stack's dataset configs); absent: the dataset item's stored config */
  config?: Record<string, unknown>;
  trigger: {
    /** "schedule" (EventBridge schedule) or "object-created" (the marker object landed) */
    kind: "schedule" | "object-created";
    /** the event's time (ISO 8601) */
    time: string;
    bucket?: string;
    key?: string;
  };
}

/**
 * Turn a trigger's execution input into a load request. Version: for a marker at <input>/<folder>/_SUCCESS the
 * folder's name when it is a valid version (and the input becomes that folder), else the event time as
 * 20261122T021500Z. The config comes with the trigger or from the dataset item.
 */
export function requestFromTrigger(raw: unknown, stored?: Record<string, unknown> | object): LoadRequest {
  const t = raw as TriggerInput;
  if (!t?.trigger || typeof t.trigger !== "object") {
    throw new ConfigError("trigger input: field 'trigger' is missing", { field: "trigger" });
  }
  const base = (t.config ?? stored) as Record<string, unknown> | undefined;
  if (!base) {
    throw new ConfigError(
      `trigger for dataset '${t.dataset}': no load config (neither in the trigger nor stored on the dataset)`,
      { field: "config" },
    );
  }
  const merged: Record<string, unknown> = { ...base, dataset: t.dataset ?? base.dataset };
  const { schedule: _s, marker: _m, version: _v, ...cfgRaw } = merged;
  const cfg = parseDatasetConfig(cfgRaw);
  const time = new Date(t.trigger.time);
  if (Number.isNaN(time.getTime())) {
    throw new ConfigError(`trigger: field 'time' ${JSON.stringify(t.trigger.time)} is not a time`, { field: "time" });
  }
  let version = defaultVersion(time);
  let input = cfg.input;
  if (t.trigger.kind === "object-created" && t.trigger.bucket && t.trigger.key) {
    const { bucket, key } = parseS3Uri(cfg.input);
    const dir = t.trigger.key.slice(0, t.trigger.key.lastIndexOf("/") + 1);
    const base = key === "" || key.endsWith("/") ? key : `${key}/`;
    if (t.trigger.bucket !== bucket || !dir.startsWith(base)) {
      throw new ConfigError(
        `trigger: marker s3://${t.trigger.bucket}/${t.trigger.key} is not under the dataset's input ${cfg.input}`,
        { field: "input" },
      );
    }
    input = `s3://${bucket}/${dir}`;
    const folder = dir.slice(base.length).replace(/\/$/, "");
    const name = folder.slice(folder.lastIndexOf("/") + 1);
    if (folder && VERSION_RE.test(name) && !name.includes("..")) version = name;
  }
  return toLoadRequest({ ...cfg, input }, version);
}
