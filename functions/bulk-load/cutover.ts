/**
 * Cutover — make the loaded version the dataset's active version; hosts switch reads when the directive follows.
 *
 * Input: Signal's (or WaitForHosts') output (flat, or under `signal`).
 * Output: the input plus { activeVersion, previousVersion: string | null, switched: boolean } (switched false = this
 * execution had already cut over: a retry).
 * Throws ConflictError (not retryable) when another cutover won or the dataset moved on to a newer version.
 */
import { z } from "zod";
import { type CutoverOutput, type SignalOutput, cutoverStep } from "../../core/control/fleet.js";
import { ENV, requireEnv } from "../../core/env.js";
import { datasetName, versionName } from "../../core/manifest/schema.js";
import { parseInput } from "./signal.js";

export const signalOutputSchema: z.ZodType<SignalOutput> = z
  .object({
    dataset: datasetName,
    version: versionName,
    fleet: z.string().min(1).nullable(),
    bucket: z.string().min(1),
    manifestKey: z.string().min(1),
    shards: z.number().int().min(1),
    minReplicas: z.number().int().min(1),
    issuedAt: z.number(),
    deadline: z.number(),
    expectedActiveVersion: z.string().nullable(),
    token: z.string().min(1),
  })
  .passthrough() as unknown as z.ZodType<SignalOutput>;

export async function handler(event: unknown): Promise<CutoverOutput> {
  const input = parseInput(signalOutputSchema, event, "Cutover");
  return cutoverStep(requireEnv(ENV.controlTable), input);
}
