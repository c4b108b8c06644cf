/** wasm/jsonl-scan/build.mjs */
export const root: string;
export const outPath: string;
export function compile(): Promise<Buffer>;
export function generated(wasm: Buffer): string;
export function build(): Promise<void>;
