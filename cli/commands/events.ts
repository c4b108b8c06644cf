import type { Command } from "commander";

/** `ferry events …` commands — see docs/cli.md. Filled in by the events work. */
export function registerEvents(_program: Command): void {}
