/**
 * The contract between the reference KV server and whoever owns the stores (the host agent, tests, the benchmark).
 * The server never opens, switches or closes stores: it asks the resolver for a dataset's ACTIVE version on every
 * request and reads that store synchronously, so a cutover (the resolver swapping its pointer) is atomic from the
 * point of view of a request.
 */
import type { StoreStats, VersionStore } from "../store/types.js";

export interface ActiveVersion {
  version: string;
  /** shards of this dataset this host serves */
  shards: readonly number[] | ReadonlySet<number>;
  /** the manifest's shard count (shard = murmur3_32(key) mod shardCount) */
  shardCount: number;
  store: VersionStore;
}

export type VersionState =
  | "DOWNLOADING"
  | "INGESTING"
  | "LOADED"
  | "ACTIVE"
  | "PREVIOUS"
  | "FAILED"
  | "RETIRING"
  | (string & {});

export interface VersionStatus {
  version: string;
  state: VersionState;
  /** store figures when the store is open */
  stats?: StoreStats;
  error?: string;
  [extra: string]: unknown;
}

export interface DatasetStatus {
  active?: VersionStatus;
  previous?: VersionStatus;
  loading?: VersionStatus[];
  [extra: string]: unknown;
}

export interface HostStatus {
  hostId: string;
  fleet: string;
  shards: number[];
  /** store backend in use */
  store?: string;
  datasets: Record<string, DatasetStatus>;
  [extra: string]: unknown;
}

export interface KvResolver {
  /** the version reads go to; undefined when this host serves nothing for the dataset (yet) */
  getActive(dataset: string): ActiveVersion | undefined;
  /** GET /v1/status body */
  status(): HostStatus | Promise<HostStatus>;
  /** optional: the endpoint (http://host:port) of a host that owns `shard`, for 421 answers */
  ownerOf?(dataset: string, shard: number): string | undefined;
}
