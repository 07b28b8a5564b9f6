/**
 * `npm run bench -- --debootstrap [--size minbase|phone]`: a Debian bookworm root made by
 * `debootstrap` (installed with apt-get when missing) and its next version, like a rootfs
 * and its next OTA build, from the mirrors of this machine's own apt sources (bench/apt-mirror.ts).
 *
 * - minbase: `--variant=minbase`; v2 = v1 + a few packages.
 * - phone (issue 19, ~900 MB): minbase + a phone-like package set (systemd, NetworkManager,
 *   Qt5 QML/Quick, GStreamer, PulseAudio, BlueZ, oFono, GTK3, python3, perl; the set of
 *   ../shared/reference/perf-data/01-debootstrap.sh); v2 = v1 + `apt-get upgrade` from the
 *   -updates and -security suites + a few packages added and one removed, the real shape of
 *   an OTA (02-make-rootfs-b.sh).
 *
 * Packed like the other inputs: GNU tar, sorted, numeric owners, xattrs (file capabilities
 * such as ping's, as 03-make-tarballs.sh), everything under `system/`,
 * then `xz -6 -T0` (what a build farm's `tar -cJ` gives). Staging trees are removed; the
 * tarballs are cached in the directory given (bench-work/debootstrap-<size>).
 */
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { aptMirrors } from "./apt-mirror.js";

export type DebootstrapSize = "minbase" | "phone";
export const DEBOOTSTRAP_SIZES: DebootstrapSize[] = ["minbase", "phone"];

const RELEASE = "bookworm";
/** The phone-like package set (01-debootstrap.sh). */
const PHONE = [
  "libpam-systemd",
  "dbus-user-session",
  "systemd",
  "systemd-sysv",
  "dbus",
  "udev",
  "network-manager",
  "python3",
  "perl",
  "openssh-server",
  "sudo",
  "locales",
  "ca-certificates",
  "libqt5gui5",
  "libqt5qml5",
  "libqt5quick5",
  "qml-module-qtquick2",
  "gstreamer1.0-plugins-base",
  "libglib2.0-bin",
  "pulseaudio",
  "bluez",
  "ofono",
  "libgtk-3-0",
  "fonts-dejavu-core",
  "iproute2",
  "iputils-ping",
  "less",
  "nano",
];
/** What v2 changes, per size. */
const NEXT: Record<DebootstrapSize, { upgrade: boolean; add: string[]; purge: string[] }> = {
  minbase: { upgrade: false, add: ["python3", "openssh-client", "curl", "less", "vim-tiny", "iproute2", "xz-utils"], purge: [] },
  phone: { upgrade: true, add: ["vim-tiny", "curl", "htop", "strace", "libqt5multimedia5", "qml-module-qtmultimedia"], purge: ["nano"] },
};

/** Whether `path` exists, a dangling symlink included. */
function present(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function run(cmd: string, args: string[], env?: NodeJS.ProcessEnv): void {
  execFileSync(cmd, args, { stdio: ["ignore", "inherit", "inherit"], env: { ...process.env, ...env } });
}

function pack(stage: string, out: string): void {
  const tmp = `${out}.part`;
  execFileSync(
    "sh",
    [
      "-c",
      `tar --format=gnu --numeric-owner --sort=name --xattrs --transform 's,^\\.,system,' -C '${stage}' -cf - . | xz -6 -T0 > '${tmp}' && mv '${tmp}' '${out}'`,
    ],
    {
      stdio: "inherit",
    },
  );
}

/** Runs `script` in a chroot of `stage` with /proc mounted (best effort) and services kept from starting. */
function inChroot(stage: string, script: string): void {
  const policy = join(stage, "usr/sbin/policy-rc.d");
  writeFileSync(policy, "#!/bin/sh\nexit 101\n");
  chmodSync(policy, 0o755);
  let mounted = false;
  try {
    run("mount", ["-t", "proc", "proc", join(stage, "proc")]);
    mounted = true;
  } catch {
    /* containers may refuse: apt runs without /proc too */
  }
  try {
    run("chroot", [stage, "sh", "-ec", script], { DEBIAN_FRONTEND: "noninteractive", LC_ALL: "C" });
  } finally {
    if (mounted) run("umount", [join(stage, "proc")]);
    rmSync(policy, { force: true });
  }
}

/** Makes (or reuses) `dir/a.tar.xz` (v1) and `dir/b.tar.xz` (v2); throws if debootstrap cannot run. */
export function makeDebootstrapPair(
  dir: string,
  size: DebootstrapSize,
  log: (s: string) => void,
): { v1: string; v2: string; summary: string } {
  const v1 = join(dir, "a.tar.xz");
  const v2 = join(dir, "b.tar.xz");
  const next = NEXT[size];
  const summary =
    `debootstrap --variant=minbase ${RELEASE}${size === "phone" ? " + phone package set" : ""}; v2 = v1` +
    `${next.upgrade ? ` + apt-get upgrade (${RELEASE}-updates, -security)` : ""} + ${next.add.join(" ")}${next.purge.length ? ` - ${next.purge.join(" ")}` : ""}`;
  if (existsSync(v1) && existsSync(v2)) return { v1, v2, summary };
  const mirrors = aptMirrors(RELEASE);
  if (next.upgrade && !mirrors.security)
    throw new Error(`Cannot build the ${size} pair: the apt sources name no ${RELEASE}-security mirror`);
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
    const include = size === "phone" ? [`--include=${PHONE.join(",")}`] : [];
    log(`debootstrap ${RELEASE} (${size}) into ${s1} from ${mirrors.main}`);
    run("debootstrap", ["--variant=minbase", ...include, RELEASE, s1, mirrors.main]);
    run("sh", ["-c", `rm -rf '${s1}'/var/cache/apt/archives/*.deb '${s1}'/var/lib/apt/lists/*`]);
    mkdirSync(join(s1, "var/lib/apt/lists/partial"), { recursive: true });
    log(`packing ${v1}`);
    pack(s1, v1);
    run("cp", ["-a", s1, s2]);
    // Name resolution for apt inside the chroot; v1's own file goes back afterwards.
    const resolv = join(s2, "etc/resolv.conf");
    const keptResolv = present(resolv) ? `${resolv}.si-bench` : undefined;
    if (keptResolv) run("mv", [resolv, keptResolv]);
    copyFileSync("/etc/resolv.conf", resolv);
    const sources = [
      `deb ${mirrors.main} ${RELEASE} main`,
      `deb ${mirrors.main} ${RELEASE}-updates main`,
      ...(mirrors.security ? [`deb ${mirrors.security} ${RELEASE}-security main`] : []),
    ];
    writeFileSync(join(s2, "etc/apt/sources.list"), `${sources.join("\n")}\n`);
    log(
      `v2: ${next.upgrade ? "apt-get upgrade, " : ""}install ${next.add.join(" ")}${next.purge.length ? `, purge ${next.purge.join(" ")}` : ""}`,
    );
    inChroot(
      s2,
      [
        "apt-get update",
        ...(next.upgrade ? ["apt-get -y upgrade"] : []),
        `apt-get -y install --no-install-recommends ${next.add.join(" ")}`,
        ...(next.purge.length ? [`apt-get -y purge ${next.purge.join(" ")}`] : []),
        "apt-get clean",
        "rm -rf /var/lib/apt/lists/*",
        "mkdir -p /var/lib/apt/lists/partial",
      ].join("\n"),
    );
    rmSync(resolv, { force: true });
    if (keptResolv) run("mv", [keptResolv, resolv]);
    log(`packing ${v2}`);
    pack(s2, v2);
  } finally {
    rmSync(s1, { recursive: true, force: true });
    rmSync(s2, { recursive: true, force: true });
  }
  return { v1, v2, summary };
}
