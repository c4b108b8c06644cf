/**
 * `ferry host`, `ferry get`, `ferry rollback` (docs/cli.md, docs/hosts.md).
 *
 *   ferry host --fleet F --shards 0-3|0,2,5 --data-dir DIR [--port P] [--store rocksdb|sst] [--max-download-mbps N]
 *   ferry get D KEY [--json] [--encoding utf8|hex|base64]
 *   ferry rollback D [--json]
 *
 * Target: the embedded local stack (the running one, else one started for the command's duration) with the control
 * table and data bucket of the locally deployed app; or `--aws [--stack NAME]` (names from the stack's outputs).
 * FERRY_CONTROL_TABLE / FERRY_DATA_BUCKET, when set, win over both.
 */
import { CloudFormationClient, DescribeStacksCommand } from "@aws-sdk/client-cloudformation";
import type { Command } from "commander";
import { fleetCoverage, rollback } from "../../core/control/fleet.js";
import { ENV } from "../../core/env.js";
import { ConfigError, NotFoundError } from "../../core/errors.js";
import { routeGet } from "../../host/client.js";
import { parseShards, runHost } from "../../host/main.js";

export interface FleetTarget {
  table: string;
  bucket?: string;
}

interface TargetOpts {
  aws?: boolean;
  stack?: string;
  json?: boolean;
}

async function awsFleetTarget(stackName: string): Promise<FleetTarget> {
  const res = await new CloudFormationClient({}).send(new DescribeStacksCommand({ StackName: stackName }));
  const outputs = (res.Stacks?.[0]?.Outputs ?? []).filter((o) => o.OutputKey && o.OutputValue);
  const find = (re: RegExp) => outputs.find((o) => re.test(o.OutputKey as string))?.OutputValue;
  const table = process.env[ENV.controlTable] ?? find(/ControlTable/i);
  const bucket = process.env[ENV.dataBucket] ?? find(/DataBucket/i);
  if (!table)
    throw new ConfigError(`stack ${stackName} has no ControlTable output (is the bulk-load pipeline deployed?)`);
  return { table, bucket };
}

async function localFleetTarget(): Promise<FleetTarget> {
  let table = process.env[ENV.controlTable];
  let bucket = process.env[ENV.dataBucket];
  if (!table || !bucket) {
    const { deployLocal } = await import("../../local/deploy/deploy.js");
    const d = await deployLocal({ applyEnv: false });
    table ??= d.env[ENV.controlTable];
    bucket ??= d.env[ENV.dataBucket];
  }
  if (!table) {
    throw new ConfigError(
      `the local app defines no control table (no function has ${ENV.controlTable}): is the bulk-load pipeline in the stack?`,
    );
  }
  return { table, bucket };
}

/** Run `fn` against the chosen target (see the file comment). Exported for `ferry demo` and `ferry status`. */
export async function withFleetTarget<T>(
  o: TargetOpts,
  fn: (t: FleetTarget, local: boolean) => Promise<T>,
): Promise<T> {
  if (o.aws) return fn(await awsFleetTarget(o.stack ?? process.env.FERRY_STACK_NAME ?? "Ferry"), false);
  const { withLocalStack } = await import("../../local/stack/index.js");
  return withLocalStack(async () => fn(await localFleetTarget(), true));
}

const num = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new ConfigError(`--${name}: expected a non-negative number, got "${v}"`);
  return n;
};

function keyBytes(key: string, encoding: string): Buffer {
  if (encoding === "utf8") return Buffer.from(key, "utf8");
  if (encoding === "hex") {
    if (key.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(key)) throw new ConfigError(`KEY ${key} is not hex`);
    return Buffer.from(key, "hex");
  }
  if (encoding === "base64") return Buffer.from(key, "base64");
  throw new ConfigError(`--encoding ${encoding}: use utf8, hex or base64`, { field: "encoding" });
}

function printableValue(v: Buffer): { value: string; valueEncoding: "utf8" | "base64" } {
  const s = v.toString("utf8");
  return Buffer.from(s, "utf8").equals(v)
    ? { value: s, valueEncoding: "utf8" }
    : { value: v.toString("base64"), valueEncoding: "base64" };
}

export function registerHost(program: Command): void {
  program
    .command("host")
    .description("run a serving host: load the fleet's dataset versions for these shards and serve them over HTTP")
    .requiredOption("--fleet <F>", "fleet name")
    .requiredOption("--shards <S>", "shards this host owns: a range 0-3 or a list 0,2,5")
    .requiredOption("--data-dir <DIR>", "where downloads and stores live (one filesystem)")
    .option("--port <P>", "HTTP port (default: any free port)", num("port"))
    .option("--bind <ADDR>", "listen address", "127.0.0.1")
    .option("--store <S>", "store backend: rocksdb | sst (default: rocksdb when librocksdb is present)")
    .option("--max-download-mbps <N>", "download bandwidth cap in megabits/s (0 = none)", num("max-download-mbps"))
    .option("--host-id <ID>", "host id (default: kept in <data-dir>/host.json)")
    .option("--aws", "the deployed stack")
    .option("--stack <NAME>", "deployed stack name", "Ferry")
    .option("--json", "print the ready line as JSON")
    .action(
      async (
        o: TargetOpts & {
          fleet: string;
          shards: string;
          dataDir: string;
          port?: number;
          bind: string;
          store?: string;
          maxDownloadMbps?: number;
          hostId?: string;
        },
      ) => {
        if (o.store !== undefined && o.store !== "rocksdb" && o.store !== "sst") {
          throw new ConfigError(`--store ${o.store}: use rocksdb or sst`, { field: "store" });
        }
        const shards = parseShards(o.shards);
        await withFleetTarget(o, (t) =>
          runHost(
            {
              fleet: o.fleet,
              shards,
              dataDir: o.dataDir,
              port: o.port,
              bind: o.bind,
              store: o.store as "rocksdb" | "sst" | undefined,
              maxDownloadMbps: o.maxDownloadMbps,
              hostId: o.hostId,
              table: t.table,
              bucket: t.bucket,
            },
            (line) => {
              if (o.json) {
                process.stdout.write(`${line}\n`);
                return;
              }
              const r = JSON.parse(line) as { endpoint: string; hostId: string; store: string };
              process.stdout.write(`${r.endpoint}\n`);
              process.stderr.write(
                `ferry host ${r.hostId}: fleet ${o.fleet}, shards ${o.shards}, store ${r.store}, serving at ${r.endpoint} (Ctrl-C stops)\n`,
              );
            },
          ),
        );
      },
    );

  program
    .command("get")
    .description("read one key of a dataset's active version from a host that owns its shard")
    .argument("<D>", "dataset")
    .argument("<KEY>", "key")
    .option("--encoding <E>", "encoding of KEY: utf8 | hex | base64", "utf8")
    .option("--aws", "the deployed stack")
    .option("--stack <NAME>", "deployed stack name", "Ferry")
    .option("--json", "one JSON object on stdout")
    .action(async (dataset: string, key: string, o: TargetOpts & { encoding: string }) => {
      const kb = keyBytes(key, o.encoding);
      const r = await withFleetTarget(o, (t) => routeGet({ table: t.table, bucket: t.bucket, dataset, key: kb }));
      const info = {
        dataset,
        key,
        found: r.found,
        version: r.version,
        activeVersion: r.activeVersion,
        shard: r.shard,
        host: r.hostId,
        endpoint: r.endpoint,
      };
      if (!r.found) {
        if (o.json) {
          process.stdout.write(`${JSON.stringify(info)}\n`);
          process.stderr.write("ferry: not found\n");
          process.exitCode = 1;
          return;
        }
        throw new NotFoundError("not found", { dataset, key });
      }
      if (o.json) process.stdout.write(`${JSON.stringify({ ...info, ...printableValue(r.value as Buffer) })}\n`);
      else process.stdout.write(`${(r.value as Buffer).toString("utf8")}\n`);
    });

  program
    .command("rollback")
    .description("make the previous version active again (hosts switch back; they kept it for this)")
    .argument("<D>", "dataset")
    .option("--aws", "the deployed stack")
    .option("--stack <NAME>", "deployed stack name", "Ferry")
    .option("--json", "one JSON object on stdout")
    .action(async (dataset: string, o: TargetOpts) => {
      const r = await withFleetTarget(o, (t) => rollback(t.table, dataset));
      process.stdout.write(
        o.json
          ? `${JSON.stringify(r)}\n`
          : `${dataset}: active version ${r.activeVersion} (was ${r.previousVersion})${r.fleet ? `; fleet ${r.fleet} switches back` : ""}\n`,
      );
    });
}

/** Per-shard host coverage for `ferry status` (re-exported for cli/commands/load.ts). */
export { fleetCoverage };
