/**
 * The `ferry` command. Contract: docs/cli.md. Exit codes: 0 done, 1 the operation failed (one clear message on
 * stderr, stack only with --verbose), 2 usage error. Each area registers its commands from cli/commands/<area>.ts.
 */
import { Command, CommanderError } from "commander";
import { isFerryError } from "../core/errors.js";
import { registerDemo } from "./commands/demo.js";
import { registerEvents } from "./commands/events.js";
import { registerHost } from "./commands/host.js";
import { registerLoad } from "./commands/load.js";
import { registerLocal } from "./commands/local.js";
import { registerSst } from "./commands/sst.js";

export function buildProgram(): Command {
  const program = new Command("ferry")
    .description("Serverless data movement on AWS: bulk-load datasets as RocksDB SSTs, ingest events through queues.")
    .option("--verbose", "print stack traces and debug output")
    .showHelpAfterError()
    .exitOverride();
  registerLocal(program);
  registerSst(program);
  registerLoad(program);
  registerHost(program);
  registerEvents(program);
  registerDemo(program);
  for (const c of program.commands) c.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
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
