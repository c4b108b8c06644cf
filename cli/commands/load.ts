import type { Command } from "commander";

/** `ferry load …` commands — see docs/cli.md. Filled in by the load work. */
export function registerLoad(_program: Command): void {}
