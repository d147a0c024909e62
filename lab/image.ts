// The lab's guest image: Debian bookworm from Debian's packages with cloud-init (NoCloud), openssh-server,
// qemu-guest-agent and a cloud kernel booted directly (kernel + initrd next to the qcow2). Built once per recipe:
// the cache key is a hash of the recipe below, so a recipe change builds a new image.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { mkdir, rm, stat, writeFile, copyFile, rename } from "node:fs/promises";
import * as path from "node:path";
import { run } from "../host/runner";
import { LAB_DIR } from "./layout";

export const RECIPE = {
  suite: "bookworm",
  packages: [
    "linux-image-cloud-amd64", "systemd-sysv", "udev", "kmod", "cloud-init", "openssh-server", "qemu-guest-agent",
    "sudo", "ifupdown", "isc-dhcp-client", "iproute2", "netbase", "iputils-ping", "procps", "dbus", "python3",
  ],
  sizeGiB: 2,
  cloudCfg: [
    "datasource_list: [NoCloud, None]",
    "locale: false", // no locales package: cc_locale would fail and `cloud-init status` would say error
    "ssh_genkeytypes: [ed25519]", // faster host-key generation under TCG
    "growpart: {mode: off}", // the root fs has no partition table; resize_rootfs still grows it
    // Debian's module lists without what this image has nothing for (no grub, snap, byobu, config managers, RMC): under
    // TCG grub-dpkg alone costs 2 s of every first boot (debconf-set-selections). Everything user-data can ask of a
    // lab guest (users, keys, write_files, bootcmd, runcmd, packages, apt, scripts) stays.
    "cloud_config_modules: [ssh-import-id, keyboard, locale, set-passwords, apt-pipelining, apt-configure, ntp, timezone, runcmd]",
    "cloud_final_modules: [package-update-upgrade-install, write-files-deferred, scripts-vendor, scripts-per-once, " +
      "scripts-per-boot, scripts-per-instance, scripts-user, keys-to-console, phone-home, final-message, power-state-change]",
    "",
  ].join("\n"),
  // already what user-data's `ssh_pwauth: false` asks, in the drop-in cloud-init writes it to: cloud-init then finds
  // nothing to change and does not restart sshd in the middle of the first boot (1.5 s under TCG)
  sshdConfig: { file: "etc/ssh/sshd_config.d/50-cloud-init.conf", content: "PasswordAuthentication no\n" },
  fstab: "LABEL=rootfs / ext4 defaults,errors=remount-ro 0 1\n",
  // e2scrub_reap (e2fsprogs) spends ~16 s of the guest's one vCPU at every boot under TCG, beside the boot's critical
  // path; the lab's guests have no LVM snapshots for it to reap
  // quiet: the kernel's and systemd's boot messages go out byte by byte through an emulated UART; errors still do
  cmdline: "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet systemd.mask=e2scrub_reap.service",
};

export interface Image {
  dir: string;
  qcow2: string;
  kernel: string;
  initrd: string;
  cmdline: string;
  sha256: string;
  sizeBytes: number;
  buildSeconds: number;
}

export function imageKey(): string {
  return createHash("sha256").update(JSON.stringify(RECIPE)).digest("hex").slice(0, 16);
}

export function imagePaths(): { dir: string; manifest: string } {
  const dir = path.join(LAB_DIR, "images", imageKey());
  return { dir, manifest: path.join(dir, "image.json") };
}

export function cachedImage(): Image | undefined {
  const { manifest } = imagePaths();
  return existsSync(manifest) ? (JSON.parse(readFileSync(manifest, "utf8")) as Image) : undefined;
}

function mirror(): string {
  const src = readFileSync("/etc/apt/sources.list.d/debian.sources", "utf8");
  const m = /^URIs:\s*(\S+)/m.exec(src);
  return m ? m[1] : "http://deb.debian.org/debian";
}

export async function ensureImage(log: (s: string) => void = console.log): Promise<Image> {
  const have = cachedImage();
  if (have) return have;
  const { dir, manifest } = imagePaths();
  const t0 = Date.now();
  const work = `${dir}.build`;
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const rootfs = path.join(work, "rootfs");
  log(`image: building ${imageKey()} with mmdebstrap (about a minute)`);
  await run("mmdebstrap", [
    "--variant=minbase", "--mode=root", "--quiet", `--include=${RECIPE.packages.join(",")}`,
    "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*", "--dpkgopt=path-include=/usr/share/locale/locale.alias",
    RECIPE.suite, rootfs, mirror(),
  ], { timeoutMs: 20 * 60_000 });
  await writeFile(path.join(rootfs, "etc/cloud/cloud.cfg.d/90-vm-infra-lab.cfg"), RECIPE.cloudCfg);
  await writeFile(path.join(rootfs, "etc/fstab"), RECIPE.fstab);
  await writeFile(path.join(rootfs, RECIPE.sshdConfig.file), RECIPE.sshdConfig.content, { mode: 0o600 });
  await writeFile(path.join(rootfs, "etc/machine-id"), "");
  for (const f of readdirSync(path.join(rootfs, "etc/ssh"))) {
    if (f.startsWith("ssh_host_")) await rm(path.join(rootfs, "etc/ssh", f));
  }
  // root password for the serial console only: a lab image, never a product default
  await run("chroot", [rootfs, "chpasswd"], { timeoutMs: 60_000, input: "root:lab\n" });
  const boot = readdirSync(path.join(rootfs, "boot"));
  const kernel = boot.find((f) => f.startsWith("vmlinuz-"));
  const initrd = boot.find((f) => f.startsWith("initrd.img-"));
  if (!kernel || !initrd) throw new Error(`image: no kernel/initrd in ${rootfs}/boot: ${boot.join(" ")}`);
  await copyFile(path.join(rootfs, "boot", kernel), path.join(work, "vmlinuz"));
  await copyFile(path.join(rootfs, "boot", initrd), path.join(work, "initrd.img"));
  const raw = path.join(work, "base.raw");
  await run("truncate", ["-s", `${RECIPE.sizeGiB}G`, raw], { timeoutMs: 60_000 });
  await run("mkfs.ext4", ["-q", "-F", "-L", "rootfs", "-d", rootfs, raw], { timeoutMs: 10 * 60_000 });
  await run("qemu-img", ["convert", "-c", "-O", "qcow2", raw, path.join(work, "base.qcow2")], { timeoutMs: 10 * 60_000 });
  await rm(raw);
  await rm(rootfs, { recursive: true, force: true });
  await rm(dir, { recursive: true, force: true });
  await rename(work, dir);
  const qcow2 = path.join(dir, "base.qcow2");
  const sha = (await run("sha256sum", ["--", qcow2], { timeoutMs: 120_000 })).stdout.split(" ")[0];
  const image: Image = {
    dir, qcow2, kernel: path.join(dir, "vmlinuz"), initrd: path.join(dir, "initrd.img"), cmdline: RECIPE.cmdline,
    sha256: sha, sizeBytes: (await stat(qcow2)).size, buildSeconds: Math.round((Date.now() - t0) / 100) / 10,
  };
  await writeFile(manifest, JSON.stringify(image, null, 2));
  log(`image: ${(image.sizeBytes / 2 ** 20).toFixed(0)} MiB qcow2 built in ${image.buildSeconds} s at ${qcow2}`);
  return image;
}
