/**
 * Which keyrings an instance publishes, from which keys, signed by whom (server-reference
 * §1.4, §3.3). Pure: the plan is data, `buildKeyrings` (keyring-build.ts) applies it.
 */
import type { KeyName } from "./signer.js";

export interface KeyringSpec {
  name: KeyName;
  /** Key directories that must exist for this keyring to be built. */
  requires: KeyName[];
  /** Public keys that go into keyring.gpg (none for the blacklist). */
  members: KeyName[];
  signer: KeyName;
  /** keyring.json expiry in days from now; undefined = never. */
  expiryDays?: number;
}

export function keyringPlan(expiry: { imageSigningDays: number; deviceSigningDays: number }): KeyringSpec[] {
  return [
    { name: "archive-master", requires: ["archive-master"], members: ["archive-master"], signer: "archive-master" },
    { name: "image-master", requires: ["image-master", "archive-master"], members: ["image-master"], signer: "archive-master" },
    {
      name: "image-signing",
      requires: ["image-signing", "image-master"],
      members: ["image-signing"],
      signer: "image-master",
      expiryDays: expiry.imageSigningDays,
    },
    {
      name: "device-signing",
      requires: ["device-signing", "image-signing"],
      members: ["device-signing"],
      signer: "image-signing",
      expiryDays: expiry.deviceSigningDays,
    },
    { name: "blacklist", requires: ["blacklist", "image-master"], members: [], signer: "image-master" },
  ];
}

/** The key that must have signed keyring `name` (client-protocol §4.1). */
export function keyringSigner(name: KeyName): KeyName {
  return name === "archive-master" || name === "image-master"
    ? "archive-master"
    : name === "image-signing" || name === "blacklist"
      ? "image-master"
      : "image-signing";
}

export function expiryFrom(now: Date, days: number | undefined): number | undefined {
  return days ? Math.floor(now.getTime() / 1000) + days * 86400 : undefined;
}
