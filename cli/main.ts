/**
 * The `ferry` command. Contract: docs/cli.md. Exit codes: 0 done, 1 the operation failed (one clear message on
 * stderr, stack only with --verbose), 2 usage error. Each area registers its commands from cli/commands/<area>.ts.
 */
import { Command, CommanderError } from "commander";
import { isFerryError } from "../core/errors.js";

type Register = (program: Command) => void;

/**
 * Each area's commands, loaded only when used: a command pays the start-up cost of its own area's code (the SDK,
 * the CDK app, codecs), not everyone's. `--help` and unknown commands load them all.
 */
const AREAS: Array<{ commands: string[]; load: () => Promise<Register> }> = [
  { commands: ["local"], load: async () => (await import("./commands/local.js")).registerLocal },
  { commands: ["sst"], load: async () => (await import("./commands/sst.js")).registerSst },
  {
    commands: ["load", "status", "versions", "pull"],
    load: async () => (await import("./commands/load.js")).registerLoad,
  },
  { commands: ["host", "get", "rollback"], load: async () => (await import("./commands/host.js")).registerHost },
  { commands: ["events", "dlq"], load: async () => (await import("./commands/events.js")).registerEvents },
  { commands: ["demo"], load: async () => (await import("./commands/demo.js")).registerDemo },
];

export async function buildProgram(argv: string[] = []): Promise<Command> {
  const program = new Command("ferry")
    .description("Serverless data movement on AWS: bulk-load datasets as RocksDB SSTs, ingest events through queues.")
    .option("--verbose", "print stack traces and debug output")
    .showHelpAfterError()
    .exitOverride();
  const first = argv.find((a) => !a.startsWith("-"));
  const wanted = AREAS.filter((a) => first !== undefined && a.commands.includes(first));
  for (const area of wanted.length ? wanted : AREAS) (await area.load())(program);
  for (const c of program.commands) c.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = await buildProgram(argv);
  try {
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.exitCode === 0) return 0;
      return 2;
    }
    const verbose = argv.includes("--verbose");
    if (isFerryError(err)) {
      process.stderr.write(`ferry: ${err.message}\n`);
    } else {
      process.stderr.write(`ferry: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    if (verbose && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}

const isEntry = process.argv[1] && /cli[\\/]main\.ts$/.test(process.argv[1]);
if (isEntry) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      process.stderr.write(`ferry: ${String(err)}\n`);
      process.exit(1);
    },
  );
}
