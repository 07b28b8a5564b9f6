/**
 * utils/check-latest of the reference (server-reference §9.11): what a channel offers a
 * device, read from `<server>/<channel>/<device>/index.json` like an operator would.
 * Output lines are the reference's, byte for byte.
 */
import { fetch, type Dispatcher } from "undici";
import { SiError } from "../errors.js";
import type { Image, IndexDoc } from "../model/index-doc.js";

export const CHECK_LATEST_DEFAULTS = { server: "https://system-image.sageteamobile.com", channel: "devel-proposed" };

/** `<version> (<details>)`: from a description holding `version=`, else from file names. */
export function longVersion(img: Image, device: string): string {
  const description = typeof img.description === "string" ? img.description : "";
  if (description.includes("version=")) {
    const details = description.split(",").filter((e) => !e.startsWith("version="));
    return `${img.version} (${details.join(", ")})`;
  }
  const details: string[] = [];
  for (const f of img.files ?? []) {
    const name = f.path.split("/").pop() ?? "";
    // file_name.split("-")[1].split(".full.")[0].split(".delta.")[0]
    const version = () => (name.split("-")[1] ?? "").split(".full.")[0].split(".delta.")[0];
    if (name.startsWith("ubuntu-")) details.push(`ubuntu=${version()}`);
    else if (name.startsWith(`${device}-`)) details.push(`${device}=${version()}`);
    else if (name.startsWith("custom-")) details.push(`custom=${version()}`);
  }
  return `${img.version} (${details.join(", ")})`;
}

/** The report lines for one device index. */
export function checkLatestLines(index: IndexDoc, device: string): string[] {
  // Python's sorted() is stable: equal versions keep their index order.
  const fulls = index.images.filter((i) => i.type === "full").sort((a, b) => a.version - b.version);
  const latest = fulls[fulls.length - 1];
  if (!latest) return ["No full image available in channel."];
  const lines = [`Current full image: ${longVersion(latest, device)}`];
  const deltas = index.images.filter((i) => i.type === "delta" && i.version === latest.version);
  if (deltas.length > 0) {
    lines.push("Available deltas:");
    for (const d of deltas) {
      const base = index.images.find((i) => i.type === "full" && i.version === d.base);
      if (base) lines.push(` - From '${longVersion(base, device)}' to '${longVersion(latest, device)}'`);
    }
  }
  return lines;
}

/**
 * Fetches `<server>/<channel>/<device>/index.json` (plain concatenation, like the reference).
 * `dispatcher`: an undici Agent, e.g. one trusting an extra CA (`si check-latest --ca`).
 */
export async function fetchDeviceIndex(
  server: string,
  channel: string,
  device: string,
  opts: { dispatcher?: Dispatcher } = {},
): Promise<IndexDoc> {
  const url = `${server}/${channel}/${device}/index.json`;
  let res: Awaited<ReturnType<typeof fetch>>;
  try {
    res = await fetch(url, { redirect: "follow", ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}) });
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message;
    throw new SiError(`Cannot fetch ${url}: ${cause ?? (err instanceof Error ? err.message : String(err))}`);
  }
  if (!res.ok) throw new SiError(`Cannot fetch ${url}: HTTP ${res.status} ${res.statusText}`);
  const text = await res.text();
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new SiError(`Cannot read ${url}: invalid JSON (${(err as Error).message})`, "ValueError");
  }
  if (typeof doc !== "object" || doc === null || !Array.isArray((doc as IndexDoc).images)) {
    throw new SiError(`Cannot read ${url}: no "images" list`, "KeyError");
  }
  return doc as IndexDoc;
}
