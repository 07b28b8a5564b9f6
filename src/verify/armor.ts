/**
 * Is an `.asc` file itself intact? A signature that does not verify means "the file changed"
 * or "the signature changed"; the armour's CRC-24 (RFC 4880 §6.1), which our signer and GnuPG
 * both write, tells the two apart, so verify-tree can name the file that is actually damaged.
 */

const BEGIN = "-----BEGIN PGP SIGNATURE-----";
const END = "-----END PGP SIGNATURE-----";
const BASE64_LINE = /^[A-Za-z0-9+/]*={0,2}$/;
const HEADER_LINE = /^[A-Za-z][A-Za-z0-9-]*: /;

export function crc24(data: Uint8Array): number {
  let crc = 0xb704ce;
  for (const byte of data) {
    crc ^= byte << 16;
    for (let i = 0; i < 8; i++) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= 0x1864cfb;
    }
  }
  return crc & 0xffffff;
}

/**
 * Why the armour of `text` is damaged, or null when it is well-formed and its CRC-24 (when
 * present) matches the decoded packets.
 */
export function armorDamage(text: string): string | null {
  const lines = text.split(/\r?\n/);
  let i = 0;
  while (i < lines.length && lines[i].trim() === "") i++;
  if (lines[i] !== BEGIN) return `it does not start with "${BEGIN}"`;
  i++;
  // Armour headers ("Version: ...", "Comment: ...") end at the first empty line.
  while (i < lines.length && lines[i] !== "") {
    if (!HEADER_LINE.test(lines[i])) return `line ${i + 1} is neither an armour header nor the blank line before the data`;
    i++;
  }
  if (i >= lines.length) return "it has no blank line before the signature data";
  i++;
  const body: string[] = [];
  let crcLine: string | undefined;
  for (; i < lines.length && lines[i] !== END; i++) {
    const line = lines[i];
    if (crcLine !== undefined) return `line ${i + 1} follows the checksum line`;
    if (line.startsWith("=") && line.length === 5) crcLine = line.slice(1);
    else if (!BASE64_LINE.test(line)) return `line ${i + 1} is not base64`;
    else body.push(line);
  }
  if (i >= lines.length) return `it does not end with "${END}"`;
  if (lines.slice(i + 1).some((l) => l.trim() !== "")) return `there is text after "${END}"`;
  const b64 = body.join("");
  if (b64.length % 4 !== 0 || /=[^=]/.test(b64)) return "its base64 data is malformed";
  const packets = Buffer.from(b64, "base64");
  if (packets.length === 0) return "it holds no signature data";
  // Changed padding bits decode to the same bytes: still a changed file, so say so.
  if (packets.toString("base64") !== b64) return "its base64 data is not canonical";
  if (crcLine !== undefined) {
    if (!/^[A-Za-z0-9+/]{4}$/.test(crcLine)) return "its checksum line is malformed";
    const want = Buffer.from(crcLine, "base64").readUIntBE(0, 3);
    if (crc24(packets) !== want) return "its CRC-24 checksum does not match its data";
  }
  return null;
}
