/**
 * manifest.json — the immutable description of one published dataset version. Written once by Publish at
 * versions/<dataset>/<version>/manifest.json; read by hosts (what to download and verify), `ferry get` (routing),
 * `ferry pull`. Paths are relative to the version prefix and validated so they can never leave it.
 */
import { z } from "zod";

/** dataset and version names: safe in S3 keys, DynamoDB keys, file names and Step Functions execution names */
export const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;
export const VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
/** a file path inside the version prefix: shard=<s>/<name>.sst, no '..', no leading '/', no backslash */
export const SST_PATH_RE = /^shard=\d{1,5}\/[A-Za-z0-9_.-]{1,128}\.sst$/;

export const datasetName = z
  .string()
  .regex(NAME_RE, "lowercase letters, digits, '-' and '_', 1-63 chars, starting with a letter or digit");
export const versionName = z
  .string()
  .regex(VERSION_RE, "letters, digits, '.', '-' and '_', 1-63 chars")
  .refine((v) => !v.includes(".."), "must not contain '..'");

export const sstFileSchema = z.object({
  shard: z.number().int().min(0),
  path: z.string().regex(SST_PATH_RE, "must look like shard=<n>/<name>.sst"),
  /** hex of the user keys */
  smallestKey: z.string().regex(/^[0-9a-f]*$/),
  largestKey: z.string().regex(/^[0-9a-f]*$/),
  entries: z.number().int().positive(),
  bytes: z.number().int().positive(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type SstFile = z.infer<typeof sstFileSchema>;

export const keyEncodingSchema = z.object({
  /** key columns in order */
  columns: z.array(z.string()).min(1),
  /** "utf8" for one column; "tuple" for composite keys (see core/records/key.ts) */
  kind: z.enum(["utf8", "tuple"]),
});

export const valueEncodingSchema = z.object({
  /** "json": JSON object of `columns`; "raw": the bytes of one column as UTF-8 */
  kind: z.enum(["json", "raw"]),
  columns: z.array(z.string()).optional(),
});

export const manifestSchema = z.object({
  formatVersion: z.literal(1),
  dataset: datasetName,
  version: versionName,
  createdAt: z.string(),
  shards: z.number().int().min(1),
  shardHash: z.object({ name: z.literal("murmur3_32"), seed: z.literal(0) }),
  key: keyEncodingSchema,
  value: valueEncodingSchema,
  sst: z.object({
    compression: z.enum(["none", "snappy", "lz4", "zstd"]),
    bloomBitsPerKey: z.number().int().min(0),
    formatVersion: z.literal(5),
  }),
  counts: z.object({
    recordsIn: z.number().int().min(0),
    duplicates: z.number().int().min(0),
    skipped: z.number().int().min(0),
    entries: z.number().int().min(0),
  }),
  files: z.array(sstFileSchema),
  totalBytes: z.number().int().min(0),
  source: z.object({ input: z.string(), format: z.string() }).passthrough(),
});
export type Manifest = z.infer<typeof manifestSchema>;

export function manifestKey(dataset: string, version: string): string {
  return `versions/${dataset}/${version}/manifest.json`;
}
export function versionPrefix(dataset: string, version: string): string {
  return `versions/${dataset}/${version}/`;
}
export function stagingPrefix(dataset: string, version: string): string {
  return `staging/${dataset}/${version}/`;
}
