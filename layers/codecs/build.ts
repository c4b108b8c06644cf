/**
 * Assembles the Lambda layer of native codec packages used by core/sst, for linux-arm64 (Lambda arm64, glibc):
 *   layers/codecs/build/nodejs/node_modules/{snappy, lz4-napi, @node-rs/crc32, @node-rs/xxhash} + their
 *   linux-arm64-gnu binary packages.
 * zstd needs nothing here: Lambda's nodejs22.x has zstd in node:zlib (core/sst/codecs.ts uses it when present).
 *
 *   npx tsx layers/codecs/build.ts [--out DIR] [--check]
 *
 * Versions are the ones installed in the project (node_modules), so the layer matches what was tested.
 * Functions bundled with NodejsFunction must mark CODEC_PACKAGES (+ "zstd-napi") as externalModules.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");

/** packages loaded at run time by core/sst (JS wrappers) */
export const CODEC_PACKAGES = ["snappy", "lz4-napi", "@node-rs/crc32", "@node-rs/xxhash"] as const;
/** never loaded on Lambda (node:zlib has zstd on nodejs22.x) but must stay out of the bundle */
export const EXTERNAL_ONLY = ["zstd-napi"] as const;
export const DEFAULT_LAYER_DIR = join(here, "build");

function pkgJson(name: string): { version: string; optionalDependencies?: Record<string, string> } {
  return JSON.parse(readFileSync(join(root, "node_modules", name, "package.json"), "utf8"));
}

/** the linux-arm64-gnu binary package each wrapper needs, at the version the wrapper pins */
export function arm64Packages(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of CODEC_PACKAGES) {
    const j = pkgJson(name);
    out[name] = j.version;
    const bin = Object.entries(j.optionalDependencies ?? {}).find(([n]) => /linux-arm64-gnu$/.test(n));
    if (!bin) throw new Error(`${name} has no linux-arm64-gnu optional dependency`);
    out[bin[0]] = bin[1];
  }
  return out;
}

export function buildLayer(outDir = DEFAULT_LAYER_DIR): string {
  const nodejs = join(outDir, "nodejs");
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(nodejs, { recursive: true });
  // only the wrappers: npm picks their linux-arm64-gnu optional dependencies from --os/--cpu/--libc
  // (listing the platform packages directly fails with EBADPLATFORM on an x64 machine)
  const all = arm64Packages();
  const deps = Object.fromEntries(
    Object.entries(all).filter(([n]) => (CODEC_PACKAGES as readonly string[]).includes(n)),
  );
  writeFileSync(
    join(nodejs, "package.json"),
    `${JSON.stringify({ name: "ferry-codecs-layer", private: true, dependencies: deps }, null, 2)}\n`,
  );
  execFileSync(
    "npm",
    [
      "install",
      "--omit=dev",
      "--ignore-scripts",
      "--no-audit",
      "--no-fund",
      "--no-package-lock",
      "--os=linux",
      "--cpu=arm64",
      "--libc=glibc",
    ],
    { cwd: nodejs, stdio: ["ignore", "inherit", "inherit"] },
  );
  rmSync(join(nodejs, "package.json"), { force: true });
  return outDir;
}

function walk(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

/** ELF e_machine of a file (0xb7 = aarch64, 0x3e = x86-64), or undefined when it is not ELF */
export function elfMachine(file: string): number | undefined {
  const b = readFileSync(file);
  if (b.length < 20 || b[0] !== 0x7f || b[1] !== 0x45 || b[2] !== 0x4c || b[3] !== 0x46) return undefined;
  return b.readUInt16LE(18);
}

/** Checks a built layer: every wrapper present, one aarch64 .node per wrapper, no x86-64 binaries. */
export function checkLayer(outDir = DEFAULT_LAYER_DIR): { nodeFiles: string[]; problems: string[] } {
  const nm = join(outDir, "nodejs", "node_modules");
  const problems: string[] = [];
  if (!existsSync(nm)) return { nodeFiles: [], problems: [`${nm} does not exist: run npx tsx layers/codecs/build.ts`] };
  const nodeFiles = walk(nm).filter((f) => f.endsWith(".node"));
  for (const [name] of Object.entries(arm64Packages())) {
    if (!existsSync(join(nm, name, "package.json"))) problems.push(`missing package ${name}`);
  }
  for (const f of nodeFiles) {
    const m = elfMachine(f);
    if (m !== 0xb7) problems.push(`${f} is not an aarch64 ELF shared object (e_machine ${m})`);
  }
  for (const name of Object.keys(arm64Packages()).filter((n) => /linux-arm64-gnu$/.test(n))) {
    if (!nodeFiles.some((f) => f.includes(`/${name}/`))) problems.push(`no .node file in ${name}`);
  }
  return { nodeFiles, problems };
}

const isMain = process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const i = process.argv.indexOf("--out");
  const out = i > 0 ? resolve(process.argv[i + 1]) : DEFAULT_LAYER_DIR;
  if (!process.argv.includes("--check")) buildLayer(out);
  const { nodeFiles, problems } = checkLayer(out);
  for (const f of nodeFiles) process.stdout.write(`${f}\n`);
  if (problems.length) {
    process.stderr.write(`layer check failed:\n  ${problems.join("\n  ")}\n`);
    process.exit(1);
  }
  process.stdout.write(`layer ok: ${out}\n`);
}
