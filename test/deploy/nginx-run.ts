/**
 * A real nginx running an nginx site text (the shipped one, or a generated one) over a temp
 * tree, on 127.0.0.1 ports: the /srv/system-image paths and the listen lines are rewritten,
 * nothing else.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { fetchRaw } from "../server/fixtures.js";

export interface RunningNginx {
  http: number;
  https: number;
  stop(): void;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export async function runNginx(site: string, o: { prefix: string; publish: string; cert: string; key: string }): Promise<RunningNginx> {
  const [http, https] = [await freePort(), await freePort()];
  mkdirSync(o.prefix, { recursive: true });
  const conf = site
    .replaceAll("/srv/system-image/www", o.publish)
    .replaceAll("/srv/system-image/secret/tls/cert.pem", o.cert)
    .replaceAll("/srv/system-image/secret/tls/key.pem", o.key)
    .replace(/listen 80;/, `listen 127.0.0.1:${http};`)
    .replace(/listen 443 ssl;/, `listen 127.0.0.1:${https} ssl;`)
    .replace(/\n\s*listen \[::\]:\d+( ssl)?;/g, "");
  writeFileSync(join(o.prefix, "site.conf"), conf);
  const main = join(o.prefix, "nginx.conf");
  writeFileSync(
    main,
    // Workers must read the 0700 temp tree: as root (CI), keep them as root.
    `${process.getuid?.() === 0 ? "user root; " : ""}daemon off; pid ${o.prefix}/nginx.pid; error_log ${o.prefix}/error.log; worker_processes 1;\n` +
      `events {}\nhttp { access_log off; client_body_temp_path ${o.prefix}; include ${o.prefix}/site.conf; }\n`,
  );
  execFileSync("nginx", ["-t", "-q", "-p", o.prefix, "-c", main]);
  const child = spawn("nginx", ["-p", o.prefix, "-c", main], { stdio: "ignore" });
  for (let i = 0; i < 200; i++) {
    try {
      await fetchRaw({ port: http }, "HEAD", "/");
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return { http, https, stop: () => void child.kill("SIGQUIT") };
}
