/**
 * The document rules of verify-tree (client-protocol §5, §11), the armour check that decides
 * which file a failed signature blames, and check-latest's output (server-reference §9.11).
 */
import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Image, IndexDoc } from "../../src/model/index-doc.js";
import { armorDamage, crc24 } from "../../src/verify/armor.js";
import { checkLatestLines, longVersion } from "../../src/verify/check-latest.js";
import { checkChannels, checkIndex, generatedAtProblem } from "../../src/verify/documents.js";

const file = (path: string, extra: Record<string, unknown> = {}) => ({
  path,
  signature: `${path}.asc`,
  checksum: "a".repeat(64),
  size: 10,
  order: 0,
  ...extra,
});
const index = (images: unknown[], generated_at = "Sun Nov 29 05:43:07 UTC 2026") => JSON.stringify({ global: { generated_at }, images });
const messages = (r: { findings: { error: boolean; message: string }[] }) => r.findings.map((f) => `${f.error ? "E" : "W"} ${f.message}`);

describe("checkIndex", () => {
  it("accepts what the reference writes", () => {
    const r = checkIndex(
      index([
        { type: "full", version: 1, files: [file("/pool/a.tar.xz")] },
        { type: "delta", base: 1, version: 2, files: [file("/pool/b.tar.xz")] },
      ]),
    );
    expect(messages(r)).toEqual([]);
    expect(r.doc!.images).toHaveLength(2);
  });

  it("refuses generated_at that the client cannot parse", () => {
    expect(generatedAtProblem("Sun Nov 29 05:43:07 UTC 2026")).toBeNull();
    for (const bad of [
      "2026-11-29T05:43:07Z",
      "Sun Nov 29 05:43:07 CET 2026",
      "dim. nov. 29 05:43:07 UTC 2026",
      "Sun Nov 29 25:43:07 UTC 2026",
      undefined,
    ]) {
      expect(generatedAtProblem(bad)).not.toBeNull();
    }
  });

  it("names each broken image and file field", () => {
    const r = checkIndex(
      index([
        { type: "full", version: 70000, files: [] },
        { type: "delta", version: 3, files: [] },
        { type: "incremental", version: 4, files: [] },
        { type: "full", version: 5, "phased-percentage": 101, bootme: "yes", files: [] },
        {
          type: "full",
          version: 6,
          files: [
            file("//pool/a.tar.xz"),
            file("pool/b.tar.xz"),
            file("/pool/c.tar.xz", { signature: "/pool/c.sig" }),
            file("/pool/d.tar.xz", { checksum: "A".repeat(64), size: -1, order: "0" }),
          ],
        },
      ]),
    );
    expect(messages(r)).toEqual([
      "E image #0 version 70000 is not an integer 1..65535 (client: 16 bit unsigned version numbers only)",
      "E image #1 (delta) base undefined is not an integer 1..65535",
      'E image #2 type "incremental" is neither "full" nor "delta" (the client asserts)',
      "E image #3 bootme is not a boolean",
      "E image #3 phased-percentage 101 is not an integer 0..100",
      'E image #4 (version 6) file #0 path //pool/a.tar.xz starts with "//": urljoin turns it into a host name',
      'E image #4 (version 6) file #1 path pool/b.tar.xz is relative: other flashing tools concatenate it to the server URL, so start it with "/"',
      'E image #4 (version 6) file #2 signature "/pool/c.sig" is not path + ".asc" (the recovery runs gpg --verify c.tar.xz.asc)',
      'E image #4 (version 6) file #3 checksum "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" is not a lowercase SHA-256 hex',
      "E image #4 (version 6) file #3 size -1 is not a byte count",
      'E image #4 (version 6) file #3 order "0" is not an integer',
    ]);
  });

  it("finds two URLs with one basename along an upgrade path, and images listed twice", () => {
    const r = checkIndex(
      index([
        { type: "full", version: 1, files: [file("/pool/keyring.tar.xz")] },
        { type: "delta", base: 1, version: 2, files: [file("/devel/mako/keyring.tar.xz"), file("/pool/u.tar.xz", { order: 1 })] },
        { type: "full", version: 2, files: [file("/pool/u.tar.xz")] },
        { type: "full", version: 2, files: [file("/pool/u.tar.xz")] },
      ]),
    );
    expect(messages(r)).toEqual([
      "E full 2 is listed twice (the client keeps only one of them)",
      "E /pool/keyring.tar.xz and /devel/mako/keyring.tar.xz share the basename keyring.tar.xz along upgrade path 1:2 (client: DuplicateDestinationError)",
    ]);
    // The same URL twice along a path is fine: the client downloads it once.
    const same = checkIndex(
      index([
        { type: "full", version: 1, files: [file("/pool/k.tar.xz")] },
        { type: "delta", base: 1, version: 2, files: [file("/pool/k.tar.xz")] },
      ]),
    );
    expect(messages(same)).toEqual([]);
  });

  it("refuses a byte-order mark and broken JSON", () => {
    expect(messages(checkIndex("\ufeff" + index([])))).toEqual(["E starts with a byte-order mark: the client cannot parse it"]);
    expect(messages(checkIndex("{"))[0]).toMatch(/^E is not valid JSON/);
    expect(messages(checkIndex("{}"))).toEqual(['E needs a "global" object and an "images" list']);
  });
});

describe("checkChannels", () => {
  it("requires devices on every channel and well-formed device entries", () => {
    const r = checkChannels(
      JSON.stringify({
        good: {
          devices: {
            mako: {
              index: "/good/mako/index.json",
              keyring: { path: "/good/mako/device.tar.xz", signature: "/good/mako/device.tar.xz.asc" },
            },
          },
        },
        bare: { hidden: true },
        odd: {
          hidden: "yes",
          devices: { a: { index: "//odd/a/index.json" }, b: {}, c: { index: "/odd/c/index.json", keyring: { path: "/x" } } },
        },
        keys: { devices: {} },
      }),
    );
    expect(messages(r)).toEqual([
      'E channel "bare" has no "devices" object: the client fails with KeyError for every channel and device',
      'E channel "odd": "hidden" is "yes", not a boolean (the client asserts)',
      'E channel "odd" device "a": index //odd/a/index.json starts with "//": urljoin turns it into a host name',
      'E channel "odd" device "b" has no "index" path',
      'E channel "odd" device "c": "keyring" needs string "path" and "signature"',
      'W channel name "keys" shadows a method of the client\'s Bag class',
    ]);
    expect(Object.keys(r.doc!.good.devices)).toEqual(["mako"]);
  });
});

describe("armorDamage", () => {
  const gpgArmored = () => {
    const dir = mkdtempSync(join(tmpdir(), "si-armor-"));
    writeFileSync(join(dir, "x"), "data");
    execFileSync(
      "gpg",
      ["--homedir", dir, "--batch", "--passphrase", "", "--quick-gen-key", "t <t@example.com>", "rsa2048", "sign", "never"],
      { stdio: "ignore" },
    );
    execFileSync("gpg", ["--homedir", dir, "--batch", "--armor", "--detach-sign", join(dir, "x")], { stdio: "ignore" });
    execFileSync("gpgconf", ["--homedir", dir, "--kill", "gpg-agent"]); // the agent key generation started
    return readFileSync(join(dir, "x.asc"), "utf8");
  };

  it("computes CRC-24 as RFC 4880 does", () => {
    expect(crc24(new Uint8Array())).toBe(0xb704ce);
    expect(crc24(Buffer.from("123456789"))).toBe(0x21cf02);
  });

  it("accepts GnuPG's armour and finds any one changed byte in it", () => {
    const asc = gpgArmored();
    expect(armorDamage(asc)).toBeNull();
    for (let i = 0; i < asc.length; i++) {
      const changed = asc.slice(0, i) + String.fromCharCode(asc.charCodeAt(i) ^ 1) + asc.slice(i + 1);
      expect(armorDamage(changed), `byte ${i} of\n${asc}`).not.toBeNull();
    }
    // Without the checksum line the armour is still acceptable (RFC 4880 makes it optional).
    expect(armorDamage(asc.replace(/\n=[A-Za-z0-9+/]{4}\n/, "\n"))).toBeNull();
  });
});

describe("check-latest", () => {
  const img = (type: string, version: number, description: string, base?: number, paths: string[] = []): Image => ({
    type,
    version,
    base,
    description,
    files: paths.map((p) => file(p)),
  });

  it("prints the latest full and the deltas to it whose base full is present", () => {
    const doc: IndexDoc = {
      global: {},
      images: [
        img("full", 2, "tag=OTA-2,ubports=20260102,version=2"),
        img("full", 1, "ubports=20260101,version=1"),
        img("delta", 2, "delta", 1),
        img("delta", 2, "delta", 0),
      ],
    };
    expect(checkLatestLines(doc, "mako")).toEqual([
      "Current full image: 2 (tag=OTA-2, ubports=20260102)",
      "Available deltas:",
      " - From '1 (ubports=20260101)' to '2 (tag=OTA-2, ubports=20260102)'",
    ]);
    expect(checkLatestLines({ global: {}, images: [img("delta", 2, "", 1)] }, "mako")).toEqual(["No full image available in channel."]);
  });

  it("derives the long version from file names when the description has no version=", () => {
    const i = img("full", 7, "Full", undefined, [
      "/pool/ubuntu-20130506.full.tar.xz",
      "/pool/mako-20130505.tar.xz",
      "/pool/custom-3.delta.x.tar.xz",
      "/pool/other-1.tar.xz",
    ]);
    expect(longVersion(i, "mako")).toBe("7 (ubuntu=20130506, mako=20130505.tar.xz, custom=3)");
  });
});
