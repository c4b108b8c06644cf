/**
 * A minimal in-memory KvResolver: tests, the serving benchmark, and a template for the host agent's own.
 * setActive() swaps a dataset's active version in one assignment (atomic for readers); the previous one is kept
 * and returned so the caller decides when to close/destroy it.
 */
import type { ActiveVersion, DatasetStatus, HostStatus, KvResolver } from "./types.js";

export class StaticResolver implements KvResolver {
  private readonly active = new Map<string, ActiveVersion>();
  private readonly previous = new Map<string, ActiveVersion>();
  private readonly owners = new Map<string, string>();

  constructor(
    readonly hostId = "local",
    readonly fleet = "default",
    readonly shards: number[] = [],
  ) {}

  getActive(dataset: string): ActiveVersion | undefined {
    return this.active.get(dataset);
  }

  /** make `av` the active version of `dataset`; returns the version it replaced */
  setActive(dataset: string, av: ActiveVersion): ActiveVersion | undefined {
    const prev = this.active.get(dataset);
    this.active.set(dataset, av);
    if (prev) this.previous.set(dataset, prev);
    return prev;
  }

  remove(dataset: string): void {
    this.active.delete(dataset);
    this.previous.delete(dataset);
  }

  /** record that `endpoint` serves `shard` of `dataset` (for 421 answers) */
  setOwner(dataset: string, shard: number, endpoint: string): void {
    this.owners.set(`${dataset}#${shard}`, endpoint);
  }

  ownerOf(dataset: string, shard: number): string | undefined {
    return this.owners.get(`${dataset}#${shard}`);
  }

  status(): HostStatus {
    const datasets: Record<string, DatasetStatus> = {};
    for (const [d, av] of this.active) {
      const prev = this.previous.get(d);
      datasets[d] = {
        active: { version: av.version, state: "ACTIVE", stats: av.store.stats() },
        ...(prev ? { previous: { version: prev.version, state: "PREVIOUS" } } : {}),
        loading: [],
      };
    }
    return { hostId: this.hostId, fleet: this.fleet, shards: this.shards, datasets };
  }
}
