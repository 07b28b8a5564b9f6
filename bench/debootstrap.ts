/**
 * `npm run bench -- --debootstrap`: a Debian bookworm minbase root made by `debootstrap`
 * (installed with apt-get when missing; it needs the Debian mirror) and a copy with a few
 * more packages installed in a chroot, like a rootfs and its next build. Packed like the
 * /usr inputs: GNU tar under `system/`, then `xz -6 -T0`. Staging trees are removed.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";

const MIRROR = "http://deb.debian.org/debian";
/** What v2 adds: a few common packages (about what a next rootfs build brings). */
const EXTRA = ["python3", "openssh-client", "curl", "less", "vim-tiny", "iproute2", "xz-utils"];

function run(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ["ignore", "inherit", "inherit"] });
}

function pack(stage: string, out: string): void {
  const tmp = `${out}.part`;
  execFileSync("sh", ["-c", `tar --format=gnu --numeric-owner --sort=name --transform 's,^\\.,system,' -C '${stage}' -cf - . | xz -6 -T0 > '${tmp}' && mv '${tmp}' '${out}'`], {
    stdio: "inherit",
  });
}

/** Makes (or reuses) `dir/rootfs-v1.tar.xz` and `dir/rootfs-v2.tar.xz`; throws if debootstrap cannot run. */
export function makeDebootstrapPair(dir: string, log: (s: string) => void): { v1: string; v2: string; summary: string } {
  const v1 = join(dir, "rootfs-v1.tar.xz");
  const v2 = join(dir, "rootfs-v2.tar.xz");
  const summary = `debootstrap --variant=minbase bookworm; v2 adds ${EXTRA.join(" ")}`;
  if (existsSync(v1) && existsSync(v2)) return { v1, v2, summary };
  if (!existsSync("/usr/sbin/debootstrap")) {
    log("installing debootstrap with apt-get");
    run("apt-get", ["install", "-y", "--no-install-recommends", "debootstrap"]);
  }
  mkdirSync(dir, { recursive: true });
  const s1 = join(dir, "stage-v1");
  const s2 = join(dir, "stage-v2");
  rmSync(s1, { recursive: true, force: true });
  rmSync(s2, { recursive: true, force: true });
  try {
    log(`debootstrap bookworm into ${s1} (from ${MIRROR})`);
    run("debootstrap", ["--variant=minbase", "bookworm", s1, MIRROR]);
    run("rm", ["-rf", join(s1, "var/cache/apt/archives"), join(s1, "var/lib/apt/lists")]);
    mkdirSync(join(s1, "var/cache/apt/archives/partial"), { recursive: true });
    mkdirSync(join(s1, "var/lib/apt/lists/partial"), { recursive: true });
    pack(s1, v1);
    run("cp", ["-a", s1, s2]);
    log(`installing ${EXTRA.join(" ")} in a chroot copy`);
    run("chroot", [s2, "sh", "-c", `apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${EXTRA.join(" ")} && apt-get clean && rm -rf /var/lib/apt/lists/*`]);
    pack(s2, v2);
  } finally {
    rmSync(s1, { recursive: true, force: true });
    rmSync(s2, { recursive: true, force: true });
  }
  return { v1, v2, summary };
}
