/**
 * `si verify-tree --server URL`: a mirror checked as a device would see it. The tree is a
 * real one made by `si import-images` (full 1, full 2, delta 2←1, signed by the test keys);
 * each test copies it to a mirror directory, damages the copy in one way, and serves it
 * over real HTTPS (node:https, self-signed certificate made by openssl) on 127.0.0.1.
 * Run: `npx vitest run test/verify/remote.test.ts`.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { cpSync, createReadStream, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, normalize } from "node:path";
import type { IndexDoc } from "../../src/model/index-doc.js";
import { formatGeneratedAt } from "../../src/model/generated-at.js";
import { LocalSigner } from "../../src/pgp/local-signer.js";
import { ensureSelfSignedCertificate } from "../../src/server/tls.js";
import { versionedIndexName } from "../../src/tree/versioned-index.js";
import { formatRemoteReport, verifyRemoteTree, type RemoteReport } from "../../src/verify/remote.js";
import { parseGeneratedAt } from "../../src/verify/remote-lag.js";
import { runSiAsync } from "../helpers/instance.js";
import { buildImportedTree, type ImportedTree } from "../e2e/tree-fixture.js";

let t: ImportedTree;
const dir = mkdtempSync(join(tmpdir(), "si-verify-remote-"));
const cert = join(dir, "tls/cert.pem");
/** What the server serves: reset to a fresh copy of the published tree before each test. */
const mirror = join(dir, "mirror");
/** Extra answers by URL path: a status (for one method only, when given), or a body without end. */
type Route = { status: number; location?: string; method?: string } | { endless: true };
const routes = new Map<string, Route>();
let server: Server;
let url = "";

/** A static file server: GET and HEAD, Content-Length, 404; nothing else. */
function serve(): Server {
  return createServer({ cert: readFileSync(cert), key: readFileSync(join(dir, "tls/key.pem")) }, (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "https://x").pathname);
    const route = routes.get(path);
    if (route && "endless" in route) {
      // A hostile server: no Content-Length, and bytes for as long as anyone reads them.
      res.writeHead(200);
      if (req.method === "HEAD") return void res.end(); // (a HEAD response's write() drops bytes and never pushes back)
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const more = () => {
        while (!res.destroyed && res.write(chunk));
      };
      res.on("drain", more);
      return more();
    }
    if (route && (!route.method || route.method === req.method))
      return void res.writeHead(route.status, route.location ? { location: route.location } : {}).end();
    const file = join(mirror, normalize(path));
    let size: number;
    try {
      const s = statSync(file);
      if (!s.isFile()) throw new Error("not a file");
      size = s.size;
    } catch {
      return void res.writeHead(404, { "content-length": "0" }).end();
    }
    res.writeHead(200, { "content-length": String(size) });
    if (req.method === "HEAD") return void res.end();
    createReadStream(file).pipe(res);
  });
}

const verify = (opts: { deep?: boolean; ca?: string | null; config?: ImportedTree["config"] } = {}) =>
  verifyRemoteTree({ url, config: opts.config ?? t.config, ca: opts.ca === null ? undefined : (opts.ca ?? cert), deep: opts.deep });

const channels = (root: string) =>
  JSON.parse(readFileSync(join(root, "channels.json"), "utf8")) as Record<string, { devices: Record<string, { index: string }> }>;
/** The index devel/mako's devices read (content-named: src/tree/versioned-index.ts), host-absolute. */
const namedIndex = (root: string) => channels(root).devel.devices.mako.index;
const indexDoc = (root: string) => JSON.parse(readFileSync(join(root, namedIndex(root)), "utf8")) as IndexDoc;
/** A listed file of each kind: the biggest full-image pool file. */
const poolFile = (root: string) =>
  indexDoc(root)
    .images.flatMap((i) => i.files)
    .filter((f) => f.path.startsWith("/pool/"))
    .sort((a, b) => b.size - a.size)[0];

/**
 * Rewrites devel/mako's index in `root` as a commit would: a new content-named copy (and
 * index.json), signed, and channels.json naming it, signed.
 */
async function rewriteIndex(root: string, mutate: (doc: IndexDoc) => void): Promise<void> {
  const signer = new LocalSigner(t.inst.keys);
  const doc = indexDoc(root);
  mutate(doc);
  const bytes = Buffer.from(JSON.stringify(doc, null, 4) + "\n");
  const devDir = "/devel/mako";
  const named = `${devDir}/${versionedIndexName(bytes)}`;
  for (const p of [named, `${devDir}/index.json`]) {
    writeFileSync(join(root, p), bytes);
    await signer.signFile("image-signing", join(root, p));
  }
  const ch = channels(root);
  ch.devel.devices.mako.index = named;
  writeFileSync(join(root, "channels.json"), JSON.stringify(ch, null, 4) + "\n");
  await signer.signFile("image-signing", join(root, "channels.json"));
}

const shiftGeneratedAt = (seconds: number) => (doc: IndexDoc) => {
  const at = parseGeneratedAt(doc.global.generated_at)!;
  doc.global.generated_at = formatGeneratedAt(new Date((at + seconds) * 1000));
};

const expectOnly = (r: RemoteReport, problems: (string | RegExp)[]) => {
  expect(r.problems, formatRemoteReport(r).join("\n")).toHaveLength(problems.length);
  problems.forEach((p, i) => expect(r.problems[i]).toMatch(p));
  expect(r.ok).toBe(problems.length === 0);
};

beforeAll(async () => {
  t = await buildImportedTree();
  await ensureSelfSignedCertificate(cert, join(dir, "tls/key.pem"), ["127.0.0.1"]);
  server = serve();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}, 120_000);

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  rmSync(mirror, { recursive: true, force: true });
  cpSync(t.inst.publish, mirror, { recursive: true });
  routes.clear();
});

describe("si verify-tree --server", () => {
  it("passes a complete mirror, by HEAD and with --deep, and says what it checked", async () => {
    const listed = new Map(indexDoc(mirror).images.flatMap((i) => i.files.map((f) => [f.path, f.size] as const)));
    const bytes = [...listed.values()].reduce((a, b) => a + b, 0);
    for (const deep of [false, true]) {
      const r = await verify({ deep });
      expectOnly(r, []);
      expect(r.warnings).toEqual([]);
      expect(r).toMatchObject({ lagSeconds: 0, checkedFiles: listed.size, bytes });
      expect(formatRemoteReport(r).at(-1)).toBe(
        `OK: 0 errors, 0 warnings; ${listed.size} files (${bytes} bytes) checked ${deep ? "with sha256 and signatures" : "by HEAD"} on ${url}; lag 0 s`,
      );
    }
  });

  it("names a pool file that is missing", async () => {
    const f = poolFile(mirror);
    rmSync(join(mirror, f.path));
    expectOnly(await verify(), [
      `${url}${f.path.slice(1)}: missing (HTTP 404): listed by devel/mako/${namedIndex(mirror).split("/").pop()}`,
    ]);
  });

  it("names a truncated file by its size, and its broken hash and signature with --deep", async () => {
    const f = poolFile(mirror);
    truncateSync(join(mirror, f.path), f.size - 100);
    const at = `${url}${f.path.slice(1)}`;
    const index = `devel/mako/${namedIndex(mirror).split("/").pop()}`;
    expectOnly(await verify(), [`${at}: is ${f.size - 100} bytes (Content-Length), ${index} says ${f.size}`]);
    const deep = await verify({ deep: true });
    expect(deep.problems).toContain(`${at}: is ${f.size - 100} bytes, ${index} says ${f.size}`);
    expect(deep.problems).toContain(`${at}: does not match its signature ${f.signature}: the file changed after it was signed`);
    expect(deep.problems.some((p) => p.startsWith(`${at}: sha256 `) && p.includes(`differs from the checksum ${f.checksum}`))).toBe(true);
  });

  it("finds a same-size corrupted file only with --deep", async () => {
    const f = poolFile(mirror);
    const data = readFileSync(join(mirror, f.path));
    data[data.length >> 1] ^= 0xff;
    writeFileSync(join(mirror, f.path), data);
    expectOnly(await verify(), []);
    const at = `${url}${f.path.slice(1)}`;
    expectOnly(await verify({ deep: true }), [
      `${at}: does not match its signature ${f.signature}: the file changed after it was signed`,
      new RegExp(
        `^${at.replace(/[.?]/g, "\\$&")}: sha256 [0-9a-f]{64} differs from the checksum ${f.checksum} in devel/mako/index-[0-9a-f]{16}\\.json: devices reject it \\(HASH ERROR\\)$`,
      ),
    ]);
  });

  it("reports a mirror whose channels.json is older as behind, in seconds; newer is fine", async () => {
    await rewriteIndex(mirror, shiftGeneratedAt(-3600));
    const stale = await verify();
    expectOnly(stale, [new RegExp(`^${url}channels\\.json: behind the local tree by 3600 s \\(devel/mako: generated_at `)]);
    expect(stale.lagSeconds).toBe(3600);

    rmSync(mirror, { recursive: true, force: true });
    cpSync(t.inst.publish, mirror, { recursive: true });
    await rewriteIndex(mirror, shiftGeneratedAt(+60));
    const ahead = await verify();
    expectOnly(ahead, []);
    expect(ahead.lagSeconds).toBe(0);
  });

  it("names a damaged signature: a document's without --deep, a pool file's with it", async () => {
    const index = namedIndex(mirror);
    const f = poolFile(mirror);
    for (const asc of [`${index}.asc`, f.signature]) {
      const text = readFileSync(join(mirror, asc), "utf8").split("\n");
      const i = text.findIndex((l) => l.length > 40);
      text[i] = text[i].slice(0, 5) + (text[i][5] === "A" ? "B" : "A") + text[i].slice(6);
      writeFileSync(join(mirror, asc), text.join("\n"));
    }
    expectOnly(await verify(), [
      `${url}${index.slice(1)}.asc: damaged signature of ${index.slice(1)}: its CRC-24 checksum does not match its data`,
    ]);
    // Not trusted, so its files are not checked: restore the index's signature to see the pool file's.
    cpSync(join(t.inst.publish, `${index}.asc`), join(mirror, `${index}.asc`));
    expectOnly(await verify({ deep: true }), [
      `${url}${f.signature.slice(1)}: damaged signature of ${f.path}: its CRC-24 checksum does not match its data`,
    ]);
  });

  it("refuses a keyring signed by a key outside the chain", async () => {
    // image-signing must be signed by image-master (client-protocol §4.1): sign it with itself.
    await new LocalSigner(t.inst.keys).signFile("image-signing", join(mirror, "gpg/image-signing.tar.xz"));
    expectOnly(await verify(), [
      new RegExp(
        `^${url}gpg/image-signing\\.tar\\.xz\\.asc: is not a valid signature of gpg/image-signing\\.tar\\.xz by image-master: signed by [0-9a-f]{40}, which is not in the trusted keyring$`,
      ),
    ]);
  });

  it("fails clearly on a certificate it does not trust, and passes with --ca", async () => {
    const r = await verify({ ca: null });
    expectOnly(r, [new RegExp(`^${url}channels\\.json: TLS certificate not trusted \\(.*\\): give --ca FILE to trust its CA$`)]);
    expect(r.lagSeconds).toBeNull();
  });

  it("follows a redirect within the mirror, not one to another origin", async () => {
    const f = poolFile(mirror);
    cpSync(join(mirror, f.path), join(mirror, "moved.bin"));
    routes.set(f.path, { status: 301, location: "/moved.bin" });
    expectOnly(await verify({ deep: true }), []);
    routes.set(f.path, { status: 302, location: `https://other.example.net${f.path}` });
    expectOnly(await verify(), [
      `${url}${f.path.slice(1)}: cannot be fetched (HTTP 302 redirects to another origin (https://other.example.net${f.path}): not followed): listed by devel/mako/${namedIndex(mirror).split("/").pop()}; devices stop there`,
    ]);
  });

  it("does not hold more of a document than the cap, declared or not", async () => {
    writeFileSync(join(mirror, "channels.json"), Buffer.alloc(17 << 20, 0x20));
    expectOnly(await verify(), [`${url}channels.json: GET failed (${17 << 20} bytes is more than the cap of ${16 << 20} for a document)`]);
    routes.set("/channels.json", { endless: true });
    expectOnly(await verify(), [`${url}channels.json: GET failed (body is larger than the cap of ${16 << 20} bytes for a document)`]);
  });

  it("stops when aborted", async () => {
    await expect(
      verifyRemoteTree({ url, config: t.config, ca: cert, signal: AbortSignal.abort(new Error("push timed out")) }),
    ).rejects.toThrow("push timed out");
  });

  it("fails a server that answers GET but not HEAD, as devices fail", async () => {
    routes.set("/gpg/image-master.tar.xz", { status: 405, method: "HEAD" });
    expectOnly(await verify(), [`${url}gpg/image-master.tar.xz: HEAD failed (HTTP 405): devices HEAD every URL first and stop there`]);
  });

  it("runs from the CLI: exit 0 on a good mirror, 1 with one line per problem", async () => {
    const ok = await runSiAsync(["--config", t.inst.config, "verify-tree", "--server", url, "--ca", cert]);
    expect(ok.stderr).toBe("");
    expect(ok.status, ok.stdout).toBe(0);
    expect(ok.stdout).toMatch(new RegExp(`^OK: 0 errors, 0 warnings; \\d+ files \\(\\d+ bytes\\) checked by HEAD on ${url}; lag 0 s\\n$`));
    const f = poolFile(mirror);
    rmSync(join(mirror, f.path));
    const bad = await runSiAsync(["--config", t.inst.config, "verify-tree", "--server", url, "--ca", cert, "--deep"]);
    expect(bad.status, bad.stdout + bad.stderr).toBe(1);
    const lines = bad.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(`error: ${url}${f.path.slice(1)}: missing (HTTP 404)`);
    expect(lines.at(-1)).toMatch(/^FAILED: 1 error, 0 warnings; /);
    const usage = await runSiAsync(["--config", t.inst.config, "verify-tree", "--deep"]);
    expect(usage.status).not.toBe(0);
    expect(usage.stderr).toMatch("--ca and --deep need --server URL");
    // A --ca that holds no certificate (a key given by mistake) is named, not silently ignored.
    const notPem = await runSiAsync(["--config", t.inst.config, "verify-tree", "--server", url, "--ca", t.inst.config]);
    expect(notPem).toMatchObject({
      status: 1,
      stderr: `si: error: Cannot read CA file '${t.inst.config}': no PEM certificate in it\n`,
    });
  });
});
