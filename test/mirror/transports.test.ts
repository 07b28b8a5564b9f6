/**
 * The engines behind a push (src/mirror/rsync.ts, rclone.ts), each against a real target on
 * 127.0.0.1: rsync over a real sshd with a generated key, rclone to a plain local directory and
 * to `rclone serve webdav` (read back over HTTP). Each copies exactly the listed files, reports
 * the bytes it sent, and removes exactly the listed paths.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { RcloneMirrorConfig, RsyncMirrorConfig } from "../../src/config/types.js";
import { rcloneTransport } from "../../src/mirror/rclone.js";
import { rsyncTransport } from "../../src/mirror/rsync.js";
import type { Transport } from "../../src/mirror/transport.js";
import { startRcloneWebdav, startSshd, type RunningRclone, type RunningSshd } from "../helpers/mirror-servers.js";
import { tmp } from "../importer/fixtures.js";

/** A small tree: two pool files (one 200 kB of random bytes), a document pair, one file not listed. */
function makeTree(): string {
  const root = tmp("si-transport-src-");
  mkdirSync(join(root, "pool"), { recursive: true });
  mkdirSync(join(root, "devel/mako"), { recursive: true });
  writeFileSync(join(root, "pool/big.tar.xz"), randomBytes(200_000));
  writeFileSync(join(root, "pool/big.tar.xz.asc"), "sig of big\n");
  writeFileSync(join(root, "devel/mako/index.json"), '{"images": []}\n');
  writeFileSync(join(root, "devel/mako/index.json.asc"), "sig of index\n");
  writeFileSync(join(root, "unlisted.txt"), "not part of the phase\n");
  utimesSync(join(root, "pool/big.tar.xz"), 1_700_000_000, 1_700_000_000);
  return root;
}

const LISTED = ["pool/big.tar.xz", "pool/big.tar.xz.asc", "devel/mako/index.json", "devel/mako/index.json.asc"];

/** The same checks for every engine; `read` fetches a file back from the target (null: absent). */
function transportContract(name: string, setup: () => Promise<{ transport: Transport; read: (p: string) => Promise<Buffer | null> }>) {
  it(`${name}: copies exactly the listed files, reports the bytes, removes exactly the listed paths`, async () => {
    const { transport, read } = await setup();
    const root = makeTree();
    const first = await transport.pushPhase(LISTED, root);
    for (const p of LISTED) expect((await read(p))?.equals(readFileSync(join(root, p))), p).toBe(true);
    expect(await read("unlisted.txt")).toBeNull();
    // The engine's count covers at least the random (incompressible) pool file.
    expect(first.bytes).toBeGreaterThanOrEqual(200_000);

    // A rewritten document of the same size is sent again (the plan chose it).
    writeFileSync(join(root, "devel/mako/index.json"), '{"images": [1]}\n'.slice(0, 15) + "\n");
    const again = await transport.pushPhase(["devel/mako/index.json"], root);
    expect((await read("devel/mako/index.json"))?.toString()).toBe(readFileSync(join(root, "devel/mako/index.json"), "utf8"));
    expect(again.bytes).toBeLessThan(100_000);

    // Removal: only the listed path goes; a file on the mirror we never listed stays.
    const other = tmp("si-transport-other-");
    mkdirSync(join(other, "pool"));
    writeFileSync(join(other, "pool/operator-file.txt"), "put there by someone else\n");
    await transport.pushPhase(["pool/operator-file.txt"], other);
    await transport.remove(["pool/big.tar.xz.asc", "pool/never-there.tar.xz"]);
    expect(await read("pool/big.tar.xz.asc")).toBeNull();
    expect(await read("pool/big.tar.xz")).not.toBeNull();
    expect(await read("pool/operator-file.txt")).not.toBeNull();
    expect(await read("devel/mako/index.json.asc")).not.toBeNull();
  });
}

const readLocal = (dir: string) => async (p: string) => (existsSync(join(dir, p)) ? readFileSync(join(dir, p)) : null);

describe("rclone transport", () => {
  let webdav: RunningRclone;
  let served: string;
  beforeAll(async () => {
    served = tmp("si-rclone-served-");
    webdav = await startRcloneWebdav(served);
  });
  afterAll(async () => webdav?.stop());

  transportContract("rclone to a local directory", async () => {
    const dir = join(tmp("si-rclone-local-"), "mirror");
    const m: RcloneMirrorConfig = { name: "local", type: "rclone", remote: dir };
    return { transport: rcloneTransport(m, { connectTimeout: 5 }), read: readLocal(dir) };
  });

  transportContract("rclone to WebDAV (rclone serve webdav), read back over HTTP", async () => {
    const sub = `t${randomBytes(3).toString("hex")}`;
    const m: RcloneMirrorConfig = { name: "dav", type: "rclone", remote: `${webdav.remote}${sub}`, rclone_config: webdav.configFile };
    const read = async (p: string) => {
      const res = await fetch(`${webdav.url}${sub}/${p}`);
      return res.status === 200 ? Buffer.from(await res.arrayBuffer()) : null;
    };
    return { transport: rcloneTransport(m, { connectTimeout: 5 }), read };
  });

  it("a remote that cannot be reached fails with rclone's own reason, in one line", async () => {
    const conf = join(tmp("si-rclone-bad-"), "rclone.conf");
    writeFileSync(conf, "[gone]\ntype = webdav\nurl = http://127.0.0.1:9/\nvendor = other\n");
    const t = rcloneTransport({ name: "gone", type: "rclone", remote: "gone:x", rclone_config: conf }, { connectTimeout: 2 });
    await expect(t.pushPhase(LISTED, makeTree())).rejects.toThrow(/^rclone exited with status \d+: .*(refused|connect)/);
  });
});

describe("rsync transport over a real sshd", () => {
  let sshd: RunningSshd;
  let base: string;
  beforeAll(async () => {
    base = tmp("si-rsync-");
    sshd = await startSshd(join(base, "sshd"));
  });
  afterAll(async () => sshd?.stop());

  const mirror = (dir: string, over: Partial<RsyncMirrorConfig> = {}): RsyncMirrorConfig => ({
    name: "r",
    type: "rsync",
    target: `${sshd.user}@127.0.0.1:${dir}`,
    ssh_key: sshd.clientKey,
    ssh_port: sshd.port,
    ssh_known_hosts: sshd.knownHostsFile,
    ...over,
  });

  transportContract("rsync over ssh", async () => {
    const dir = join(tmp("si-rsync-target-"), "mirror");
    const root = tmp("si-rsync-live-"); // removals run from the live tree, where the files are gone
    return { transport: rsyncTransport(mirror(dir), { connectTimeout: 5, liveRoot: root }), read: readLocal(dir) };
  });

  it("keeps the mtimes, leaves no temporary directory, and refuses an unknown host key", async () => {
    const dir = join(tmp("si-rsync-target-"), "mirror");
    const root = makeTree();
    await rsyncTransport(mirror(dir), { connectTimeout: 5, liveRoot: root }).pushPhase(["pool/big.tar.xz"], root);
    expect(Math.floor(readFileSync(join(dir, "pool/big.tar.xz")).length)).toBe(200_000);
    const { statSync, readdirSync } = await import("node:fs");
    expect(statSync(join(dir, "pool/big.tar.xz")).mtimeMs).toBe(1_700_000_000_000);
    expect(readdirSync(join(dir, "pool"))).toEqual(["big.tar.xz"]); // no .~tmp~ left behind
    const empty = join(base, "empty_known_hosts");
    writeFileSync(empty, "");
    const strict = rsyncTransport(mirror(dir, { ssh_known_hosts: empty }), { connectTimeout: 5, liveRoot: root });
    await expect(strict.pushPhase(["pool/big.tar.xz.asc"], root)).rejects.toThrow(
      /^rsync exited with status 255: .*(Host key verification failed|connection unexpectedly closed)/,
    );
  });
});
