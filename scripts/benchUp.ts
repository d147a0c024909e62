// Benchmark (prints figures, asserts nothing): how long a VM takes from define to SSH and to cloud-init done when
// driven by hand with virsh (the floor), against `pulumi up` of the same VM through vm-infra, and of N VMs at once.
//
//   scripts/with-env.sh node dist/scripts/benchUp.js [--vms N]      (npm run bench:up -- --vms 8)
import * as path from "node:path";
import { run } from "../host/runner";
import { sshRun } from "../host/ssh";
import { Virsh } from "../host/virsh";
import { BUILD_ISO_SCRIPT } from "../cloud-init/buildIso";
import { cloudInitDocs } from "../cloud-init/documents";
import { MIGRATION_DEFAULTS, macFor } from "../config/spec";
import { domainXml } from "../libvirt/domain";
import { HOSTS, uri } from "../lab/layout";
import { KEY_PATH, ensureLab, labHostsConfig, labImageConfig, writeLabStack } from "../lab/stack";
import { findAddress } from "../providers/vmReady";

const root = path.join(__dirname, "..", "..");
const stack = "bench-up";
const common = ["--cwd", root, "--stack", stack, "--non-interactive"];
const arg = (k: string, d: string) => {
  const i = process.argv.indexOf(k);
  return i > 0 ? process.argv[i + 1] : d;
};
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function rawFloor(base: { volume: string; source: string; kernel?: string; initrd?: string; cmdline?: string }, publicKey: string) {
  const v = new Virsh(uri(HOSTS[0]));
  const name = "bench-raw";
  const uploaded = !(await v.volumeExists("default", base.volume));
  if (uploaded) {
    const size = (await run("stat", ["-c", "%s", "--", base.source], { timeoutMs: 10_000 })).stdout.trim();
    await v.exec(["vol-create-as", "--pool", "default", "--name", base.volume, "--capacity", size, "--format", "qcow2"]);
    await v.exec(["vol-upload", "--pool", "default", "--vol", base.volume, "--file", base.source], 600_000);
  }
  const vm = { name, host: "hv-a", vcpus: 1, memoryMiB: 768, diskGiB: 4, user: "ops", sshKeys: [publicKey], packages: [], mac: macFor(name),
    storage: "local" as const, migration: MIGRATION_DEFAULTS };
  const docs = cloudInitDocs(vm);
  const isoDir = path.join(root, ".vm-infra", "bench");
  const t0 = Date.now();
  const iso = (await run("/bin/sh", ["-c", BUILD_ISO_SCRIPT], {
    timeoutMs: 60_000, env: { VMI_ISO_DIR: isoDir, VMI_ISO_NAME: `${name}.iso`, VMI_USER_DATA: docs.userData, VMI_META_DATA: docs.metaData, VMI_NETWORK_CONFIG: docs.networkConfig },
  })).stdout.trim();
  await v.exec(["vol-create-as", "--pool", "default", "--name", `${name}.qcow2`, "--capacity", "4G", "--format", "qcow2", "--backing-vol", base.volume, "--backing-vol-format", "qcow2"]);
  const isoSize = (await run("stat", ["-c", "%s", "--", iso], { timeoutMs: 10_000 })).stdout.trim();
  await v.exec(["vol-create-as", "--pool", "default", "--name", `${name}.iso`, "--capacity", isoSize, "--format", "raw"]);
  await v.exec(["vol-upload", "--pool", "default", "--vol", `${name}.iso`, "--file", iso]);
  const diskPath = await v.volumePath("default", `${name}.qcow2`);
  const isoPath = await v.volumePath("default", `${name}.iso`);
  const tDefine = Date.now();
  await v.withXml(domainXml({ name, domainType: "qemu", vcpus: 1, memoryMiB: 768, diskPath, isoPath, network: "lab", mac: vm.mac,
    kernel: base.kernel, initrd: base.initrd, cmdline: base.cmdline }), (f) => ["define", "--file", f]);
  await v.exec(["start", "--", name]);
  let tSsh = 0;
  let address: string | undefined;
  while (!tSsh) {
    address = await findAddress(v, name, vm.mac);
    if (address && (await sshRun({ user: "ops", address, privateKeyPath: KEY_PATH, netns: HOSTS[0].netns }, ["true"], 15_000).then(() => true, () => false))) tSsh = Date.now();
    else await new Promise((r) => setTimeout(r, 1000));
  }
  await sshRun({ user: "ops", address: address!, privateKeyPath: KEY_PATH, netns: HOSTS[0].netns }, ["cloud-init", "status", "--wait"], 600_000);
  const tDone = Date.now();
  await v.exec(["destroy", "--", name]);
  await v.exec(["undefine", "--", name]);
  for (const vol of [`${name}.qcow2`, `${name}.iso`]) await v.deleteVolume("default", vol);
  if (uploaded) await v.deleteVolume("default", base.volume);
  return { prepareMs: tDefine - t0, sshMs: tSsh - tDefine, doneMs: tDone - tDefine };
}

async function timed(args: string[]): Promise<number> {
  const t0 = Date.now();
  await run("pulumi", [...args, ...common], { timeoutMs: 60 * 60_000 });
  return Date.now() - t0;
}

async function main(): Promise<void> {
  const n = Number(arg("--vms", "1"));
  const { image, publicKey } = await ensureLab();
  const base = labImageConfig(image) as { volume: string; source: string; kernel?: string; initrd?: string; cmdline?: string };
  const raw = await rawFloor(base, publicKey);
  console.log(`floor (virsh by hand, 1 VM on hv-a): ISO + volumes ${s(raw.prepareMs)}; define -> SSH ${s(raw.sshMs)}; define -> cloud-init done ${s(raw.doneMs)}`);

  await run("pulumi", ["stack", "select", "--create", ...common], { timeoutMs: 60_000 });
  const vms = Array.from({ length: n }, (_, i) => ({ name: `bench-${i + 1}`, host: HOSTS[i % HOSTS.length].name, memoryMiB: 768, diskGiB: 4, user: "ops" }));
  await writeLabStack(root, stack, vms, image, publicKey, { "vm-infra:hosts": labHostsConfig() });
  const upMs = await timed(["up", "--yes", "--skip-preview"]);
  const noopMs = await timed(["up", "--yes", "--skip-preview", "--expect-no-changes"]);
  const destroyMs = await timed(["destroy", "--yes", "--skip-preview"]);
  await run("pulumi", ["stack", "rm", "--yes", "--force", ...common], { timeoutMs: 60_000 });
  console.log(`vm-infra: pulumi up of ${n} VM(s) to cloud-init done ${s(upMs)} (base image upload included; vs the 1-VM floor's ` +
    `ISO+volumes+cloud-init ${s(raw.prepareMs + raw.doneMs)}: ${s(upMs - raw.prepareMs - raw.doneMs)} more); up with no changes ${s(noopMs)}; destroy ${s(destroyMs)}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
