#!/usr/bin/env node
// The `ferry` executable: runs the TypeScript CLI through tsx's loader (no build step).
import { register } from "tsx/esm/api";

register();
const { main } = await import("./main.ts");
process.exit(await main(process.argv.slice(2)));
