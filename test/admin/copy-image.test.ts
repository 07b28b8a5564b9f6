/**
 * `si copy-image` (server-reference §9.2) through the real CLI on a real tree: the verified
 * result of `copy-image devel rc mako -p 30 -t OTA-1`, deltas on the next copy (checked by
 * applying them), the refusals in the reference's order (each leaving the tree
 * byte-identical), our fixes (-k needs -r; the phased percentage is checked first), and the
 * push notification against a local HTTP server.
 */
import { existsSync } from "node:fs";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readVersionIni } from "../../src/tree/index.js";
import { applyCheck } from "../helpers/apply-delta.js";
import { fingerprint, verifyTree } from "../tree/fixture.js";
import { adminFixture, expectOneLineError, poolTarball, publishFull, readIndex, siAsync, type AdminFixture } from "./fixture.js";

const DEVEL_DETAIL = ["tag=2022-01-02", "ubports=20220102-1", "device=5ac4", "keyring=archive-master"];

/** devel/mako full 1 (rootfs, device, keyring, version tarball); rc/mako empty. */
async function promotionTree(): Promise<AdminFixture> {
  const fx = await adminFixture();
  for (const c of ["devel", "rc"]) {
    fx.ok("channel", "create", c);
    fx.ok("device", "create", c, "mako");
  }
  await poolTarball(fx, "pool/ubports-aaaa.tar.xz", { "system/etc/os-release": "NAME=UT 1\n", "system/bin/tool": "v1\n" });
  await poolTarball(fx, "pool/device-dddd.tar.xz", { "system/vendor/blob": "blob\n" });
  await poolTarball(fx, "pool/keyring-kkkk.tar.xz", { "archive-master.tar.xz": "keys\n" });
  await publishFull(
    fx,
    "devel",
    "mako",
    1,
    ["pool/ubports-aaaa.tar.xz", "pool/device-dddd.tar.xz", "pool/keyring-kkkk.tar.xz"],
    DEVEL_DETAIL,
  );
  return fx;
}

describe("copy-image", () => {
  it("gives the verified result of `copy-image devel rc mako -p 30 -t OTA-1`", async () => {
    const fx = await promotionTree();
    const out = fx.ok("copy-image", "devel", "rc", "mako", "-p", "30", "-t", "OTA-1");
    expect(out).toContain("I: created rc/mako version 1 (full) from devel/mako version 1\n");
    expect(out).toContain("I: phased percentage 30%\n");

    const detail = "ubports=20220102-1,device=5ac4,keyring=archive-master,tag=OTA-1,version=1";
    const images = readIndex(fx, "rc", "mako").images;
    expect(images).toHaveLength(1);
    expect(images[0]).toMatchObject({ type: "full", version: 1, version_detail: detail, description: detail, "phased-percentage": 30 });
    // Pool files are shared, not copied; only the version tarball is new.
    expect(images[0].files.map((f) => [f.order, f.path])).toEqual([
      [0, "/pool/ubports-aaaa.tar.xz"],
      [1, "/pool/device-dddd.tar.xz"],
      [2, "/pool/keyring-kkkk.tar.xz"],
      [3, "/rc/mako/version-1.tar.xz"],
    ]);
    const ini = await readVersionIni(join(fx.pub, "rc/mako/version-1.tar.xz"));
    expect(ini).toMatchObject({ channel: "rc", device: "mako", build_number: "1", version_detail: detail });
    expect(existsSync(join(fx.pub, "rc/mako/version-1.json"))).toBe(true);
    // The source is untouched.
    expect(readIndex(fx, "devel", "mako").images.map((i) => i.version)).toEqual([1]);
    verifyTree(fx.pub);

    // A version tarball left behind by a removed image is not reused with its old tag.
    fx.ok("image", "remove", "rc", "mako", "1");
    fx.ok("copy-image", "devel", "rc", "mako", "-t", "OTA-2");
    const again = "ubports=20220102-1,device=5ac4,keyring=archive-master,tag=OTA-2,version=1";
    expect(readIndex(fx, "rc", "mako").images.map((i) => [i.version, i.version_detail])).toEqual([[1, again]]);
    expect(await readVersionIni(join(fx.pub, "rc/mako/version-1.tar.xz"))).toMatchObject({ version_detail: again });
    verifyTree(fx.pub);
  });

  it("makes deltas from the destination's latest full image on the next copy, and they apply", async () => {
    const fx = await promotionTree();
    fx.ok("copy-image", "devel", "rc", "mako");
    await poolTarball(fx, "pool/ubports-bbbb.tar.xz", {
      "system/etc/os-release": "NAME=UT 2\n",
      "system/bin/tool": "v2\n",
      "system/bin/new": "n\n",
    });
    await publishFull(
      fx,
      "devel",
      "mako",
      2,
      ["pool/ubports-bbbb.tar.xz", "pool/device-dddd.tar.xz", "pool/keyring-kkkk.tar.xz"],
      DEVEL_DETAIL,
    );

    const json = JSON.parse(fx.ok("copy-image", "devel", "rc", "mako", "--json")) as {
      version: number;
      deltas: { base: number; files: string[] }[];
      source: { version: number };
    };
    expect(json).toMatchObject({ version: 2, source: { version: 2 } });
    // Unchanged device tarball left out; the keyring always ships; the rootfs is diffed.
    expect(json.deltas).toEqual([
      { base: 1, files: ["/pool/ubports-bbbb.delta-ubports-aaaa.tar.xz", "/pool/keyring-kkkk.tar.xz", "/rc/mako/version-2.tar.xz"] },
    ]);
    const images = readIndex(fx, "rc", "mako").images;
    expect(images.map((i) => [i.type, i.version, i.base ?? null])).toEqual([
      ["full", 1, null],
      ["full", 2, null],
      ["delta", 2, 1],
    ]);
    expect(images[2].files.map((f) => f.order)).toEqual([0, 1, 2]);
    expect(images.every((i) => i["phased-percentage"] === undefined)).toBe(true);
    const p = (rel: string) => join(fx.pub, rel);
    expect(
      applyCheck(p("pool/ubports-aaaa.tar.xz"), p("pool/ubports-bbbb.tar.xz"), p("pool/ubports-bbbb.delta-ubports-aaaa.tar.xz")),
    ).toEqual([]);
    verifyTree(fx.pub);

    // -r/-o pick the source; -k keeps its number (below the latest: no phasing allowed).
    fx.ok("copy-image", "devel", "rc", "mako", "-r", "2", "-o", "1");
    expect(
      readIndex(fx, "rc", "mako")
        .images.filter((i) => i.type === "full")
        .map((i) => i.version),
    ).toEqual([1, 2, 3]);
  });

  it("refuses in the reference's order, with its messages, and changes nothing", async () => {
    const fx = await promotionTree();
    fx.ok("channel", "create", "other");
    fx.ok("device", "create", "devel", "flo");
    fx.ok("device", "create", "other", "nexus");
    fx.ok("channel", "alias", "stable", "devel");
    fx.ok("channel", "redirect", "old", "rc");
    fx.ok("channel", "create", "pd");
    fx.ok("device", "redirect", "pd", "mako", "devel");
    fx.ok("copy-image", "devel", "rc", "mako");
    const before = fingerprint(fx.pub);

    const cases: [string[], string][] = [
      [["nope", "rc", "mako"], "Invalid source channel: nope"],
      [["nope", "nope2", "mako"], "Invalid source channel: nope"],
      [["devel", "nope", "mako"], "Invalid destination channel: nope"],
      [["other", "rc", "mako"], "Invalid device for source channel: mako"],
      [["devel", "rc", "flo"], "Invalid device for destination channel: flo"],
      [["stable", "rc", "mako"], "Source channel is an alias."],
      [["stable", "stable", "mako"], "Source channel is an alias."],
      [["devel", "stable", "mako"], "Destination channel is an alias."],
      [["old", "rc", "mako"], "Source channel is a redirect."],
      [["devel", "old", "mako"], "Destination channel is a redirect."],
      [["pd", "rc", "mako"], "Source device is a redirect. Use original channel devel instead."],
      [["devel", "pd", "mako"], "Destination device is a redirect. Use original channel devel instead."],
      [["devel", "rc", "mako", "-t", "OTA,1"], "Image tag cannot include the character ','."],
      [["devel", "rc", "mako", "-k", "-r", "1"], "Version number is already used: 1"],
      [["devel", "rc", "mako", "-r", "7"], "Can't find version: 7"],
      [["devel", "rc", "mako", "-o", "1"], "Can't find version: 0"],
      [["devel", "rc", "mako"], "Source image is already latest full in destination channel."],
      // Ours: -k needs the version to keep; the percentage is checked before anything is made.
      [["devel", "rc", "mako", "-k"], "argument -k/--keep-version: needs -r/--version N (the version to keep)"],
      [["devel", "rc", "mako", "-r", "1", "-k", "-p", "50"], "Version number is already used: 1"],
      [["devel", "other", "nexus", "-p", "101"], "Invalid phased percentage: 101 (it must be an integer from 0 to 100)"],
      [["devel", "rc", "mako", "-p", "-1"], "Invalid phased percentage: -1 (it must be an integer from 0 to 100)"],
      [["devel", "rc", "mako", "-p", "half"], "argument -p/--phased-percentage: invalid int value: 'half'"],
      [["devel", "rc", "mako", "-r", "x"], "argument -r/--version: invalid int value: 'x'"],
    ];
    for (const [args, message] of cases) {
      const r = fx.inst.si("copy-image", ...args);
      expect([r.status, r.stdout], `copy-image ${args.join(" ")}: ${r.stderr}`).toEqual([2, ""]);
      expectOneLineError(r, message);
    }
    expect(fingerprint(fx.pub)).toEqual(before);
  });

  it("refuses to phase a kept version below the latest, before making anything", async () => {
    const fx = await promotionTree();
    fx.ok("device", "create", "devel", "flo");
    fx.ok("device", "create", "rc", "flo");
    await publishFull(fx, "devel", "flo", 1, ["pool/ubports-aaaa.tar.xz"], ["ubports=1"]);
    await publishFull(fx, "rc", "flo", 5, ["pool/device-dddd.tar.xz"], ["device=5"]);
    const before = fingerprint(fx.pub);
    const r = fx.inst.si("copy-image", "devel", "rc", "flo", "-r", "1", "-k", "-p", "30");
    expect(r.status).toBe(2);
    expectOneLineError(r, "Cannot phase version 1 of rc/flo at 30%: only the latest version can be phased, and 5 is newer");
    expect(fingerprint(fx.pub)).toEqual(before);
    // At 100 % it is allowed, and keeps the number.
    fx.ok("copy-image", "devel", "rc", "flo", "-r", "1", "-k");
    expect(readIndex(fx, "rc", "flo").images.map((i) => i.version)).toEqual([1, 5]);
  });

  it("posts the push notification (-q) in the reference's format; a failure is logged, not fatal", async () => {
    const fx = await promotionTree();
    fx.ok("device", "create", "devel", "flo");
    fx.ok("device", "create", "rc", "flo");
    await publishFull(fx, "devel", "flo", 1, ["pool/ubports-aaaa.tar.xz"], ["ubports=1"]);
    const seen: { method?: string; url?: string; type?: string; body: string }[] = [];
    let status = 200;
    const server = createServer((req: IncomingMessage, res) => {
      let body = "";
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("end", () => {
        seen.push({ method: req.method, url: req.url, type: req.headers["content-type"], body });
        res.writeHead(status).end("ok");
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/broadcast`;
    try {
      const t0 = Date.now();
      const r = await siAsync(fx.inst, ["copy-image", "devel", "rc", "mako", "-q", "--push-url", url]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain("I: push notification sent");
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({ method: "POST", url: "/broadcast", type: "application/json" });
      const m = /^\{"channel": "system", "expire_on": "(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)Z", "data": \{"rc\/mako": \[1, ""\]\}\}$/.exec(
        seen[0].body,
      );
      expect(m, seen[0].body).not.toBeNull();
      const expires = Date.parse(`${m![1]}Z`);
      expect(expires).toBeGreaterThanOrEqual(Math.floor(t0 / 1000) * 1000 + 86_400_000);
      expect(expires).toBeLessThanOrEqual(Date.now() + 86_400_000);

      status = 503;
      const r2 = await siAsync(fx.inst, ["copy-image", "devel", "rc", "flo", "-q", "--push-url", url]);
      expect(r2.status, r2.stderr).toBe(0);
      expect(r2.stderr).toMatch(/^E: push notification to http:\/\/127\.0\.0\.1:\d+\/broadcast failed: HTTP 503/m);
      expect(seen[1].body).toContain('"data": {"rc/flo": [1, ""]}');
      expect(readIndex(fx, "rc", "flo").images.map((i) => i.version)).toEqual([1]);
      // Without -q nothing is sent.
      await publishFull(fx, "devel", "mako", 2, ["pool/device-dddd.tar.xz"], ["x=2"]);
      expect((await siAsync(fx.inst, ["copy-image", "devel", "rc", "mako", "--push-url", url])).status).toBe(0);
      expect(seen).toHaveLength(2);
    } finally {
      server.close();
    }
  });
});
