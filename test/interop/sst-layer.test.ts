/**
 * The Lambda layer of native codecs (layers/codecs): built with npm for linux-arm64 (registry access needed), then
 * checked: every codec package present, every .node an aarch64 ELF object, one per binary package.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  arm64Packages,
  buildLayer,
  CODEC_PACKAGES,
  checkLayer,
  DEFAULT_LAYER_DIR,
  elfMachine,
} from "../../layers/codecs/build.js";

describe("codec layer (linux-arm64)", () => {
  it("names a linux-arm64-gnu binary package for every codec wrapper", () => {
    const pk = arm64Packages();
    for (const name of CODEC_PACKAGES) expect(pk[name]).toMatch(/^\d+\.\d+\.\d+/);
    expect(Object.keys(pk).filter((n) => n.endsWith("linux-arm64-gnu"))).toHaveLength(CODEC_PACKAGES.length);
  });

  it("tells aarch64 from x86-64 binaries", () => {
    const local = join(import.meta.dirname, "../../node_modules/@node-rs/crc32-linux-x64-gnu/crc32.linux-x64-gnu.node");
    if (existsSync(local)) expect(elfMachine(local)).toBe(0x3e);
    expect(elfMachine(join(import.meta.dirname, "../../package.json"))).toBeUndefined();
  });

  it("holds aarch64 .node files for every codec package", () => {
    if (!existsSync(join(DEFAULT_LAYER_DIR, "nodejs", "node_modules"))) buildLayer(DEFAULT_LAYER_DIR);
    const { nodeFiles, problems } = checkLayer(DEFAULT_LAYER_DIR);
    expect(problems).toEqual([]);
    expect(nodeFiles.length).toBeGreaterThanOrEqual(CODEC_PACKAGES.length);
    for (const f of nodeFiles) {
      const b = readFileSync(f);
      expect(b.readUInt16LE(18)).toBe(0xb7);
    }
  }, 600_000);
});
