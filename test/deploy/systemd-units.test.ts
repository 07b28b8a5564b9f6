/**
 * The shipped systemd units and the shipped config, read together (issue 15 item 3): one
 * default way imports run (system-image-import.timer; the built-in scheduler is the opt-in),
 * and what runs can reach every path it needs, and the public server cannot reach the keys.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfigText } from "../../src/config/load.js";
import type { Config } from "../../src/config/types.js";
import { REPO } from "../helpers/instance.js";
import { accessOf, loadUnit, parseUnit, value, type Access, type Unit } from "./systemd-model.js";

const UNITS = join(REPO, "etc/systemd");
const EXAMPLE = readFileSync(join(REPO, "etc/config.example"), "utf8");
/** Where the units expect the instance's config (their ExecStart= --config). */
const CONFIG_AT = "/srv/system-image/etc/config";

const config = (text: string): Config => parseConfigText(text, CONFIG_AT, {});
/** The example with a commented-out `# key = value` line turned on. */
function enable(text: string, key: string): string {
  const line = new RegExp(`^# (${key} = .*)$`, "m");
  expect(text, `etc/config.example documents ${key} as a commented-out line`).toMatch(line);
  return text.replace(line, "$1");
}

interface Need {
  path: string;
  access: Exclude<Access, "none">;
  why: string;
}

/** What one import-images run reads and writes (signing, the tree, the lock and history). */
function importNeeds(c: Config): Need[] {
  const needs: Need[] = [
    { path: c.path, access: "ro", why: "the config" },
    { path: join(c.gpg_key_path, "image-signing/private.asc"), access: "ro", why: "signing every file and index" },
    { path: join(c.gpg_keyring_path, "archive-master.tar.xz"), access: "ro", why: "the keyring generator" },
    { path: join(c.publish_path, "pool/x.tar.xz"), access: "rw", why: "publishing" },
    { path: join(c.state_path, "global.lock"), access: "rw", why: "the global lock and import history" },
  ];
  if (c.keyring_auto_renew_days !== undefined) {
    needs.push(
      { path: join(c.gpg_key_path, "image-master/private.asc"), access: "ro", why: "keyring_auto_renew_days signs the renewed keyring" },
      { path: join(c.gpg_keyring_path, "image-signing.tar.xz"), access: "rw", why: "keyring_auto_renew_days rebuilds it" },
    );
  }
  for (const m of Object.values(c.mirrors))
    if ("ssh_key" in m && m.ssh_key) needs.push({ path: m.ssh_key, access: "ro", why: `mirror ${m.name}` });
  return needs;
}

/** What `si serve` reads and writes; the scheduler's imports too when import_schedule is set. */
function serveNeeds(c: Config): Need[] {
  const needs: Need[] = [
    { path: c.path, access: "ro", why: "the config" },
    { path: join(c.publish_path, "channels.json"), access: "ro", why: "serving the tree" },
    { path: join(c.state_path, "history.db"), access: "rw", why: "the dashboard's import history" },
  ];
  if (c.public_https_port && c.public_https_port !== "0") {
    needs.push({ path: c.tls_cert!, access: "ro", why: "HTTPS" }, { path: c.tls_key!, access: "ro", why: "HTTPS" });
  }
  if (c.admin_token_file) needs.push({ path: c.admin_token_file, access: "ro", why: "admin_token_file" });
  if (c.import_schedule) needs.push(...importNeeds(c).map((n) => ({ ...n, why: `import_schedule: ${n.why}` })));
  return needs;
}

/** Needs the unit's sandbox denies, as readable lines (empty = all reachable). */
function unmet(unit: Unit, needs: Need[]): string[] {
  return needs
    .filter((n) => {
      const got = accessOf(unit, n.path);
      return got === "none" || (n.access === "rw" && got !== "rw");
    })
    .map((n) => `${unit.name} gives ${accessOf(unit, n.path)} on ${n.path}, needs ${n.access} (${n.why})`);
}

const server = (dropIns: boolean) => loadUnit(UNITS, "system-image-server.service", dropIns);
const importer = () => loadUnit(UNITS, "system-image-import.service", false);
const timer = () => loadUnit(UNITS, "system-image-import.timer", false);

describe("shipped units + shipped config", () => {
  it("one default way imports run: the timer ships enabled and the example leaves import_schedule off", () => {
    const t = timer();
    expect(value(t, "Install", "WantedBy")).toBe("timers.target");
    const started = value(t, "Timer", "Unit") ?? "system-image-import.service";
    expect(existsSync(join(UNITS, started)), started).toBe(true);
    // With both, every import would run twice; the server unit could not sign anyway.
    expect(config(EXAMPLE).import_schedule).toBeUndefined();
  });

  it("both services run as the same unprivileged user, on the instance and config the example describes", () => {
    const c = config(EXAMPLE);
    const [s, i] = [server(false), importer()];
    for (const u of [s, i]) {
      expect(value(u, "Service", "User"), u.name).toBe(value(s, "Service", "User"));
      expect(value(u, "Service", "Group"), u.name).toBe(value(s, "Service", "Group"));
      expect(value(u, "Service", "User"), u.name).not.toMatch(/^(root|0)?$/);
      expect(value(u, "Service", "WorkingDirectory"), u.name).toBe(c.base_path);
      expect(value(u, "Service", "ExecStart"), u.name).toContain(` --config ${c.path} `);
    }
    expect(value(s, "Service", "ExecStart")).toMatch(/ serve$/);
    expect(value(i, "Service", "ExecStart")).toMatch(/ import-images( |$)/);
  });

  it("the import service reaches what an import needs, with the example as shipped and with keyring_auto_renew_days on", () => {
    expect(unmet(importer(), importNeeds(config(EXAMPLE)))).toEqual([]);
    expect(unmet(importer(), importNeeds(config(enable(EXAMPLE, "keyring_auto_renew_days"))))).toEqual([]);
  });

  it("the server reaches what serving needs, cannot read the private keys nor change the tree", () => {
    const c = config(EXAMPLE);
    expect(unmet(server(false), serveNeeds(c))).toEqual([]);
    expect(accessOf(server(false), join(c.gpg_key_path, "image-signing/private.asc"))).toBe("none");
    expect(accessOf(server(false), join(c.publish_path, "channels.json"))).toBe("ro");
    // The example's other documented opt-in the server reads (issue 14.3), where it is shipped.
    if (/^# admin_token_file = /m.test(EXAMPLE)) {
      const withToken = config(enable(EXAMPLE, "admin_token_file"));
      expect(withToken.admin_token_file).toBeTruthy();
      expect(unmet(server(false), serveNeeds(withToken))).toEqual([]);
    }
  });

  it("opt-in: import_schedule plus the shipped drop-in can sign (and renew keyrings)", () => {
    const c = config(enable(enable(EXAMPLE, "import_schedule"), "keyring_auto_renew_days"));
    expect(c.import_schedule).toBeTruthy();
    expect(unmet(server(true), serveNeeds(c))).toEqual([]);
    // Without the drop-in the scheduled imports could not sign: the contradiction of issue 15.3.
    expect(unmet(server(false), serveNeeds(c)).join("\n")).toMatch(/gives none on .*image-signing\/private\.asc, needs ro/);
  });
});

describe("the sandbox model the checks above use", () => {
  it("follows systemd's precedence: deeper path wins, inaccessible hides all below, same path the stricter", () => {
    const u = parseUnit(
      "[Service]\nProtectSystem=strict\nProtectHome=yes\nPrivateTmp=yes\n" +
        "ReadWritePaths=/srv/a -/srv/b/rw \\\n  /srv/c\nReadOnlyPaths=/srv/a/ro /srv/c\nInaccessiblePaths=-/srv/b\n",
      "t.service",
    );
    expect(
      ["/usr/bin/x", "/srv/a", "/srv/a/x", "/srv/a/ro/x", "/srv/b/rw/x", "/srv/c/x", "/home/u/.ssh", "/tmp/x"].map((p) => accessOf(u, p)),
    ).toEqual(["ro", "rw", "rw", "ro", "none", "ro", "none", "rw"]);
    // A later empty assignment (a drop-in) empties the list.
    parseUnit("[Service]\nInaccessiblePaths=\n", "t.service.d/x.conf", u);
    expect(accessOf(u, "/srv/b/rw/x")).toBe("rw");
  });
});

describe("systemd-analyze verify", () => {
  const analyze = spawnSync("systemd-analyze", ["--version"], { encoding: "utf8" });
  // Only a machine without the binary skips (Debian: apt-get install systemd).
  it.skipIf(analyze.error !== undefined)("accepts the shipped units, with and without the opt-in drop-in", () => {
    for (const dropIns of [false, true]) {
      const dir = mkdtempSync(join(tmpdir(), "si-units-"));
      try {
        cpSync(UNITS, dir, { recursive: true, filter: (src) => dropIns || !src.endsWith(".service.d") });
        const files = readdirSync(dir).filter((n) => /\.(service|timer)$/.test(n));
        // verify checks that ExecStart's binary exists: point it at this node where there is
        // no /usr/bin/node (nvm, setup-node); nothing else is changed.
        if (!existsSync("/usr/bin/node")) {
          for (const f of files)
            writeFileSync(join(dir, f), readFileSync(join(dir, f), "utf8").replaceAll("/usr/bin/node", process.execPath));
        }
        const r = spawnSync("systemd-analyze", ["verify", "--man=no", ...files.map((f) => join(dir, f))], { encoding: "utf8" });
        // Unknown keys and bad values are warnings on stderr with exit status 0: none allowed.
        expect({ status: r.status, stderr: r.stderr }, `drop-ins: ${dropIns}`).toEqual({ status: 0, stderr: "" });
        expect(files.sort()).toEqual(["system-image-import.service", "system-image-import.timer", "system-image-server.service"]);
        if (dropIns) expect(existsSync(join(dir, "system-image-server.service.d/import-schedule.conf"))).toBe(true);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });

  it.skipIf(analyze.error !== undefined)("reports a misspelt directive (so the check above can fail)", () => {
    const dir = mkdtempSync(join(tmpdir(), "si-units-"));
    try {
      const text = readFileSync(join(UNITS, "system-image-server.service"), "utf8").replace("NoNewPrivileges=", "NoNewPrivilegs=");
      writeFileSync(join(dir, "system-image-server.service"), text.replaceAll("/usr/bin/node", process.execPath));
      const r = spawnSync("systemd-analyze", ["verify", "--man=no", join(dir, "system-image-server.service")], { encoding: "utf8" });
      expect(r.stderr).toMatch(/Unknown key 'NoNewPrivilegs'/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
