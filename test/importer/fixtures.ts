/**
 * Realistic import inputs built with GNU tar: a rootfs-like image (a few thousand files,
 * symlinks, hard links) in two versions, a device tarball, and a tiny HTTP server that
 * serves them with monitor files, like a build farm would.
 */
import { execFileSync } from "node:child_process";
import { createServer, type Server } from "node:http";
import {
  chmodSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
  existsSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { standardInstance as setUp, type StandardInstanceOptions } from "../../bench/standard-instance.js";
import { runSi, runSiAsync, type Instance } from "../helpers/instance.js";

export function tarXz(src: string, out: string, members = ["."]): string {
  execFileSync("tar", [
    "--format=gnu",
    "--numeric-owner",
    "--owner=0",
    "--group=0",
    "-C",
    src,
    "-cJf",
    out,
    ...members.filter((m) => m !== "."),
  ]);
  return out;
}

/** Builds the rootfs tree of version 1 under `root/system`. */
export function makeRootfsV1(root: string, files = 3000): void {
  const sys = join(root, "system");
  for (let d = 0; d < 30; d++) mkdirSync(join(sys, `usr/lib/pkg${d}`), { recursive: true });
  mkdirSync(join(sys, "etc"), { recursive: true });
  mkdirSync(join(sys, "usr/bin"), { recursive: true });
  for (let i = 0; i < files; i++) {
    writeFileSync(join(sys, `usr/lib/pkg${i % 30}/file${i}.so`), `library ${i}\n`.repeat(1 + (i % 50)));
  }
  writeFileSync(join(sys, "etc/os-release"), 'NAME="Demo OS"\nVERSION="1"\n');
  writeFileSync(join(sys, "etc/obsolete.conf"), "gone in v2\n");
  writeFileSync(join(sys, "etc/stable.conf"), "value=AAAA\n");
  writeFileSync(join(sys, "usr/bin/tool"), "#!/bin/sh\necho v1\n");
  chmodSync(join(sys, "usr/bin/tool"), 0o755);
  linkSync(join(sys, "usr/bin/tool"), join(sys, "usr/bin/tool-hardlink"));
  symlinkSync("pkg0/file0.so", join(sys, "usr/lib/current.so"));
  symlinkSync("/etc/os-release", join(sys, "etc/os-release.link"));
  const t = new Date("2026-01-01T00:00:00Z");
  execFileSync("find", [sys, "-exec", "touch", "-h", "-d", t.toISOString(), "{}", "+"]);
}

/**
 * Version 2: 5 % of files changed, some removed and added, a symlink retargeted, the hard
 * link's inode changed, and one file changed WITHOUT changing its size or mtime (the case
 * the reference differ misses, which would leave a stale file on devices).
 */
export function makeRootfsV2(v1: string, v2: string): void {
  mkdirSync(v2, { recursive: true });
  execFileSync("cp", ["-a", join(v1, "system"), v2]);
  const sys = join(v2, "system");
  for (let i = 0; i < 3000; i += 20) {
    const f = join(sys, `usr/lib/pkg${i % 30}/file${i}.so`);
    if (existsSync(f)) writeFileSync(f, `library ${i} v2\n`.repeat(1 + (i % 50)));
  }
  for (let i = 7; i < 3000; i += 100) rmSync(join(sys, `usr/lib/pkg${i % 30}/file${i}.so`), { force: true });
  for (let i = 0; i < 30; i++) writeFileSync(join(sys, `usr/lib/pkg${i}/added${i}.so`), `new ${i}\n`);
  unlinkSync(join(sys, "etc/obsolete.conf"));
  writeFileSync(join(sys, "etc/os-release"), 'NAME="Demo OS"\nVERSION="2"\n');
  // Same size, same mtime, different bytes.
  const stable = join(sys, "etc/stable.conf");
  const st = statSync(stable);
  writeFileSync(stable, "value=BBBB\n");
  utimesSync(stable, st.atime, st.mtime);
  writeFileSync(join(sys, "usr/bin/tool"), "#!/bin/sh\necho v2\n");
  unlinkSync(join(sys, "usr/lib/current.so"));
  symlinkSync("pkg1/file1.so", join(sys, "usr/lib/current.so"));
}

export function makeDeviceTree(root: string): void {
  mkdirSync(join(root, "partitions"), { recursive: true });
  mkdirSync(join(root, "system/lib/modules"), { recursive: true });
  writeFileSync(join(root, "partitions/boot.img"), Buffer.alloc(64 * 1024, 0x42));
  writeFileSync(join(root, "system/lib/modules/demo.ko"), "module\n");
}

export interface InputServer {
  url: string;
  /** URL path -> file on disk or literal content. */
  routes: Map<string, Route>;
  /** Serves this directory for paths no route names (a remote system-image tree). */
  root?: string;
  close(): Promise<void>;
}

/** How a route answers: a file or text, an error status, or one of the broken behaviours. */
export interface Route {
  file?: string;
  body?: string;
  status?: number;
  /** 200 with an HTML page; a body cut off before its Content-Length; no answer at all. */
  mode?: "html" | "truncate" | "hang";
}

export async function serveInputs(): Promise<InputServer> {
  const routes = new Map<string, Route>();
  const state: InputServer = { url: "", routes, close: async () => {} };
  const server: Server = createServer((req, res) => {
    const url = (req.url ?? "").replace(/\/{2,}/g, "/");
    const r =
      routes.get(url) ??
      (state.root && existsSync(join(state.root, url)) && statSync(join(state.root, url)).isFile()
        ? { file: join(state.root, url) }
        : undefined);
    if (!r) {
      res.writeHead(404).end("not found");
      return;
    }
    if (r.mode === "hang") return; // never answers: the client's timeout must end it
    if (r.mode === "html") {
      res
        .writeHead(200, { "content-type": "text/html" })
        .end("<!DOCTYPE html><html><body>" + "Maintenance ".repeat(100) + "</body></html>");
      return;
    }
    if (r.status && r.status !== 200) {
      res.writeHead(r.status, { "content-type": "text/html" }).end("<html>error</html>");
      return;
    }
    const body = r.file ? readFileSync(r.file) : Buffer.from(r.body ?? "");
    if (r.mode === "truncate") {
      res.writeHead(200, { "content-length": body.length });
      res.write(body.subarray(0, body.length >> 1), () => res.destroy());
      return;
    }
    res.writeHead(200, { "content-length": body.length }).end(body);
  });
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
  const { port } = server.address() as AddressInfo;
  state.url = `http://127.0.0.1:${port}`;
  state.close = () =>
    new Promise((res) => {
      server.closeAllConnections();
      server.close(() => res());
    });
  return state;
}

export function tmp(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * The standard import instance (bench/standard-instance.ts: config, keys, keyrings, channel
 * devel with device mako, the four device keyrings published) as a test Instance.
 */
export async function standardInstance(farmUrl: string, opts: StandardInstanceOptions = {}): Promise<Instance> {
  const i = await setUp(farmUrl, opts);
  return {
    base: i.base,
    config: i.configPath,
    keys: i.keys,
    keyrings: i.keyrings,
    publish: i.publish,
    state: i.state,
    si: (...args) => runSi(["--config", i.configPath, ...args]),
    siAsync: (...args) => runSiAsync(["--config", i.configPath, ...args]),
  };
}
