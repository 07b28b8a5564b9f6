/**
 * Real mirror endpoints for the mirror tests (issue 16): sshd, nginx over a directory, rclone
 * serve webdav, a byte-counting TCP proxy, and `addMirrors` for an instance's config. The code
 * is in bench/mirror-servers.ts, which `npm run bench:mirror` shares.
 */
export * from "../../bench/mirror-servers.js";
