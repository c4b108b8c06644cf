/**
 * Activate — without a fleet: make the staged version the dataset's active version (compare-and-set; the previous
 * one is kept for rollback) and retire versions beyond keepVersions.
 *
 * Input: { dataset, version, keepVersions?, execution? }. Output: { dataset, version, activeVersion, previousVersion,
 * retired }.
 */
import { ENV, requireEnv } from "../../core/env.js";
import { activate } from "../../core/pipeline/publish.js";

interface ActivateEvent {
  dataset: string;
  version: string;
  keepVersions: number;
  execution?: string;
}

export async function handler(event: ActivateEvent) {
  return activate(event, requireEnv(ENV.controlTable));
}
