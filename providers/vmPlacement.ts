// The placement unit: a VM's domain and the volumes it owns (overlay on the base image, cloud-init ISO) live on one
// host together and are created, updated and deleted as one resource. That shape lets a change of host become one
// update (a migration) instead of a replacement of disks or a second copy of the domain.
//
// check/diff are pure (they run during preview, maybe with unknown values); create/update/delete go through
// host/virsh.ts only. Registered with Pulumi through providers/shim.ts.
import * as pulumi from "@pulumi/pulumi";
import { stat } from "node:fs/promises";
import { Virsh, isNotFound } from "../host/virsh";
import { domainXml, parseDomainXml } from "../libvirt/domain";
import type { DomainType } from "../config/spec";
import { audit } from "./audit";
import { stopDomain, undefineDomain } from "./domainOps";

export interface PlacementInputs {
  name: string;
  hostName: string;
  uri: string;
  pool: string;
  network: string;
  domainType: DomainType;
  vcpus: number;
  memoryMiB: number;
  diskGiB: number;
  baseVolume: string;
  mac: string;
  /** Local ISO file built by the cloud-init command; named by isoHash. */
  isoFile: string;
  isoHash: string;
  kernel?: string;
  initrd?: string;
  cmdline?: string;
}

export interface PlacementOutputs extends PlacementInputs {
  overlayVolume: string;
  isoVolume: string;
  diskPath: string;
  isoPath: string;
}

/** Changing these means a different disk or a different identity: replacement (shown as such in preview). */
export const REPLACE_KEYS = ["name", "pool", "baseVolume", "diskGiB"] as const;
/** Changing these redefines the domain in place: graceful shutdown, define, start; the disk stays. */
export const UPDATE_KEYS = ["vcpus", "memoryMiB", "network", "mac", "domainType", "isoHash", "isoFile", "kernel", "initrd", "cmdline"] as const;
/** A host change is a migration (issue 5); until it lands it is refused before anything moves. */
export const MOVE_KEYS = ["hostName", "uri"] as const;

export const overlayName = (name: string) => `${name}.qcow2`;
export const isoVolumeName = (name: string, hash: string) => `${name}-cidata-${hash.slice(0, 16)}.iso`;

export function placementDiff(olds: Partial<PlacementInputs>, news: PlacementInputs): pulumi.dynamic.DiffResult {
  const changed = (k: keyof PlacementInputs) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]);
  const replaces = REPLACE_KEYS.filter(changed);
  const updates = [...UPDATE_KEYS, ...MOVE_KEYS].filter(changed);
  return {
    changes: replaces.length + updates.length > 0,
    replaces: [...replaces],
    deleteBeforeReplace: true, // the same domain name cannot exist twice on a host
    stables: ["name"],
  };
}

async function ensureVolumes(v: Virsh, i: PlacementInputs, created: string[]): Promise<{ diskPath: string; isoPath: string }> {
  const overlay = overlayName(i.name);
  if (!(await v.volumeExists(i.pool, overlay))) {
    await v.exec(["vol-create-as", "--pool", i.pool, "--name", overlay, "--capacity", `${i.diskGiB}G`, "--format", "qcow2",
      "--backing-vol", i.baseVolume, "--backing-vol-format", "qcow2"]);
    created.push(overlay);
  }
  const isoVol = isoVolumeName(i.name, i.isoHash);
  if (!(await v.volumeExists(i.pool, isoVol))) {
    const size = (await stat(i.isoFile)).size;
    await v.exec(["vol-create-as", "--pool", i.pool, "--name", isoVol, "--capacity", String(size), "--format", "raw"]);
    created.push(isoVol);
    await v.exec(["vol-upload", "--pool", i.pool, "--vol", isoVol, "--file", i.isoFile], 300_000);
  }
  return { diskPath: await v.volumePath(i.pool, overlay), isoPath: await v.volumePath(i.pool, isoVol) };
}

async function defineAndStart(v: Virsh, i: PlacementInputs, paths: { diskPath: string; isoPath: string }): Promise<void> {
  const state = await v.domainState(i.name);
  const uuid = state === undefined ? undefined : (await v.exec(["domuuid", "--", i.name])).trim();
  await v.withXml(domainXml({ ...i, ...paths, uuid }), (f) => ["define", "--file", f]);
  if (state !== "running") await v.exec(["start", "--", i.name]);
}

function outputsOf(i: PlacementInputs, paths: { diskPath: string; isoPath: string }): PlacementOutputs {
  return { ...i, overlayVolume: overlayName(i.name), isoVolume: isoVolumeName(i.name, i.isoHash), ...paths };
}

export const provider: pulumi.dynamic.ResourceProvider = {
  async check(_olds: PlacementInputs, news: PlacementInputs) {
    return { inputs: news };
  },

  async diff(_id: string, olds: PlacementOutputs, news: PlacementInputs) {
    return placementDiff(olds, news);
  },

  async create(i: PlacementInputs) {
    const v = new Virsh(i.uri);
    const created: string[] = [];
    let defined = false;
    try {
      const paths = await ensureVolumes(v, i, created);
      defined = (await v.domainState(i.name)) === undefined;
      await defineAndStart(v, i, paths);
      audit({ action: "create", vm: i.name, host: i.hostName, outcome: "ok" });
      return { id: `${i.hostName}/${i.name}`, outs: outputsOf(i, paths) };
    } catch (e) {
      // a failed create leaves nothing behind: what this call made, it removes
      if (defined) await stopDomain(v, i.name, 5000).then(() => undefineDomain(v, i.name)).catch(() => undefined);
      for (const vol of created.reverse()) await v.deleteVolume(i.pool, vol).catch(() => undefined);
      audit({ action: "create", vm: i.name, host: i.hostName, outcome: "failed", detail: String(e) });
      throw new Error(`create ${i.name} on ${i.hostName}: ${e instanceof Error ? e.message : String(e)} (rolled back: ${created.length} volume(s), domain ${defined ? "undefined" : "untouched"})`);
    }
  },

  async read(id: string, props: PlacementOutputs) {
    const v = new Virsh(props.uri);
    let xml: string;
    try {
      xml = await v.exec(["dumpxml", "--inactive", "--", props.name]);
    } catch (e) {
      if (isNotFound(e)) return { id: undefined as unknown as string, props: {} }; // gone: the engine drops it
      throw e;
    }
    const live = parseDomainXml(xml);
    return { id, props: { ...props, memoryMiB: live.memoryMiB, vcpus: live.vcpus, mac: live.mac ?? props.mac } };
  },

  async update(id: string, olds: PlacementOutputs, news: PlacementInputs) {
    if (olds.hostName !== news.hostName || olds.uri !== news.uri) {
      throw new Error(`${news.name}: moving from ${olds.hostName} to ${news.hostName} is a migration, which this version of vm-infra does not perform yet; nothing was changed`);
    }
    const v = new Virsh(news.uri);
    const created: string[] = [];
    try {
      const paths = await ensureVolumes(v, news, created);
      await stopDomain(v, news.name);
      await defineAndStart(v, news, paths);
      if (olds.isoVolume && olds.isoVolume !== isoVolumeName(news.name, news.isoHash)) await v.deleteVolume(olds.pool, olds.isoVolume);
      audit({ action: "update", vm: news.name, host: news.hostName, outcome: "ok" });
      return { outs: outputsOf(news, paths) };
    } catch (e) {
      audit({ action: "update", vm: news.name, host: news.hostName, outcome: "failed", detail: String(e) });
      throw new Error(`update ${news.name} on ${news.hostName}: ${e instanceof Error ? e.message : String(e)}`);
    }
  },

  async delete(_id: string, p: PlacementOutputs) {
    const v = new Virsh(p.uri);
    await stopDomain(v, p.name);
    await undefineDomain(v, p.name);
    await v.deleteVolume(p.pool, p.overlayVolume ?? overlayName(p.name));
    if (p.isoVolume) await v.deleteVolume(p.pool, p.isoVolume);
    audit({ action: "delete", vm: p.name, host: p.hostName, outcome: "ok" });
  },
};
