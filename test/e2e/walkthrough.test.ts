/**
 * Issue 15 "done when": the README's operator walkthrough, run literally on a fresh
 * directory with a local build server on 127.0.0.1, reaches a served tree that
 * `si verify-tree` accepts and devices can fetch. The test takes the first `sh` block of the
 * README section, replaces only the placeholders the README names (instance directory,
 * public name, ports, build server URL), and runs it with bash; `si` is the built CLI on the
 * PATH. The only things the harness adds: `si serve` runs in the background until the end,
 * and the commands after it start once it listens (the README says "in another shell").
 */
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { get as httpsGet } from "node:https";
import { createServer } from "node:net";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { ChannelsDoc } from "../../src/model/channels.js";
import type { IndexDoc } from "../../src/model/index-doc.js";
import { makeDeviceTree, makeRootfsV1, serveInputs, tarXz, tmp, type InputServer } from "../importer/fixtures.js";
import { REPO } from "../helpers/instance.js";
import { get } from "../helpers/serve-process.js";

/** The walkthrough section of the README and its first `sh` block (the one operators run). */
export function walkthroughBlock(readme: string): string {
  const start = readme.indexOf("\n## Operator walkthrough");
  if (start < 0) throw new Error("README has no '## Operator walkthrough' section");
  const end = readme.indexOf("\n## ", start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const block = /\n```sh\n([\s\S]*?)\n```/.exec(section);
  if (!block) throw new Error("the walkthrough section has no ```sh block");
  return block[1];
}

/**
 * A port that is free now, below the kernel's ephemeral range (32768-60999): a port the
 * kernel handed out for listen(0) can be taken by another test's outgoing connection before
 * `si serve` binds it (the attack tests open 1,200 client sockets at once).
 */
async function freePort(): Promise<number> {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once("error", () => resolve(false));
      s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
}

/** Replaces every occurrence of `from`; a placeholder the README no longer has fails the test. */
function substitute(text: string, pairs: [string, string][]): string {
  for (const [from, to] of pairs) {
    if (!text.includes(from)) throw new Error(`the README walkthrough no longer contains the placeholder '${from}'`);
    text = text.split(from).join(to);
  }
  return text;
}

function httpsGetCa(url: string, ca: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    httpsGet(url, { ca, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode!, body }));
    }).on("error", reject);
  });
}

const work = tmp("si-walk-");
let farm: InputServer | undefined;
afterAll(async () => {
  await farm?.close();
  rmSync(work, { recursive: true, force: true });
});

describe("README operator walkthrough, run literally", () => {
  it("goes from si init to a served tree that verify-tree accepts", async () => {
    const block = walkthroughBlock(readFileSync(join(REPO, "README.md"), "utf8"));
    // The six steps of issue 15, in order, and nothing that hand-makes the layout.
    const order = ["si init ", "si channel create ", "si device create ", "cat >> ", "si import-images", "si serve"].map((c) =>
      block.indexOf(c),
    );
    expect(
      order.every((i, n) => i >= 0 && (n === 0 || i > order[n - 1])),
      `steps out of order: ${order.join(",")}`,
    ).toBe(true);
    expect(block).not.toMatch(/\b(mkdir|cp|generate-keys|generate-keyrings|keyring publish|openssl)\b/);

    // The build server: a rootfs and a device tarball, each with a build-number file.
    farm = await serveInputs();
    const src = join(work, "inputs");
    makeRootfsV1(join(src, "rootfs"), 200);
    makeDeviceTree(join(src, "device"));
    farm.routes.set("/rootfs/ubports-rootfs.tar.xz", { file: tarXz(join(src, "rootfs"), join(src, "rootfs.tar.xz"), ["system"]) });
    farm.routes.set("/rootfs/build_number", { body: "20261206-1\n" });
    farm.routes.set("/mako/device.tar.xz", { file: tarXz(join(src, "device"), join(src, "device.tar.xz"), ["partitions", "system"]) });
    farm.routes.set("/mako/build_number", { body: "7\n" });

    const dir = join(work, "srv-si");
    const [http, https, admin] = [await freePort(), await freePort(), await freePort()];
    const script = substitute(block, [
      ["/srv/system-image", dir],
      ["https://ci.example.net", farm.url],
      ["http://system-image.example.net/", `http://127.0.0.1:${http}/`],
      ["system-image.example.net", "127.0.0.1"],
      ["--http-port 80 ", `--http-port ${http} `],
      ["--https-port 443 ", `--https-port ${https} `],
      ["--admin-port 8090", `--admin-port ${admin}`],
    ]);
    const lines = script.split("\n");
    const serveAt = lines.findIndex((l) => /^si serve\b/.test(l));
    expect(serveAt, "the walkthrough runs `si serve` on a line of its own").toBeGreaterThan(0);

    // `si` is the built CLI; the shell starts in an empty directory, not the checkout.
    const bin = join(work, "bin");
    mkdirSync(bin);
    writeFileSync(join(bin, "si"), `#!/bin/sh\nexec "${process.execPath}" "${join(REPO, "bin/si.js")}" "$@"\n`);
    chmodSync(join(bin, "si"), 0o755);
    const home = join(work, "home");
    mkdirSync(home);
    const env: NodeJS.ProcessEnv = { PATH: `${bin}:${process.env.PATH}`, HOME: home, LANG: "C.UTF-8" };
    const state = join(work, "shell-env");
    // Not spawnSync: the build server answers from this process's event loop.
    const bash = (body: string) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn("bash", ["-c", `set -euo pipefail\n${body}`], { cwd: home, env, stdio: ["ignore", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
        child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
        child.on("close", (status) => resolve({ status, stdout, stderr }));
      });

    // Steps 1-4; the shell's exported variables and directory carry over to the other shells.
    const before = await bash(`${lines.slice(0, serveAt).join("\n")}\nexport -p > ${state}.vars; pwd > ${state}.pwd`);
    expect(before.status, `steps before si serve:\n${before.stdout}\n${before.stderr}`).toBe(0);
    expect(before.stdout).toContain(`Instance ready in ${dir}.`);
    expect(before.stdout).toContain(`${join(dir, "etc/config")}: OK (1 channel, 0 mirrors)`);
    expect(statSync(join(dir, "secret")).mode & 0o777).toBe(0o700);
    const index = JSON.parse(readFileSync(join(dir, "www/devel/mako/index.json"), "utf8")) as IndexDoc;
    expect(index.images.map((i) => [i.type, i.version, i.files.length])).toEqual([["full", 1, 4]]);
    expect(index.images[0].version_detail).toBe("rootfs=20261206-1,device-mako=7,keyring=archive-master,version=1");

    // Step 5 in the background, exactly the README's line.
    const serve = spawnServeLine(lines[serveAt], `source ${state}.vars; cd "$(cat ${state}.pwd)"`, env, home);
    try {
      for (const listener of ["http", "https"])
        await serve.waitFor((l) => l.event === "listening" && l.listener === listener, `${listener} listening`);

      // Step 6 and whatever follows it.
      const after = await bash(`source ${state}.vars; cd "$(cat ${state}.pwd)"\n${lines.slice(serveAt + 1).join("\n")}`);
      expect(after.status, `steps after si serve:\n${after.stdout}\n${after.stderr}`).toBe(0);
      const onDisk = readFileSync(join(dir, "www/channels.json"), "utf8");
      expect(after.stdout).toContain(onDisk.trim()); // curl printed what devices get
      expect(after.stdout).toMatch(/^OK: 0 errors, 0 warnings; /m); // verify-tree
      // check-latest asked the instance itself, over HTTPS with si init's certificate.
      expect(after.stdout).toMatch(/^Current full image: 1 /m);
      const channels = JSON.parse(onDisk) as ChannelsDoc;
      expect(Object.keys(channels.devel.devices)).toEqual(["mako"]);

      // What a device does: HTTP and HTTPS (the certificate si init made, for the name given).
      expect(await get(`http://127.0.0.1:${http}/channels.json`)).toEqual({ status: 200, body: onDisk });
      const cert = readFileSync(join(dir, "secret/tls/cert.pem"));
      const viaTls = await httpsGetCa(`https://127.0.0.1:${https}/devel/mako/index.json`, cert);
      expect(viaTls.status).toBe(200);
      expect(JSON.parse(viaTls.body)).toEqual(index);

      // The certbot renewal path the README documents: SIGHUP re-reads the certificate.
      serve.child.kill("SIGHUP");
      await serve.waitFor((l) => l.event === "tls-reloaded", "the TLS reload");
    } catch (err) {
      // The step that failed is the news, not the exit status of a server stopped mid-way.
      serve.child.kill("SIGTERM");
      await serve.exit;
      throw err;
    }
    serve.child.kill("SIGTERM");
    expect(await serve.exit, `si serve's stderr on SIGTERM:\n${serve.stderr()}`).toBe(0);
  }, 600_000);
});

/**
 * `si serve` as the README writes it, through bash, which execs it so signals reach it; every
 * stdout line must be one JSON object (the server's log format).
 */
function spawnServeLine(line: string, prelude: string, env: NodeJS.ProcessEnv, cwd: string) {
  const child = spawn("bash", ["-c", `${prelude}\nexec ${line}`], { env, cwd, stdio: ["ignore", "pipe", "pipe"] });
  const logged: Record<string, unknown>[] = [];
  let buf = "";
  let err = "";
  const wake = new Set<() => void>();
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    buf += chunk;
    for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
      logged.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      buf = buf.slice(nl + 1);
    }
    for (const w of [...wake]) w();
  });
  child.stderr.setEncoding("utf8").on("data", (c: string) => (err += c));
  const exit = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  const waitFor = (pred: (l: Record<string, unknown>) => boolean, what: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const hit = logged.find(pred);
        if (hit) {
          wake.delete(check);
          resolve(hit);
        } else if (child.exitCode !== null) reject(new Error(`si serve exited ${child.exitCode} before ${what}: ${err}`));
      };
      wake.add(check);
      child.on("exit", check);
      check();
    });
  return { child, waitFor, exit, stderr: () => err };
}

describe("si init", () => {
  const si = (args: string[], cwd = work) => spawnSync(process.execPath, [join(REPO, "bin/si.js"), ...args], { cwd, encoding: "utf8" });

  it("refuses a directory that holds an instance, naming what it found, and changes nothing", () => {
    for (const part of ["etc/config", "secret/gpg/keys/x", "www/channels.json", "state/history.sqlite"]) {
      const dir = tmp("si-init-refuse-");
      mkdirSync(join(dir, part, ".."), { recursive: true });
      writeFileSync(join(dir, part), "precious\n");
      const r = si(["init", dir, "--fqdn", "ota.example.org"]);
      const top = part.startsWith("etc/") ? "etc/config" : part.split("/")[0];
      expect([r.status, r.stderr]).toEqual([
        1,
        `si: error: Cannot initialise instance ${dir}: it already has ${top === "etc/config" ? top : `${top}/`} (--force completes it: the config is rewritten, keys, keyrings and tree are kept)\n`,
      ]);
      expect(readFileSync(join(dir, part), "utf8")).toBe("precious\n");
      for (const other of ["etc/config", "secret", "www", "state"].filter((o) => o !== top))
        expect(existsSync(join(dir, other)), other).toBe(false);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("with --force completes an instance: keeps its keys, rewrites the config, makes secret/ 0700", () => {
    const dir = tmp("si-init-force-");
    mkdirSync(join(dir, "etc"));
    writeFileSync(join(dir, "etc/config"), "[global]\npublic_fqdn = old.example.org\n");
    mkdirSync(join(dir, "secret/gpg"), { recursive: true, mode: 0o755 });
    chmodSync(join(dir, "secret"), 0o755);
    spawnSync("cp", ["-a", join(REPO, "test-artifacts/keys"), join(dir, "secret/gpg/keys")]);
    const keyBefore = readFileSync(join(dir, "secret/gpg/keys/image-signing/private.asc"), "utf8");

    const r = si(["init", dir, "--fqdn", "ota.example.org", "--http-port", "8080", "--https-port", "0", "--no-tls", "--force"]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("I: kept existing keys: archive-master, image-master, image-signing, device-signing, blacklist");
    expect(r.stdout).not.toContain("generating");
    expect(readFileSync(join(dir, "secret/gpg/keys/image-signing/private.asc"), "utf8")).toBe(keyBefore);
    expect(readFileSync(join(dir, "etc/config.bak"), "utf8")).toBe("[global]\npublic_fqdn = old.example.org\n");
    expect(statSync(join(dir, "secret")).mode & 0o777).toBe(0o700);
    expect(existsSync(join(dir, "secret/tls/cert.pem"))).toBe(false); // --no-tls
    for (const k of ["archive-master", "image-master", "image-signing", "blacklist"]) {
      expect(existsSync(join(dir, `www/gpg/${k}.tar.xz.asc`)), k).toBe(true);
    }
    const show = JSON.parse(si(["--config", join(dir, "etc/config"), "config", "show", "--json"]).stdout) as Record<string, unknown>;
    expect(show).toMatchObject({
      base_path: dir,
      public_fqdn: "ota.example.org",
      public_http_port: "8080",
      public_https_port: "0",
      admin_port: 8090,
    });
    expect([show.channels, show.mirrors]).toEqual([[], []]);

    // A second --force run makes nothing new and keeps what is there.
    const again = si(["init", dir, "--fqdn", "ota.example.org", "--no-tls", "--force"]);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).not.toMatch(/keyring .*signed by|published keyrings/);
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);
});
