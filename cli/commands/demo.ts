import type { Command } from "commander";

/** `ferry demo …` commands — see docs/cli.md. Filled in by the demo work. */
export function registerDemo(_program: Command): void {}
