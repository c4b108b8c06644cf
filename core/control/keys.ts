/**
 * Keys of the control table (one DynamoDB table, pk/sk strings). See docs/design.md "control plane".
 * Single-item conditional writes only: no transactions.
 */
export const CONTROL_PK = "pk";
export const CONTROL_SK = "sk";

export const keys = {
  dataset: (d: string) => ({ pk: `DATASET#${d}`, sk: "META" }),
  version: (d: string, v: string) => ({ pk: `DATASET#${d}`, sk: `VERSION#${v}` }),
  versionSkPrefix: "VERSION#",
  host: (fleet: string, hostId: string) => ({ pk: `FLEET#${fleet}`, sk: `HOST#${hostId}` }),
  hostSkPrefix: "HOST#",
  directive: (fleet: string, d: string) => ({ pk: `FLEET#${fleet}`, sk: `DIRECTIVE#${d}` }),
  directiveSkPrefix: "DIRECTIVE#",
  hostLoad: (d: string, v: string, hostId: string) => ({ pk: `LOAD#${d}#${v}`, sk: `HOST#${hostId}` }),
  hostLoadPk: (d: string, v: string) => `LOAD#${d}#${v}`,
} as const;

export type VersionStatus =
  | "PLANNED"
  | "PARTITIONED"
  | "BUILT"
  | "STAGED"
  | "LOADING"
  | "ACTIVE"
  | "RETIRED"
  | "FAILED";

export type HostLoadState = "DOWNLOADING" | "INGESTING" | "LOADED" | "FAILED";
