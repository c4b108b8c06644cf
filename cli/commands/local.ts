import type { Command } from "commander";

/** `ferry local …` commands — see docs/cli.md. Filled in by the local work. */
export function registerLocal(_program: Command): void {}
