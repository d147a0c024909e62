// The raw-virsh path on the lab, without Pulumi or vm-infra's providers: a VM defined by hand on the image with a
// NoCloud ISO (the same ISO builder and pure document builders), booted until SSH and cloud-init are done. It is the
// lab's own proof and the performance floor the benchmarks compare vm-infra with.
import { stat } from "node:fs/promises";
import * as path from "node:path";
import { buildSeedIso } from "../host/iso";
import { cloudInitDocs } from "../cloud-init/documents";
import { MIGRATION_DEFAULTS, macFor } from "../config/spec";
import { PinnedKey, sshRun } from "../host/ssh";
import { makeHostKey } from "../providers/hostKey";
import type { GuestRoute } from "../config/resolve";
import { Virsh } from "../host/virsh";
import { domainXml } from "../libvirt/domain";
import { findAddress } from "../providers/vmReady";
import { LAB_DIR } from "./layout";

export type Base = { volume: string; source: string; kernel?: string; initrd?: string; cmdline?: string };

export interface RawVm {
  name: string;
  pool: string;
  mac: string;
  address: string;
  user: string;
  /** The guest's SSH host key, made here and handed to cloud-init as vm-infra does: every SSH to it checks it. */
  hostKey: PinnedKey;
}

/** Uploads the base image into `pool` unless it is there; returns whether it did (the caller removes it then). */
export async function ensureBase(v: Virsh, pool: string, base: Base): Promise<boolean> {
  await v.refreshPool(pool);
  if (await v.volumeExists(pool, base.volume)) return false;
  const size = String((await stat(base.source)).size);
  await v.exec(["vol-create-as", "--pool", pool, "--name", base.volume, "--capacity", size, "--format", "qcow2"]);
  await v.exec(["vol-upload", "--pool", pool, "--vol", base.volume, "--file", base.source], 600_000);
  return true;
}

export interface RawBootOptions {
  name: string;
  pool: string;
  base: Base;
  publicKey: string;
  keyPath: string;
  /** How SSH reaches the guest: from a host's namespace (local topology) or through its hypervisor (remote). */
  route: GuestRoute;
  user?: string;
}

/** ISO, overlay, define, start, then SSH and `cloud-init status --wait`; timings from define. */
export async function rawBoot(v: Virsh, o: RawBootOptions) {
  const user = o.user ?? "ops";
  const vm = { name: o.name, host: "raw", vcpus: 1, memoryMiB: 768, diskGiB: 4, user, sshKeys: [o.publicKey], packages: [], mac: macFor(o.name),
    storage: "local" as const, migration: MIGRATION_DEFAULTS, tags: [] };
  const t0 = Date.now();
  const key = await makeHostKey();
  const hostKey: PinnedKey = { alias: o.name, publicKey: key.publicKey };
  const docs = cloudInitDocs(vm, key);
  const iso = path.join(LAB_DIR, "raw-iso", `${o.name}.iso`);
  await buildSeedIso({ "user-data": docs.userData, "meta-data": docs.metaData, "network-config": docs.networkConfig }, iso);
  await v.exec(["vol-create-as", "--pool", o.pool, "--name", `${o.name}.qcow2`, "--capacity", "4G", "--format", "qcow2", "--backing-vol", o.base.volume,
    "--backing-vol-format", "qcow2"]);
  const isoSize = String((await stat(iso)).size);
  await v.exec(["vol-create-as", "--pool", o.pool, "--name", `${o.name}.iso`, "--capacity", isoSize, "--format", "raw"]);
  await v.exec(["vol-upload", "--pool", o.pool, "--vol", `${o.name}.iso`, "--file", iso]);
  const diskPath = await v.volumePath(o.pool, `${o.name}.qcow2`);
  const isoPath = await v.volumePath(o.pool, `${o.name}.iso`);
  const tDefine = Date.now();
  await v.withXml(domainXml({ name: o.name, domainType: "qemu", vcpus: 1, memoryMiB: 768, diskPath, isoPath, network: "lab", mac: vm.mac,
    kernel: o.base.kernel, initrd: o.base.initrd, cmdline: o.base.cmdline }), (f) => ["define", "--file", f]);
  await v.exec(["start", "--", o.name]);
  let tSsh = 0;
  let address: string | undefined;
  const deadline = Date.now() + 20 * 60_000;
  while (!tSsh) {
    if (Date.now() > deadline) throw new Error(`${o.name}: no SSH within 20 min`);
    address = await findAddress(v, o.name, vm.mac);
    const target = { user, address: address ?? "", privateKeyPath: o.keyPath, ...o.route, hostKey };
    if (address && (await sshRun(target, ["true"], 60_000).then(() => true, () => false))) tSsh = Date.now();
    else await new Promise((r) => setTimeout(r, 1000));
  }
  const status = await sshRun({ user, address: address!, privateKeyPath: o.keyPath, ...o.route, hostKey }, ["cloud-init", "status", "--wait"], 1_800_000);
  const tDone = Date.now();
  return {
    vm: { name: o.name, pool: o.pool, mac: vm.mac, address: address!, user, hostKey } as RawVm,
    cloudInit: status.stdout.trim(),
    prepareMs: tDefine - t0, sshMs: tSsh - tDefine, doneMs: tDone - tDefine, totalMs: tDone - t0,
  };
}

/** Destroys, undefines and deletes the VM's volumes on the host it is on now. */
export async function rawRemove(v: Virsh, vm: RawVm): Promise<void> {
  await v.exec(["destroy", "--", vm.name]).catch(() => undefined);
  await v.exec(["undefine", "--", vm.name]).catch(() => undefined);
  await v.refreshPool(vm.pool);
  for (const vol of [`${vm.name}.qcow2`, `${vm.name}.iso`]) await v.deleteVolume(vm.pool, vol);
}
