/**
 * The refusals of copy-image, tag-image and set-phased-percentage, with the reference's
 * exact messages (server-reference §9.2-§9.4). They are usage errors (exit 2, like
 * argparse's parser.error) and all happen before anything is written.
 */
import { UsageError } from "../errors.js";
import { aliasTarget, type ChannelsDoc } from "../model/channels.js";

export function requireChannel(doc: ChannelsDoc, name: string, message: string): void {
  if (!Object.hasOwn(doc, name)) throw new UsageError(`${message}: ${name}`);
}

export function requireDeviceIn(doc: ChannelsDoc, channel: string, device: string, message: string): void {
  if (!Object.hasOwn(doc[channel].devices, device)) throw new UsageError(`${message}: ${device}`);
}

/** An alias naming itself is a normal channel (§1.5). */
export function refuseAlias(doc: ChannelsDoc, channel: string, message: string): void {
  if (aliasTarget(doc, channel) !== undefined) throw new UsageError(message);
}

export function refuseRedirect(doc: ChannelsDoc, channel: string, message: string): void {
  if (Object.hasOwn(doc[channel], "redirect")) throw new UsageError(message);
}

/** `<Who> device is a redirect. Use original channel T instead.` */
export function refuseDeviceRedirect(doc: ChannelsDoc, channel: string, device: string, who: string): void {
  const entry = doc[channel].devices[device];
  if (typeof entry.redirect === "string")
    throw new UsageError(`${who} device is a redirect. Use original channel ${entry.redirect} instead.`);
}

export function refuseCommaTag(tag: string | undefined | null): void {
  if (tag != null && tag.includes(",")) throw new UsageError("Image tag cannot include the character ','.");
}
