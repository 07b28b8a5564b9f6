/**
 * channels.json and index.json judged the way deployed clients read them (client-protocol §5,
 * §11): every shape a client asserts on, and every path rule the recovery and the other
 * flashing tools depend on. Pure: text in, findings out.
 */
import type { ChannelsDoc } from "../model/channels.js";
import type { FileEntry, Image, IndexDoc } from "../model/index-doc.js";
import { publishedPathProblem } from "../model/published-path.js";
import { getCandidates, imageHash, pathLabel } from "./client-path.js";

export interface Finding {
  error: boolean;
  message: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v);
const basename = (p: string) => p.slice(p.lastIndexOf("/") + 1);

/** JSON text as the client decodes it (UTF-8, no BOM); findings for what it refuses. */
function decode(text: string, out: Finding[]): unknown {
  if (text.charCodeAt(0) === 0xfeff) out.push({ error: true, message: "starts with a byte-order mark: the client cannot parse it" });
  try {
    return JSON.parse(text.replace(/^\ufeff/, ""));
  } catch (err) {
    out.push({ error: true, message: `is not valid JSON (${(err as Error).message})` });
    return undefined;
  }
}

/** A URL path in a document: host-absolute, never `//x` (urljoin reads a host), no `..`. */
export function pathProblem(path: unknown, field: string): string | null {
  if (typeof path !== "string" || path === "") return `${field} is not a path`;
  if (/^https?:\/\//.test(path)) return null;
  if (path.startsWith("//")) return `${field} ${path} starts with "//": urljoin turns it into a host name`;
  if (!path.startsWith("/"))
    return `${field} ${path} is relative: other flashing tools concatenate it to the server URL, so start it with "/"`;
  if (path.split("/").some((s) => s === "..")) return `${field} ${path} contains ".."`;
  return null;
}

export function checkChannels(text: string): { doc?: ChannelsDoc; findings: Finding[] } {
  const findings: Finding[] = [];
  const value = decode(text, findings);
  if (value === undefined) return { findings };
  if (!isObject(value)) return { findings: [...findings, { error: true, message: "is not a JSON object" }] };
  const doc: ChannelsDoc = {};
  for (const [name, ch] of Object.entries(value)) {
    if (["keys", "get", "update"].includes(name))
      findings.push({ error: false, message: `channel name "${name}" shadows a method of the client's Bag class` });
    if (!isObject(ch) || !isObject(ch.devices)) {
      findings.push({
        error: true,
        message: `channel "${name}" has no "devices" object: the client fails with KeyError for every channel and device`,
      });
      continue;
    }
    if (ch.hidden !== undefined && ch.hidden !== null && typeof ch.hidden !== "boolean") {
      findings.push({
        error: true,
        message: `channel "${name}": "hidden" is ${JSON.stringify(ch.hidden)}, not a boolean (the client asserts)`,
      });
    }
    for (const k of ["alias", "redirect"] as const) {
      if (ch[k] !== undefined && typeof ch[k] !== "string")
        findings.push({ error: true, message: `channel "${name}": "${k}" is not a string` });
    }
    const devices: ChannelsDoc[string]["devices"] = {};
    for (const [dev, entry] of Object.entries(ch.devices)) {
      const where = `channel "${name}" device "${dev}"`;
      if (!isObject(entry) || typeof entry.index !== "string") {
        findings.push({ error: true, message: `${where} has no "index" path` });
        continue;
      }
      const bad = pathProblem(entry.index, `${where}: index`);
      if (bad) findings.push({ error: true, message: bad });
      if (entry.keyring !== undefined) {
        const kr = entry.keyring;
        if (!isObject(kr) || typeof kr.path !== "string" || typeof kr.signature !== "string") {
          findings.push({ error: true, message: `${where}: "keyring" needs string "path" and "signature"` });
          continue;
        }
        for (const f of ["path", "signature"] as const) {
          const p = pathProblem(kr[f], `${where}: keyring ${f}`);
          if (p) findings.push({ error: true, message: p });
        }
      }
      if (!bad) devices[dev] = entry as ChannelsDoc[string]["devices"][string];
    }
    doc[name] = { ...(ch as object), devices };
  }
  return { doc, findings };
}

const GENERATED_AT =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{2}) (\d{2}):(\d{2}):(\d{2}) UTC (\d{4})$/;

/** `Sun Nov 29 05:43:07 UTC 2026`, what the client's strptime accepts and the reference writes. */
export function generatedAtProblem(v: unknown): string | null {
  if (typeof v !== "string") return "global.generated_at is missing (the client needs it)";
  const m = GENERATED_AT.exec(v);
  const bad = `global.generated_at "${v}" is not like "Sun Nov 29 05:43:07 UTC 2026" (English names, the word UTC): the client crashes`;
  if (!m) return bad;
  const [day, h, min, s] = [m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number];
  return day < 1 || day > 31 || h > 23 || min > 59 || s > 61 ? bad : null;
}

function checkFile(f: unknown, where: string, out: Finding[]): f is FileEntry {
  if (!isObject(f)) {
    out.push({ error: true, message: `${where} is not an object` });
    return false;
  }
  const before = out.length;
  const p = pathProblem(f.path, `${where} path`);
  if (p) out.push({ error: true, message: p });
  // The rule the server publishes by (issue 13 #2), on any tree, the reference's included.
  const unsafe = !p && typeof f.path === "string" && !/^https?:\/\//.test(f.path) ? publishedPathProblem(f.path) : undefined;
  if (unsafe) {
    out.push({
      error: true,
      message: `${where} path ${JSON.stringify(f.path)} is unsafe: ${unsafe} (devices store files by basename, the recovery reads them from ubuntu_command lines, si serve refuses dot names)`,
    });
  }
  if (typeof f.path === "string" && f.signature !== `${f.path}.asc`) {
    out.push({
      error: true,
      message: `${where} signature ${JSON.stringify(f.signature)} is not path + ".asc" (the recovery runs gpg --verify ${basename(f.path)}.asc)`,
    });
  }
  if (typeof f.checksum !== "string" || !/^[0-9a-f]{64}$/.test(f.checksum))
    out.push({ error: true, message: `${where} checksum ${JSON.stringify(f.checksum)} is not a lowercase SHA-256 hex` });
  if (!isInt(f.size) || f.size < 0) out.push({ error: true, message: `${where} size ${JSON.stringify(f.size)} is not a byte count` });
  if (!isInt(f.order)) out.push({ error: true, message: `${where} order ${JSON.stringify(f.order)} is not an integer` });
  return out.length === before;
}

function checkImage(img: unknown, i: number, out: Finding[]): img is Image {
  const where = `image #${i}`;
  if (!isObject(img)) {
    out.push({ error: true, message: `${where} is not an object` });
    return false;
  }
  const before = out.length;
  const v16 = (v: unknown) => isInt(v) && v >= 1 && v <= 65535;
  if (img.type !== "full" && img.type !== "delta")
    out.push({ error: true, message: `${where} type ${JSON.stringify(img.type)} is neither "full" nor "delta" (the client asserts)` });
  if (!v16(img.version))
    out.push({
      error: true,
      message: `${where} version ${JSON.stringify(img.version)} is not an integer 1..65535 (client: 16 bit unsigned version numbers only)`,
    });
  if (img.type === "delta" && !v16(img.base))
    out.push({ error: true, message: `${where} (delta) base ${JSON.stringify(img.base)} is not an integer 1..65535` });
  if (img.minversion !== undefined && !isInt(img.minversion)) out.push({ error: true, message: `${where} minversion is not an integer` });
  if (img.bootme !== undefined && typeof img.bootme !== "boolean") out.push({ error: true, message: `${where} bootme is not a boolean` });
  const pct = img["phased-percentage"];
  if (pct !== undefined && !(isInt(pct) && pct >= 0 && pct <= 100))
    out.push({ error: true, message: `${where} phased-percentage ${JSON.stringify(pct)} is not an integer 0..100` });
  const files = img.files ?? [];
  if (!Array.isArray(files)) out.push({ error: true, message: `${where} files is not a list` });
  else files.forEach((f, j) => checkFile(f, `${where} (version ${String(img.version)}) file #${j}`, out));
  return out.length === before;
}

/**
 * Two different URLs with one basename along an upgrade path collide in the device's cache
 * (client: DuplicateDestinationError). Every build a device can be on is tried.
 */
export function basenameClashes(images: Image[]): string[] {
  const builds = new Set<number>([0]);
  for (const img of images) {
    builds.add(img.version);
    if (img.type === "delta" && img.base !== undefined) builds.add(img.base);
  }
  const out = new Set<string>();
  for (const build of builds) {
    for (const path of getCandidates(images, build)) {
      const seen = new Map<string, string>();
      for (const img of path) {
        for (const f of img.files) {
          const other = seen.get(basename(f.path));
          if (other !== undefined && other !== f.path) {
            out.add(
              `${other} and ${f.path} share the basename ${basename(f.path)} along upgrade path ${pathLabel(path)} (client: DuplicateDestinationError)`,
            );
          }
          seen.set(basename(f.path), f.path);
        }
      }
    }
  }
  return [...out];
}

export function checkIndex(text: string): { doc?: IndexDoc; findings: Finding[] } {
  const findings: Finding[] = [];
  const value = decode(text, findings);
  if (value === undefined) return { findings };
  if (!isObject(value) || !isObject(value.global) || !Array.isArray(value.images)) {
    return { findings: [...findings, { error: true, message: 'needs a "global" object and an "images" list' }] };
  }
  const gen = generatedAtProblem(value.global.generated_at);
  if (gen) findings.push({ error: true, message: gen });
  const good: Image[] = [];
  value.images.forEach((img, i) => {
    if (checkImage(img, i, findings)) good.push(img);
  });
  const seen = new Map<number, number>();
  good.forEach((img, i) => {
    const h = imageHash(img);
    if (seen.has(h)) {
      const what = img.type === "delta" ? `delta ${img.base}→${img.version}` : `full ${img.version}`;
      findings.push({ error: true, message: `${what} is listed twice (the client keeps only one of them)` });
    }
    seen.set(h, i);
  });
  for (const clash of basenameClashes(good)) findings.push({ error: true, message: clash });
  return { doc: { ...(value as IndexDoc), images: good }, findings };
}
