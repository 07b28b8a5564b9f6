/**
 * The etc/config `si init` writes (src/instance/config-text.ts): the shipped template with the
 * instance's values, every other setting as the template has it, no example channel or
 * mirror live, and a file that ends inside [global] so the walkthrough's appended
 * `channels = ...` and [channel_*] sections land where they must.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseConfigText } from "../../src/config/load.js";
import { renderInstanceConfig, type InstanceValues } from "../../src/instance/config-text.js";
import { REPO } from "../helpers/instance.js";

const values: InstanceValues = {
  base_path: "/srv/x",
  public_fqdn: "ota.example.org",
  public_http_port: 8080,
  public_https_port: 0,
  admin_port: 9001,
};
const date = new Date("2026-12-06T00:00:00Z");
const template = readFileSync(join(REPO, "etc/config.example"), "utf8");

describe("si init's etc/config", () => {
  it("is the template with the instance's values, no channel and no mirror", () => {
    const text = renderInstanceConfig(template, values, { selfSigned: true, date });
    const conf = parseConfigText(text, "/srv/x/etc/config", {});
    const shipped = parseConfigText(template, "/srv/x/etc/config", {});
    expect(conf).toMatchObject({
      base_path: "/srv/x",
      public_fqdn: "ota.example.org",
      public_http_port: "8080",
      public_https_port: "0",
      admin_port: 9001,
    });
    expect(conf.gpg_key_path).toBe("/srv/x/secret/gpg/keys");
    expect([conf.channels.size, Object.keys(conf.mirrors)]).toEqual([0, []]);
    // Everything else as shipped.
    const rest = (c: typeof conf) => {
      const { path, base_path, public_fqdn, public_http_port, public_https_port, admin_port, channels, mirrors, ...others } = c;
      void [path, base_path, public_fqdn, public_http_port, public_https_port, admin_port, channels, mirrors];
      return JSON.stringify(others).replaceAll(shipped.base_path, "/srv/x");
    };
    expect(rest(conf)).toBe(rest(shipped));
    // The template's documentation stays; its examples are still there, commented out.
    expect(text).toContain("# [channel_16.04/devel]");
    expect(text).toContain("tls_cert = secret/tls/cert.pem");
    expect(text).toContain("# si init made a self-signed certificate for ota.example.org here");
    expect(renderInstanceConfig(template, values, { selfSigned: false, date })).toContain("# si init made no certificate (--no-tls)");
  });

  it("ends inside [global]: appended channels and sections are read as the README says", () => {
    const text = renderInstanceConfig(template, values, { selfSigned: true, date });
    const conf = parseConfigText(
      `${text}channels = devel\n\n[channel_devel]\ntype = auto\nfiles = version\nfile_version = version\n`,
      "c",
      {},
    );
    expect([...conf.channels.keys()]).toEqual(["devel"]);
    expect(conf.channels.get("devel")).toMatchObject({ type: "auto", files: [{ name: "version", generator: "version", arguments: [] }] });
  });

  it("sets a key the template only shows commented out, and adds one it lacks, in [global]", () => {
    const t =
      "# head\n[global]\n# admin_port = 8090\nbase_path = /old\n# Public name: see the docs\nchannels = a\n\n[channel_a]\ntype = manual\n";
    const text = renderInstanceConfig(t, values, { selfSigned: true, date });
    const conf = parseConfigText(text, "c", {});
    expect(conf).toMatchObject({ base_path: "/srv/x", admin_port: 9001, public_fqdn: "ota.example.org", public_http_port: "8080" });
    expect(conf.channels.size).toBe(0);
    expect(text).toContain("# Public name: see the docs\n"); // prose that looks like `key:` is left alone
    expect(text).toContain("# [channel_a]\n# type = manual\n");
  });
});
