import type { Command } from "commander";

/** `ferry sst …` commands — see docs/cli.md. Filled in by the sst work. */
export function registerSst(_program: Command): void {}
