import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import type { Command } from "commander";
import { ConfigError, FerryError, InputError } from "../../core/errors.js";
import { fileSink, SstReader, SstWriter } from "../../core/sst/index.js";
import { checkCompression } from "../../core/sst/codecs.js";

/** `ferry sst build|inspect|verify|get|scan` — docs/cli.md, docs/sst.md. No AWS involved. */

type Encoding = "utf8" | "hex" | "base64";

function checkEncoding(e: string | undefined): Encoding {
  const v = e ?? "utf8";
  if (v !== "utf8" && v !== "hex" && v !== "base64") {
    throw new ConfigError(`unknown encoding '${v}' (expected utf8, hex or base64)`, { field: "encoding" });
  }
  return v;
}

/** Decodes a string in `enc`; throws InputError naming `where` when it is not valid in that encoding. */
export function decodeBytes(s: string, enc: Encoding, where: string): Uint8Array {
  if (enc === "utf8") return Buffer.from(s, "utf8");
  if (enc === "hex") {
    if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) throw new InputError(`${where}: not valid hex`);
    return Buffer.from(s, "hex");
  }
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 === 1) throw new InputError(`${where}: not valid base64`);
  return Buffer.from(s, "base64");
}

function encodeBytes(b: Uint8Array, enc: Encoding): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString(enc);
}

function intOption(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new ConfigError(`--${name} must be a non-negative integer, got '${v}'`, { field: name });
  return n;
}

async function* jsonlRecords(file: string, enc: Encoding): AsyncGenerator<[Uint8Array, Uint8Array, number]> {
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY });
  let line = 0;
  for await (const text of rl) {
    line++;
    if (text.trim() === "") continue;
    let rec: unknown;
    try {
      rec = JSON.parse(text);
    } catch (e) {
      throw new InputError(`${file} line ${line}: not valid JSON (${e instanceof Error ? e.message : String(e)})`, {
        source: file,
        line,
      });
    }
    if (typeof rec !== "object" || rec === null || Array.isArray(rec)) {
      throw new InputError(`${file} line ${line}: expected an object {"key": ..., "value": ...}`, {
        source: file,
        line,
      });
    }
    const r = rec as Record<string, unknown>;
    for (const f of ["key", "value"]) {
      if (typeof r[f] !== "string") {
        throw new InputError(`${file} line ${line}: field '${f}' must be a string`, { source: file, line, field: f });
      }
    }
    const key = decodeBytes(r.key as string, enc, `${file} line ${line}: field 'key'`);
    const value = decodeBytes(r.value as string, enc, `${file} line ${line}: field 'value'`);
    yield [key, value, line];
  }
}

export function registerSst(program: Command): void {
  const sst = program.command("sst").description("RocksDB SST files: build, inspect, verify, get, scan (no AWS)");

  sst
    .command("build")
    .description('build an SST from JSONL lines {"key": "...", "value": "..."}')
    .argument("<in>", "input JSONL file")
    .requiredOption("-o, --out <file>", "output SST file")
    .option("--encoding <enc>", "encoding of keys and values: utf8|hex|base64", "utf8")
    .option("--compression <codec>", "none|snappy|lz4|zstd", "none")
    .option("--bloom-bits <n>", "bloom filter bits per key (0 = no filter)")
    .option("--block-size <bytes>", "target data block size")
    .option("--sort", "sort the input in memory first (otherwise keys must already ascend)")
    .action(
      async (
        input: string,
        o: {
          out: string;
          encoding?: string;
          compression?: string;
          bloomBits?: string;
          blockSize?: string;
          sort?: boolean;
        },
      ) => {
        const enc = checkEncoding(o.encoding);
        const compression = checkCompression(o.compression);
        const bloomBitsPerKey = intOption(o.bloomBits, "bloom-bits");
        const blockSize = intOption(o.blockSize, "block-size");
        const w = new SstWriter(fileSink(o.out), { compression, bloomBitsPerKey, blockSize, name: o.out });
        try {
          if (o.sort) {
            const recs: Array<[Uint8Array, Uint8Array, number]> = [];
            for await (const r of jsonlRecords(input, enc)) recs.push(r);
            recs.sort((a, b) => Buffer.compare(a[0], b[0]));
            for (let i = 1; i < recs.length; i++) {
              if (Buffer.compare(recs[i - 1][0], recs[i][0]) === 0) {
                throw new InputError(
                  `${input}: duplicate key ${JSON.stringify(encodeBytes(recs[i][0], enc))} on lines ${Math.min(recs[i - 1][2], recs[i][2])} and ${Math.max(recs[i - 1][2], recs[i][2])}`,
                  { source: input, line: recs[i][2] },
                );
              }
            }
            for (const [k, v] of recs) {
              const p = w.add(k, v);
              if (p) await p;
            }
          } else {
            for await (const [k, v, line] of jsonlRecords(input, enc)) {
              try {
                const p = w.add(k, v);
                if (p) await p;
              } catch (e) {
                if (e instanceof FerryError && e.code === "INPUT") {
                  throw new InputError(`${input} line ${line}: ${e.message} (use --sort to sort the input)`, {
                    source: input,
                    line,
                  });
                }
                throw e;
              }
            }
          }
          if (w.entryCount === 0)
            throw new InputError(`${input}: no records: RocksDB rejects empty SST files`, { source: input });
          const info = await w.finish();
          process.stdout.write(
            `${JSON.stringify({
              file: o.out,
              entries: info.entries,
              bytes: info.bytes,
              sha256: info.sha256,
              smallestKey: encodeBytes(info.smallestKey, enc),
              largestKey: encodeBytes(info.largestKey, enc),
            })}\n`,
          );
        } catch (e) {
          await w.abort(e);
          throw e;
        }
      },
    );

  sst
    .command("inspect")
    .description("properties, block counts, key range")
    .argument("<file>")
    .option("--json", "one JSON object")
    .action(async (file: string, o: { json?: boolean }) => {
      const r = await SstReader.open(file);
      try {
        const d = r.describe();
        const printable = (b: unknown) => {
          const u = b as Uint8Array;
          const s = Buffer.from(u).toString("utf8");
          return /^[\x20-\x7e]*$/.test(s) ? s : `0x${Buffer.from(u).toString("hex")}`;
        };
        const out = { ...d, smallestKey: printable(d.smallestKey), largestKey: printable(d.largestKey) };
        if (o.json) {
          process.stdout.write(`${JSON.stringify(out)}\n`);
        } else {
          for (const [k, v] of Object.entries(out)) {
            if (k === "properties") continue;
            process.stdout.write(`${k}: ${Array.isArray(v) ? v.join(", ") : String(v)}\n`);
          }
          process.stdout.write("properties:\n");
          for (const [k, v] of Object.entries(r.properties)) process.stdout.write(`  ${k} = ${String(v)}\n`);
        }
      } finally {
        await r.close();
      }
    });

  sst
    .command("verify")
    .description("check every block checksum; exit 1 naming the first bad block")
    .argument("<file>")
    .action(async (file: string) => {
      const r = await SstReader.open(file);
      try {
        const v = await r.verify();
        process.stdout.write(`${file}: ok (${v.blocks} blocks, ${v.entries} entries)\n`);
      } finally {
        await r.close();
      }
    });

  sst
    .command("get")
    .description("print the value of KEY; exit 1 + 'not found' if absent")
    .argument("<file>")
    .argument("<key>")
    .option("--encoding <enc>", "encoding of KEY and of the printed value: utf8|hex|base64", "utf8")
    .action(async (file: string, key: string, o: { encoding?: string }) => {
      const enc = checkEncoding(o.encoding);
      const k = decodeBytes(key, enc, "KEY");
      const r = await SstReader.open(file);
      try {
        const v = await r.get(k);
        if (v === undefined) {
          process.stderr.write("not found\n");
          process.exitCode = 1;
          return;
        }
        process.stdout.write(`${encodeBytes(v, enc)}\n`);
      } finally {
        await r.close();
      }
    });

  sst
    .command("scan")
    .description('one JSON line {"key","value"} per entry')
    .argument("<file>")
    .option("--from <key>", "first key (inclusive)")
    .option("--to <key>", "end key (exclusive)")
    .option("--limit <n>", "at most N entries")
    .option("--encoding <enc>", "encoding of keys, values and bounds: utf8|hex|base64", "utf8")
    .action(async (file: string, o: { from?: string; to?: string; limit?: string; encoding?: string }) => {
      const enc = checkEncoding(o.encoding);
      const from = o.from === undefined ? undefined : decodeBytes(o.from, enc, "--from");
      const to = o.to === undefined ? undefined : decodeBytes(o.to, enc, "--to");
      const limit = intOption(o.limit, "limit");
      const r = await SstReader.open(file);
      try {
        let buf = "";
        for await (const [k, v] of r.scan({ from, to, limit })) {
          buf += `${JSON.stringify({ key: encodeBytes(k, enc), value: encodeBytes(v, enc) })}\n`;
          if (buf.length > 1 << 16) {
            process.stdout.write(buf);
            buf = "";
          }
        }
        process.stdout.write(buf);
      } finally {
        await r.close();
      }
    });
}
