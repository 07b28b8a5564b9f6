/**
 * One source of truth for caching (issue 14 item 6): src/server/content-rules.ts drives
 * `si serve`'s headers and generates etc/nginx/system-image.conf, and a real nginx running
 * the shipped site answers every kind of path with the same Cache-Control and Content-Type
 * as `si serve` over the same tree. Signatures `si rotate-key` can re-sign are never
 * `immutable`; content-named index copies get the 5 minutes the README promises.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseConfigText } from "../../src/config/load.js";
import { nginxSite, nginxSiteOptions } from "../../src/deploy/nginx-site.js";
import {
  CACHE_MUTABLE,
  CACHE_RULES,
  CACHE_SHORT,
  cacheControlOf,
  cacheRuleOf,
  contentTypeOf,
  DEFAULT_CACHE,
} from "../../src/server/content-rules.js";
import { startServer, type RunningServer } from "../../src/server/start.js";
import { REPO, runSi } from "../helpers/instance.js";
import { collectingLogger, fetchRaw, makeSite, type Reply, type Site } from "../server/fixtures.js";
import { runNginx, type RunningNginx } from "./nginx-run.js";

const SHIPPED = join(REPO, "etc/nginx/system-image.conf");

/** Paths at the edges of the rules: anchors, case, look-alike names. */
const EDGES = [
  "/pool/index.json", // an index.json anywhere is a document (first rule that matches)
  "/16.04/devel/mako/index-0123456789ABCDEF.json", // not a content-named copy (upper-case hex)
  "/16.04/devel/mako/index-0123.json",
  "/stable/channels.json", // only the root channels.json is the channel list
  "/pool/sub/dir/file.tar.xz",
  "/poolside/file.tar.xz",
  "/16.04/devel/mako/version-3.json.asc",
  "/gpg/ARCHIVE-MASTER.TAR.XZ", // nginx compares extensions in lower case; so does si serve
  "/pool/noextension",
];
const ALL = [...CACHE_RULES.flatMap((r) => r.examples), ...DEFAULT_CACHE.examples, ...EDGES];

describe("the caching table", () => {
  it("puts every example under its own rule", () => {
    for (const rule of [...CACHE_RULES, DEFAULT_CACHE]) {
      for (const path of rule.examples) expect(cacheRuleOf(path).kind, path).toBe(rule.kind);
    }
  });

  it("never marks a signature immutable, and gives index copies 5 minutes", () => {
    for (const path of ALL.filter((p) => p.endsWith(".asc"))) expect(cacheControlOf(path), path).not.toMatch(/immutable/);
    expect(cacheControlOf("/pool/ubports-0123abcd.tar.xz.asc")).toBe(CACHE_SHORT);
    expect(cacheControlOf("/16.04/devel/mako/index-0123456789abcdef.json")).toBe("public, max-age=300");
    expect(cacheControlOf("/16.04/devel/mako/index-0123456789abcdef.json.asc")).toBe("public, max-age=300");
    expect(cacheControlOf("/channels.json.asc")).toBe(CACHE_MUTABLE);
  });

  it("writes patterns nginx's PCRE reads as JavaScript does", () => {
    // Literals, `\.` `\/`, classes of letters/digits, counts, non-capturing groups, anchors.
    const portable = /^(?:\\[./]|\[[0-9a-zA-Z-]+\]|\{\d+\}|\(\?:|[()|?*+^$]|[A-Za-z0-9_-])+$/;
    for (const r of CACHE_RULES) {
      expect(r.pattern.source, r.kind).toMatch(portable);
      expect(r.pattern.flags, r.kind).toBe("");
    }
  });
});

describe("etc/nginx/system-image.conf", () => {
  it("is what si nginx-site writes for etc/config.example", () => {
    const shipped = readFileSync(SHIPPED, "utf8");
    const config = parseConfigText(readFileSync(join(REPO, "etc/config.example"), "utf8"), "/srv/system-image/etc/config", {});
    expect(nginxSite(nginxSiteOptions(config)), "regenerate: si --config etc/config.example nginx-site > etc/nginx/system-image.conf").toBe(
      shipped,
    );
    const cli = runSi(["--config", "etc/config.example", "nginx-site"]);
    expect(cli.stderr).toBe("");
    expect(cli.stdout).toBe(shipped);
  });
});

describe("si nginx-site for other instances", () => {
  it("writes an HTTP-only site with a blank in its tree path that nginx accepts", () => {
    const dir = mkdtempSync(join(tmpdir(), "si-nginx-"));
    try {
      const text = nginxSite({
        serverName: "a.example b.example",
        root: join(dir, "my www"),
        httpPort: 8080,
        httpsPort: null,
        tlsCert: "",
        tlsKey: "",
      });
      expect(text).not.toMatch(/ssl/);
      expect(text).toContain(`    root "${join(dir, "my www")}";\n`);
      writeFileSync(join(dir, "site.conf"), text);
      writeFileSync(
        join(dir, "nginx.conf"),
        `pid ${dir}/nginx.pid; error_log ${dir}/error.log;\nevents {}\nhttp { access_log off; include ${dir}/site.conf; }\n`,
      );
      execFileSync("nginx", ["-t", "-q", "-p", dir, "-c", join(dir, "nginx.conf")], { stdio: "pipe" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses an instance with neither public port", () => {
    const config = parseConfigText("[global]\nbase_path = /srv/x\npublic_http_port = 0\n", "/srv/x/etc/config", {});
    expect(() => nginxSiteOptions(config)).toThrow(
      /Cannot write the nginx site: public_http_port and public_https_port are both 0 or unset in \/srv\/x\/etc\/config/,
    );
  });
});

describe("a real nginx with the shipped site, and si serve, over one tree", () => {
  let site: Site;
  let serve: RunningServer;
  let nginx: RunningNginx;

  beforeAll(async () => {
    site = await makeSite();
    for (const path of ALL) {
      mkdirSync(dirname(join(site.publish, path)), { recursive: true });
      writeFileSync(join(site.publish, path), randomBytes(64));
    }
    serve = await startServer(site.config, { address: "127.0.0.1", httpPort: 0, httpsPort: null, logger: collectingLogger() });
    nginx = await runNginx(readFileSync(SHIPPED, "utf8"), {
      prefix: join(site.base, "nginx"),
      publish: site.publish,
      cert: site.config.tls_cert!,
      key: site.config.tls_key!,
    });
  });
  afterAll(async () => {
    nginx?.stop();
    await serve?.close();
    rmSync(site.base, { recursive: true, force: true });
  });

  const view = (r: Reply) => ({ status: r.status, cacheControl: r.headers["cache-control"], contentType: r.headers["content-type"] });

  it.each(ALL)("%s: same Cache-Control and Content-Type on GET and HEAD, same Cache-Control on 304", async (path) => {
    const answers: Record<string, unknown> = {};
    for (const [name, port] of [
      ["si serve", serve.httpPort!],
      ["nginx", nginx.http],
    ] as const) {
      const get = await fetchRaw({ port }, "GET", path);
      const head = await fetchRaw({ port }, "HEAD", path);
      const etag = get.headers.etag;
      expect(etag, `${name} ${path}: ETag`).toBeTruthy();
      // A 304 refreshes the cached copy's lifetime, so it carries Cache-Control too.
      const revalidated = await fetchRaw({ port }, "GET", path, { "if-none-match": etag! });
      answers[name] = { get: view(get), head: view(head), revalidated: [revalidated.status, revalidated.headers["cache-control"]] };
    }
    expect(answers["nginx"], path).toEqual(answers["si serve"]);
    const want = { status: 200, cacheControl: cacheControlOf(path), contentType: contentTypeOf(path) };
    expect(answers["si serve"], path).toEqual({ get: want, head: want, revalidated: [304, want.cacheControl] });
  });
});
