/**
 * Keyring tarballs as a device and its recovery read them (client-protocol §4.2): an xz'd
 * tar with exactly `keyring.json` and `keyring.gpg`, no `./` prefix, a `type` equal to the
 * name, a numeric `expiry`, and keyring.json laid out with 4-space indentation, one key per
 * line, because the recovery greps `^    "type": ` and `^    "expiry": `.
 */
import { createReadStream } from "node:fs";
import { readTar } from "../archive/tar/index.js";
import { errorMessage } from "../errors.js";
import { defaultCodec } from "../io/xz.js";
import { readPublicKeys, type PublicKeyInfo } from "../pgp/keys.js";

export interface KeyringMeta {
  type?: unknown;
  expiry?: unknown;
  model?: unknown;
}

export interface InspectedKeyring {
  /** Member names in archive order. */
  members: string[];
  meta?: KeyringMeta;
  /** Primary RSA keys of keyring.gpg (what signatures are checked against). */
  keys: PublicKeyInfo[];
  /** Why the keyring cannot be used at all (unreadable archive, no keyring.gpg, ...). */
  fatal?: string;
  /** Defects a device or the recovery trips over; each one is an error. */
  defects: string[];
}

const MAX_MEMBER = 16 << 20;

async function readMembers(path: string): Promise<Map<string, Buffer> & { order: string[] }> {
  const members = Object.assign(new Map<string, Buffer>(), { order: [] as string[] });
  const input = createReadStream(path).pipe(defaultCodec().decompress());
  for await (const { header, body } of readTar(input)) {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of body) {
      size += (c as Buffer).length;
      // Keyrings are a few KB: refuse to buffer anything that is clearly not one.
      if (size > MAX_MEMBER) throw new Error(`member ${header.name} is larger than 16 MiB`);
      chunks.push(c as Buffer);
    }
    members.order.push(header.type === "file" ? header.name : `${header.name} (${header.type})`);
    if (header.type === "file") members.set(header.name, Buffer.concat(chunks));
  }
  return members;
}

/** Reads and judges one keyring tarball against the type its name or role demands. */
export async function inspectKeyring(path: string, expectedType: string, opts: { model?: string } = {}): Promise<InspectedKeyring> {
  const out: InspectedKeyring = { members: [], keys: [], defects: [] };
  let members: Awaited<ReturnType<typeof readMembers>>;
  try {
    members = await readMembers(path);
  } catch (err) {
    out.fatal = `cannot be read as an xz-compressed tar (${errorMessage(err)})`;
    return out;
  }
  out.members = members.order;
  const names = [...members.order].sort();
  if (names.join("\n") !== "keyring.gpg\nkeyring.json") {
    out.defects.push(`must hold exactly keyring.json and keyring.gpg, holds: ${members.order.join(", ") || "nothing"}`);
  }
  const json = members.get("keyring.json");
  if (json === undefined) out.defects.push("has no keyring.json: the client cannot tell its type");
  else {
    const text = json.toString("utf8");
    try {
      const meta = JSON.parse(text) as unknown;
      if (typeof meta !== "object" || meta === null || Array.isArray(meta)) throw new Error("not an object");
      out.meta = meta;
    } catch (err) {
      out.defects.push(`keyring.json is not a JSON object (${errorMessage(err)})`);
    }
    const m = out.meta;
    if (m) {
      if (m.type !== expectedType)
        out.defects.push(`keyring.json type is ${JSON.stringify(m.type)}, not "${expectedType}" (client: keyring type mismatch)`);
      if (m.expiry !== undefined && (typeof m.expiry !== "number" || !Number.isFinite(m.expiry))) {
        out.defects.push(`keyring.json expiry ${JSON.stringify(m.expiry)} is not a number (the client compares it numerically)`);
      }
      if (m.model !== undefined && m.model !== null && typeof m.model !== "string")
        out.defects.push(`keyring.json model ${JSON.stringify(m.model)} is not a string`);
      if (opts.model !== undefined && typeof m.model === "string" && m.model !== opts.model) {
        out.defects.push(
          `keyring.json model is "${m.model}" but the keyring is for device "${opts.model}" (client: keyring model mismatch)`,
        );
      }
      // The recovery's own parser (system-image-upgrader install_keyring).
      if (!/^ {4}"type": /m.test(text))
        out.defects.push('keyring.json has no line starting with 4 spaces and "type": the recovery rejects it ("Missing keyring type")');
      if (typeof m.expiry === "number" && !/^ {4}"expiry": /m.test(text))
        out.defects.push('keyring.json hides its expiry from the recovery (no 4-space "expiry" line)');
    }
  }
  const gpg = members.get("keyring.gpg");
  if (gpg === undefined) {
    out.fatal = "has no keyring.gpg";
    return out;
  }
  try {
    out.keys = await readPublicKeys(gpg);
  } catch (err) {
    out.fatal = `keyring.gpg is not an OpenPGP keyring (${errorMessage(err)})`;
    return out;
  }
  if (out.keys.length === 0 && expectedType !== "blacklist") out.defects.push("keyring.gpg holds no RSA key: nothing it signs can verify");
  return out;
}

/** Expiry verdict: null when fine, else the problem and whether it is an error. */
export function expiryProblem(expiry: unknown, now: Date, warnDays: number): { error: boolean; message: string } | null {
  if (typeof expiry !== "number") return null;
  const left = expiry - now.getTime() / 1000;
  const when = new Date(expiry * 1000).toISOString().replace(".000Z", "Z");
  if (left < 0) return { error: true, message: `expired on ${when}: devices refuse it (client: expired keyring timestamp)` };
  if (left < warnDays * 86400) {
    const days = Math.floor(left / 86400);
    return { error: false, message: `expires in ${days} day${days === 1 ? "" : "s"} (${when}): rebuild and publish it before then` };
  }
  return null;
}
