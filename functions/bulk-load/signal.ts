/**
 * Signal — write the fleet directive so the fleet's hosts start loading the staged version.
 *
 * Input (flat, or the same object under `signal`):
 *   { dataset, version, fleet?: string | null, bucket?: string (default FERRY_DATA_BUCKET), manifestKey?, shards?,
 *     minReplicas?, waitForHostsSeconds?, issuedAt?: epoch ms | ISO ($$.Execution.StartTime), execution?: string
 *     ($$.Execution.Name) }
 * Output (SignalOutput, the input of WaitForHosts and Cutover):
 *   { dataset, version, fleet: string | null, bucket, manifestKey, shards, minReplicas, issuedAt, deadline,
 *     expectedActiveVersion: string | null, token }
 * Without a fleet nothing is written (stage-and-activate): WaitForHosts is then covered at once.
 * Errors: ConflictError (a newer directive exists), NotFoundError / CorruptionError (manifest), TransientError.
 */
import { z } from "zod";
import { type SignalOutput, signalStep } from "../../core/control/fleet.js";
import { ENV, requireEnv } from "../../core/env.js";
import { ConfigError } from "../../core/errors.js";
import { readManifest } from "../../core/manifest/manifest.js";
import { datasetName, versionName } from "../../core/manifest/schema.js";

export const signalInputSchema = z.object({
  dataset: datasetName,
  version: versionName,
  fleet: z.string().min(1).nullish(),
  bucket: z.string().min(1).optional(),
  manifestKey: z.string().min(1).optional(),
  shards: z.number().int().min(1).optional(),
  minReplicas: z.number().int().min(1).optional(),
  waitForHostsSeconds: z.number().min(0).optional(),
  issuedAt: z.union([z.number(), z.string()]).optional(),
  execution: z.string().min(1).optional(),
});

export function parseInput<T>(schema: z.ZodType<T>, event: unknown, what: string): T {
  const raw = (event as { signal?: unknown } | null)?.signal ?? event;
  const r = schema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new ConfigError(`${what} input: field '${i.path.join(".")}' ${i.message}`, { field: i.path.join(".") });
  }
  return r.data;
}

export async function handler(event: unknown): Promise<SignalOutput> {
  const input = parseInput(signalInputSchema, event, "Signal");
  const bucket = input.bucket ?? requireEnv(ENV.dataBucket);
  return signalStep(
    requireEnv(ENV.controlTable),
    { ...input, bucket, fleet: input.fleet ?? null },
    async (b, d, v) => (await readManifest(b, d, v)).shards,
  );
}
