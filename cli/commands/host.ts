import type { Command } from "commander";

/** `ferry host …` commands — see docs/cli.md. Filled in by the host work. */
export function registerHost(_program: Command): void {}
