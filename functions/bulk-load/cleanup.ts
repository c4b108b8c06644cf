/**
 * Cleanup — retire versions beyond keepVersions (never the active or previous one); hosts drop what their directive
 * no longer names.
 *
 * Input: { dataset, keepVersions?: number } (flat, or under `signal`; extra fields are ignored).
 * Output: { dataset, retired: string[], keepVersions: number }.
 */
import { z } from "zod";
import { type CleanupResult, cleanup } from "../../core/control/fleet.js";
import { ENV, requireEnv } from "../../core/env.js";
import { datasetName } from "../../core/manifest/schema.js";
import { parseInput } from "./signal.js";

const cleanupInputSchema = z.object({ dataset: datasetName, keepVersions: z.number().int().min(1).optional() });

export async function handler(event: unknown): Promise<CleanupResult> {
  const input = parseInput(cleanupInputSchema, event, "Cleanup");
  return cleanup(requireEnv(ENV.controlTable), input);
}
