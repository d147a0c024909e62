// The placement unit: a VM's domain and the volumes it owns (overlay on the base image, cloud-init ISO) live on one
// host together and are created, updated and deleted as one resource. That shape lets a change of host become one
// update (a migration) instead of a replacement of disks or a second copy of the domain.
//
// check/diff are pure (they run during preview, maybe with unknown values); create/update/delete go through
// host/virsh.ts only. Registered with Pulumi through providers/shim.ts.
import * as pulumi from "@pulumi/pulumi";
import { writeSync } from "node:fs";
import { stat } from "node:fs/promises";
import { Virsh, isNotFound } from "../host/virsh";
import { domainXml, parseDomainXml } from "../libvirt/domain";
import type { DomainType, MigrationSpec } from "../config/spec";
import { planLine } from "../libvirt/migration";
import { audit } from "./audit";
import { stopDomain, undefineDomain } from "./domainOps";
import { MigrationError, MigrationRecord, MoveRequest, moveVm, shapeOf } from "./migrate";

export interface PlacementInputs {
  name: string;
  hostName: string;
  uri: string;
  pool: string;
  network: string;
  bridge?: string;
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
  /** How a host change moves the VM, and where its disks live. */
  storage: "local" | "shared";
  migration: MigrationSpec;
  /** Peer-to-peer migration URI of this host (see HostSpec.migrationUri). */
  migrationUri?: string;
  guestNetns?: string;
  /** The guest login used by post-move health checks. */
  user: string;
  privateKeyPath: string;
  staticAddress?: string;
  /** Every configured host (name -> uri and the pool this VM would use there): where refresh looks for the VM. */
  knownHosts: Record<string, { uri: string; pool: string }>;
}

/** Volumes of this VM left on a host it no longer runs on (an interrupted move); the next update removes them. */
export interface Leftover {
  hostName: string;
  uri: string;
  pool: string;
  volume: string;
}

export interface PlacementOutputs extends PlacementInputs {
  overlayVolume: string;
  isoVolume: string;
  diskPath: string;
  isoPath: string;
  uuid?: string;
  lastMigration?: MigrationRecord;
  leftovers?: Leftover[];
}

/** Changing these means a different disk or a different identity: replacement (shown as such in preview). */
export const REPLACE_KEYS = ["name", "pool", "baseVolume", "diskGiB"] as const;
/** Changing these redefines the domain in place: graceful shutdown, define, start; the disk stays. */
export const RESTART_KEYS = ["vcpus", "memoryMiB", "network", "bridge", "mac", "domainType", "isoHash", "kernel", "initrd", "cmdline"] as const;
/** A host change is a migration: one update, never a replacement. */
export const MOVE_KEYS = ["hostName", "uri"] as const;
/** Recorded only: how the next move will run, how health checks log in, where refresh looks. */
export const SETTING_KEYS = ["isoFile", "storage", "migration", "migrationUri", "guestNetns", "user", "privateKeyPath", "staticAddress", "knownHosts"] as const;

export const overlayName = (name: string) => `${name}.qcow2`;
export const isoVolumeName = (name: string, hash: string) => `${name}-cidata-${hash.slice(0, 16)}.iso`;

export const moves = (olds: Partial<PlacementInputs>, news: PlacementInputs) => MOVE_KEYS.some((k) => olds[k] !== news[k]);

export function placementDiff(olds: Partial<PlacementOutputs>, news: PlacementInputs): pulumi.dynamic.DiffResult {
  const changed = (k: keyof PlacementInputs) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]);
  // a move may change the pool's name along with the host; on one host, a new pool is a new disk
  const replaces = REPLACE_KEYS.filter(changed).filter((k) => !(k === "pool" && moves(olds, news)));
  const updates = [...RESTART_KEYS, ...MOVE_KEYS, ...SETTING_KEYS].filter(changed);
  return {
    changes: replaces.length + updates.length > 0 || (olds.leftovers?.length ?? 0) > 0,
    replaces: [...replaces],
    deleteBeforeReplace: true, // the same domain name cannot exist twice on a host
    stables: ["name"],
  };
}

/**
 * A move carries the running domain as it is; a changed definition needs a restart. Both in one update would leave
 * the state unable to say where the VM is if the second half failed, so it is refused before anything runs.
 */
export function checkMove(olds: Partial<PlacementInputs>, news: PlacementInputs): pulumi.dynamic.CheckFailure[] {
  if (olds.hostName === undefined || !moves(olds, news)) return [];
  const also = RESTART_KEYS.filter((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]));
  return also.length === 0 ? [] : [{
    property: "hostName",
    reason: `${news.name}: moving to ${news.hostName} and changing ${also.join(", ")} in one update is refused; move first (change only host), then change the rest`,
  }];
}

/** Minimum free space a new VM needs in its pool: the seed, plus room for the guest's first writes to its overlay. */
export const FIRST_BOOT_BYTES = 256 * 1024 ** 2;

/** A pool without room fails the create before anything is made there (a thin overlay grows later; this is the floor). */
async function checkRoom(v: Virsh, i: PlacementInputs): Promise<void> {
  const { state, availableBytes: available } = await v.poolInfo(i.pool);
  const need = (await stat(i.isoFile)).size + FIRST_BOOT_BYTES;
  if (state !== undefined && state !== "running") throw new Error(`pool ${i.pool} on ${i.hostName} is ${state}; start it (virsh pool-start ${i.pool})`);
  if (available < need)
    throw new Error(`pool ${i.pool} on ${i.hostName} has ${(available / 1024 ** 2).toFixed(0)} MiB available; a new VM needs at least ` +
      `${(need / 1024 ** 2).toFixed(0)} MiB (seed + first boot). Free space in the pool or choose another pool`);
}

async function ensureVolumes(v: Virsh, i: PlacementInputs, created: string[]): Promise<{ diskPath: string; isoPath: string }> {
  const overlay = overlayName(i.name);
  if (i.storage === "shared") await v.refreshPool(i.pool); // a shared pool shows what other hosts wrote only after a refresh
  if (!(await v.volumeExists(i.pool, overlay))) {
    await v.createOverlay(i.pool, overlay, i.diskGiB, i.baseVolume);
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

function outputsOf(i: PlacementInputs, paths: { diskPath: string; isoPath: string }, extra: Partial<PlacementOutputs> = {}): PlacementOutputs {
  return plain({ ...i, overlayVolume: overlayName(i.name), isoVolume: isoVolumeName(i.name, i.isoHash), ...paths, ...extra });
}

/** What a provider returns must be plain data: an `undefined` anywhere fails the engine's struct encoding. */
export const plain = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));
/**
 * Lines a dynamic provider prints reach `pulumi up` / `preview` output as info diagnostics. Written synchronously:
 * stdout is a pipe, and an asynchronous write can still be queued when the engine shuts the provider down.
 */
const say = (line: string): void => {
  try {
    writeSync(1, `${line}\n`);
  } catch {
    /* the engine is gone (a killed up): the work goes on, and the audit log still records it */
  }
};

function moveRequest(olds: PlacementOutputs, news: PlacementInputs): MoveRequest {
  return {
    name: olds.name,
    from: { hostName: olds.hostName, uri: olds.uri, migrationUri: olds.migrationUri, pool: olds.pool, guestNetns: olds.guestNetns },
    to: { hostName: news.hostName, uri: news.uri, migrationUri: news.migrationUri, pool: news.pool, guestNetns: news.guestNetns },
    storage: news.storage === "shared" ? "shared" : "copy",
    migration: news.migration,
    // the running domain is the old definition: it moves as it is, and a changed definition is applied afterwards
    domainType: olds.domainType, vcpus: olds.vcpus, memoryMiB: olds.memoryMiB, diskGiB: olds.diskGiB, network: olds.network,
    bridge: olds.bridge, mac: olds.mac, baseVolume: olds.baseVolume, overlayVolume: olds.overlayVolume ?? overlayName(olds.name),
    isoVolume: olds.isoVolume, kernel: olds.kernel, initrd: olds.initrd, cmdline: olds.cmdline,
    guest: { user: news.user, privateKeyPath: news.privateKeyPath, staticAddress: news.staticAddress },
  };
}

async function removeLeftovers(leftovers: Leftover[] | undefined): Promise<void> {
  for (const l of leftovers ?? []) {
    await new Virsh(l.uri).deleteVolume(l.pool, l.volume);
    audit({ action: "delete-leftover", vm: "-", host: l.hostName, outcome: "ok", detail: l.volume });
  }
}

export const provider: pulumi.dynamic.ResourceProvider = {
  async check(olds: Partial<PlacementInputs>, news: PlacementInputs) {
    return { inputs: news, failures: checkMove(olds, news) };
  },

  async diff(_id: string, olds: PlacementOutputs, news: PlacementInputs) {
    const d = placementDiff(olds, news);
    // preview's plan line; computed from inputs only (preview runs nothing on any host)
    if (moves(olds, news) && olds.hostName !== undefined)
      say(`plan: ${planLine(shapeOf(moveRequest(olds, news)))}`);
    return d;
  },

  async create(i: PlacementInputs) {
    const v = new Virsh(i.uri);
    const created: string[] = [];
    let defined = false;
    try {
      await checkRoom(v, i);
      const paths = await ensureVolumes(v, i, created);
      defined = (await v.domainState(i.name)) === undefined;
      await defineAndStart(v, i, paths);
      const uuid = (await v.exec(["domuuid", "--", i.name])).trim();
      audit({ action: "create", vm: i.name, host: i.hostName, outcome: "ok" });
      return { id: `vm/${i.name}`, outs: outputsOf(i, paths, { uuid }) };
    } catch (e) {
      // a failed create leaves nothing behind: what this call made, it removes
      if (defined) await stopDomain(v, i.name, 5000).then(() => undefineDomain(v, i.name)).catch(() => undefined);
      for (const vol of created.reverse()) await v.deleteVolume(i.pool, vol).catch(() => undefined);
      audit({ action: "create", vm: i.name, host: i.hostName, outcome: "failed", detail: String(e) });
      throw new Error(`create ${i.name} on ${i.hostName}: ${errText(e)} (rolled back: ${created.length} volume(s), domain ${defined ? "undefined" : "untouched"})`);
    }
  },

  /**
   * Refresh: where is the VM really? On its recorded host, or (moved outside vm-infra, or by an interrupted up) on
   * another configured host with the same UUID; volumes of it on hosts where it does not run are leftovers.
   */
  async read(id: string, props: PlacementOutputs) {
    const candidates: [string, { uri: string; pool: string }][] = [
      [props.hostName, { uri: props.uri, pool: props.pool }],
      ...Object.entries(props.knownHosts ?? {}).filter(([n]) => n !== props.hostName),
    ];
    let found: { hostName: string; uri: string; pool: string; xml: string } | undefined;
    for (const [hostName, h] of candidates) {
      const v = new Virsh(h.uri);
      let xml: string;
      try {
        xml = await v.exec(["dumpxml", "--", props.name]);
      } catch (e) {
        if (isNotFound(e)) continue;
        if (hostName === props.hostName) throw e; // the recorded host must answer
        say(`${props.name}: refresh could not ask ${hostName}: ${errText(e).slice(0, 200)}`);
        continue;
      }
      if (props.uuid && !xml.includes(`<uuid>${props.uuid}</uuid>`)) continue; // same name, another VM
      found = { hostName, ...h, xml };
      break;
    }
    if (!found) return { id: undefined as unknown as string, props: {} }; // gone everywhere: the engine drops it
    const live = parseDomainXml(found.xml);
    const leftovers: Leftover[] = [];
    if (props.storage !== "shared")
      for (const [hostName, h] of candidates) {
        if (hostName === found.hostName) continue;
        const v = new Virsh(h.uri);
        for (const vol of [props.overlayVolume ?? overlayName(props.name), props.isoVolume]) {
          if (vol && (await v.volumeExists(h.pool, vol).catch(() => false)) && (await v.domainState(props.name).catch(() => "?")) === undefined)
            leftovers.push({ hostName, uri: h.uri, pool: h.pool, volume: vol });
        }
      }
    if (found.hostName !== props.hostName) say(`${props.name}: found on ${found.hostName}, not on ${props.hostName} as recorded`);
    const diskPath = live.diskPaths[0] ?? props.diskPath;
    return {
      id,
      props: plain({
        ...props, hostName: found.hostName, uri: found.uri, pool: found.pool, memoryMiB: live.memoryMiB, vcpus: live.vcpus,
        mac: live.mac ?? props.mac, diskPath, isoPath: live.diskPaths[1] ?? props.isoPath, leftovers,
      }),
    };
  },

  async update(id: string, olds: PlacementOutputs, news: PlacementInputs) {
    await removeLeftovers(olds.leftovers);
    let current: PlacementOutputs = { ...olds, leftovers: [] };
    if (moves(olds, news)) {
      const req = moveRequest(olds, news);
      say(`plan: ${planLine(shapeOf(req))}`);
      try {
        const { record, paths } = await moveVm(req, { log: say });
        audit({ action: "migrate", vm: news.name, host: `${olds.hostName}->${news.hostName}`, outcome: "ok", detail: JSON.stringify(record) });
        current = { ...olds, hostName: news.hostName, uri: news.uri, pool: news.pool, migrationUri: news.migrationUri, guestNetns: news.guestNetns,
          knownHosts: news.knownHosts, ...paths, lastMigration: record, leftovers: [] };
      } catch (e) {
        const detail = e instanceof MigrationError ? JSON.stringify(e.record) : errText(e);
        audit({ action: "migrate", vm: news.name, host: `${olds.hostName}->${news.hostName}`, outcome: "failed", detail });
        throw new Error(`migrate ${news.name}: ${errText(e)}`);
      }
    }
    const restart = RESTART_KEYS.some((k) => JSON.stringify(current[k]) !== JSON.stringify(news[k]));
    if (!restart) return { outs: plain({ ...current, ...news, overlayVolume: current.overlayVolume, isoVolume: current.isoVolume }) };
    const v = new Virsh(news.uri);
    const created: string[] = [];
    try {
      const paths = await ensureVolumes(v, news, created);
      await stopDomain(v, news.name);
      await defineAndStart(v, news, paths);
      if (current.isoVolume && current.isoVolume !== isoVolumeName(news.name, news.isoHash)) await v.deleteVolume(news.pool, current.isoVolume);
      audit({ action: "update", vm: news.name, host: news.hostName, outcome: "ok" });
      return { outs: outputsOf(news, paths, { uuid: current.uuid, lastMigration: current.lastMigration, leftovers: [] }) };
    } catch (e) {
      audit({ action: "update", vm: news.name, host: news.hostName, outcome: "failed", detail: String(e) });
      throw new Error(`update ${news.name} on ${news.hostName}: ${errText(e)}`);
    }
  },

  async delete(_id: string, p: PlacementOutputs) {
    const v = new Virsh(p.uri);
    await stopDomain(v, p.name);
    await undefineDomain(v, p.name);
    await v.deleteVolume(p.pool, p.overlayVolume ?? overlayName(p.name));
    if (p.isoVolume) await v.deleteVolume(p.pool, p.isoVolume);
    await removeLeftovers(p.leftovers);
    audit({ action: "delete", vm: p.name, host: p.hostName, outcome: "ok" });
  },
};
