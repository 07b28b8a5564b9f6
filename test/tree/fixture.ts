/**
 * A real instance for tree tests: temp base dir, etc/config, the test keys, a Tree over its
 * publish_path; plus the checks every writing test ends with (real gpg on every .asc, no
 * temporaries left) and a whole-tree fingerprint for "nothing changed" assertions.
 */
import { createHash } from "node:crypto";
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import { expect } from "vitest";
import { loadConfig } from "../../src/config/load.js";
import type { Config } from "../../src/config/types.js";
import type { Clock } from "../../src/model/generated-at.js";
import { LocalSigner } from "../../src/pgp/local-signer.js";
import type { KeyName } from "../../src/pgp/signer.js";
import { openTree, type Tree, type OperationEvent } from "../../src/tree/index.js";
import { GpgHome } from "../helpers/gpg.js";
import { makeInstance, TEST_KEYS, type Instance } from "../helpers/instance.js";

export interface TreeFixture {
  inst: Instance;
  config: Config;
  signer: LocalSigner;
  tree: Tree;
  pub: string;
  events: OperationEvent[];
}

/**
 * The reference's layout, for the ports of its test cases: channels.json names each device's
 * `index.json` instead of a content-named copy (src/tree/versioned-index.ts).
 */
export const REFERENCE_LAYOUT = { extraConfig: "versioned_index = false\n" } as const;

export async function treeFixture(opts: { clock?: Clock; extraConfig?: string } = {}): Promise<TreeFixture> {
  const inst = makeInstance({ extraConfig: opts.extraConfig });
  const config = await loadConfig(inst.config);
  const signer = new LocalSigner(config.gpg_key_path);
  const events: OperationEvent[] = [];
  const tree = openTree(config, signer, { clock: opts.clock, onOperation: (e) => events.push(e) });
  return { inst, config, signer, tree, pub: config.publish_path, events };
}

/** A file (default empty) at `path` plus its signature by `key`. */
export async function signedFile(signer: LocalSigner, path: string, content: string | Buffer = "", key: KeyName = "image-signing") {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
  await signer.signFile(key, path);
  return path;
}

function walk(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    out.push(p);
    if (e.isDirectory()) walk(p, out);
  }
  return out;
}

/** path → content hash / "dir" / "-> target": equal maps mean a byte-identical tree. */
export function fingerprint(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of walk(root).sort()) {
    const st = lstatSync(p);
    const rel = relative(root, p);
    if (st.isDirectory()) out[rel] = "dir";
    else if (st.isSymbolicLink()) out[rel] = `-> ${readlinkSync(p)}`;
    else out[rel] = createHash("sha256").update(readFileSync(p)).digest("hex");
  }
  return out;
}

const homes = new Map<KeyName, GpgHome>();
function home(key: KeyName): GpgHome {
  let h = homes.get(key);
  if (!h) {
    h = new GpgHome().importKey(join(TEST_KEYS, key, "public.asc"));
    homes.set(key, h);
  }
  return h;
}

/** Who signs the published keyrings (server-reference §1.4); everything else: image-signing. */
const KEYRING_SIGNERS: Record<string, KeyName> = {
  "archive-master.tar.xz": "archive-master",
  "image-master.tar.xz": "archive-master",
  "image-signing.tar.xz": "image-master",
  "blacklist.tar.xz": "image-master",
};

/**
 * Every `.asc` under `root` verifies with real gpg against one public key only, and no
 * temporary file of a commit is left behind. Returns how many signatures were checked.
 */
export function verifyTree(root: string): number {
  let n = 0;
  for (const p of walk(root)) {
    expect(basename(p), `leftover temporary ${p}`).not.toMatch(/\.new-\d+-[0-9a-f]{8}$/);
    if (!p.endsWith(".asc") || lstatSync(p).isDirectory()) continue;
    const data = p.slice(0, -4);
    const inGpg = dirname(p) === join(root, "gpg");
    const key: KeyName = (inGpg && KEYRING_SIGNERS[basename(data)]) || "image-signing";
    const r = home(key).verify(p, data);
    expect(r.ok, `gpg --verify ${relative(root, p)} with ${key}:\n${r.output}\n${readFileSync(p, "utf8")}`).toBe(true);
    n++;
  }
  return n;
}

/** One detached signature `<file>.asc`, checked with gpg against image-signing only. */
export function verifySignature(file: string): void {
  const r = home("image-signing").verify(`${file}.asc`, file);
  expect(r.ok, `gpg --verify ${file}.asc:\n${r.output}`).toBe(true);
}

/** The error a promise rejects with (fails the test if it resolves). */
export async function rejection(p: Promise<unknown>): Promise<Error & { kind: string }> {
  try {
    await p;
  } catch (err) {
    return err as Error & { kind: string };
  }
  throw new Error("expected the operation to fail, but it succeeded");
}

export const readJson = (path: string) => JSON.parse(readFileSync(path, "utf8")) as unknown;

/**
 * The reference tests' "basic image": `<ch>/<dev>/full` (empty) and a version tarball with a
 * sidecar whose channel.ini.version_detail is "test", both signed; a full image 1234 of them
 * with phased percentage 50.
 */
export async function publishBasicImage(fx: TreeFixture, channel: string, device: string): Promise<void> {
  const { writeVersionTarball } = await import("../../src/tree/index.js");
  const dir = join(fx.pub, channel, device);
  await signedFile(fx.signer, join(dir, "full"));
  const version = join(dir, "version-1234.tar.xz");
  await writeVersionTarball(version, fx.config, { channel, device: "test", version: "1234" }, { signer: fx.signer });
  await signedFile(fx.signer, join(dir, "version-1234.json"), JSON.stringify({ "channel.ini": { version_detail: "test" } }));
  const dev = await fx.tree.get_device(channel, device);
  await dev.create_image("full", 1234, "abc", [`${channel}/${device}/full`, `${channel}/${device}/version-1234.tar.xz`]);
  await dev.set_phased_percentage(1234, 50);
}
