/**
 * `ferry demo [--records N] [--hosts N] [--shards N] [--replicas N] [--json]` — the main job, end to end, on the
 * embedded local stack. See cli/demo/run.ts.
 */
import type { Command } from "commander";
import { ConfigError } from "../../core/errors.js";
import { formatDemoTable, runDemo } from "../demo/run.js";

function int(name: string, min: number, max: number) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new ConfigError(`--${name} ${v}: a whole number from ${min} to ${max}`, { field: name });
    }
    return n;
  };
}

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description(
      "run everything end to end on the embedded local stack: bulk load v1, verify, v2, cutover, rollback, events",
    )
    .option("--records <n>", "records in the generated dataset", int("records", 1, 100_000_000), 1_000_000)
    .option("--hosts <n>", "serving hosts", int("hosts", 1, 64), 3)
    .option("--shards <n>", "shards", int("shards", 1, 4096), 8)
    .option("--replicas <n>", "hosts per shard", int("replicas", 1, 64), 2)
    .option("--sample <n>", "keys verified through the hosts per phase", int("sample", 1, 1_000_000), 2000)
    .option("--events <n>", "events in the event-ingestion part (0 skips it)", int("events", 0, 10_000_000), 2000)
    .option("--store <backend>", "host store backend: rocksdb | sst (default: rocksdb when librocksdb is present)")
    .option("--json", "print one JSON object on stdout")
    .action(async (opts) => {
      if (opts.replicas > opts.hosts) {
        throw new ConfigError(`--replicas ${opts.replicas} is more than --hosts ${opts.hosts}`, { field: "replicas" });
      }
      if (opts.store && opts.store !== "rocksdb" && opts.store !== "sst") {
        throw new ConfigError(`--store ${opts.store}: rocksdb or sst`, { field: "store" });
      }
      const result = await runDemo({
        records: opts.records,
        hosts: opts.hosts,
        shards: opts.shards,
        replicas: opts.replicas,
        sample: opts.sample,
        events: opts.events,
        store: opts.store,
        json: Boolean(opts.json),
        log: (line) => process.stderr.write(`${line}\n`),
      });
      if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
      else process.stderr.write(`\n${formatDemoTable(result)}\n`);
      if (!result.ok) process.exitCode = 1;
    });
}
