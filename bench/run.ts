/**
 * `npm run bench -- <name> [options]`: runs bench/<name>.ts (sst | pipeline | stages | serving | events). Each benchmark
 * measures its own baseline in the same run and prints one JSON object as its last line.
 */
const BENCHES = ["sst", "pipeline", "stages", "serving", "events"] as const;

const [name, ...rest] = process.argv.slice(2);
if (!name || !(BENCHES as readonly string[]).includes(name)) {
  process.stderr.write(`usage: npm run bench -- ${BENCHES.join("|")} [--json]\n`);
  process.exit(2);
}
const mod = (await import(`./${name}.ts`)) as { run: (args: string[]) => Promise<Record<string, unknown>> };
const result = await mod.run(rest);
process.stdout.write(`${JSON.stringify(result)}\n`);
