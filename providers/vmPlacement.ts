// The placement unit: a VM's domain and the volumes it owns (overlay on the base image, cloud-init ISO) live on one
// host together and are created, updated and deleted as one resource. That shape lets a change of host become one
// update (a migration) instead of a replacement of disks or a second copy of the domain.
//
// check/diff are pure (they run during preview, maybe with unknown values); create/update/delete go through
// host/virsh.ts only. Registered with Pulumi through providers/shim.ts.
import * as pulumi from "@pulumi/pulumi";
import { writeSync } from "node:fs";
import { stat } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { Virsh, isNotFound } from "../host/virsh";
import { Owner, domainXml, ownerXml, OWNER_NS, parseDomainXml, parseUuid } from "../libvirt/domain";
import type { DomainType, MigrationSpec } from "../config/spec";
import { planLine } from "../libvirt/migration";
import { audit } from "./audit";
import { stopDomain, undefineDomain } from "./domainOps";
import { moveVm } from "./migration/move";
import { observe } from "./migration/rollback";
import { Leftover, MigrationError, MigrationRecord, MoveRequest, shapeOf } from "./migration/types";
import { findDomain, ownerText } from "./ownership";

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
  /** Project, stack and resource name, written into the domain's metadata. */
  owner?: Omit<Owner, "instance">;
  /** Explicit adoption: the UUID of a vm-infra-made domain of this name that create takes over (VmSpec.adopt). */
  adopt?: string;
}

export type { Leftover };

export interface PlacementOutputs extends PlacementInputs {
  overlayVolume: string;
  isoVolume: string;
  diskPath: string;
  isoPath: string;
  uuid?: string;
  /** Random per created placement, in the names of its volumes and in the domain's owner record. */
  instance?: string;
  /** The domain's state as last seen (running, paused, shut off): readiness reports a stopped VM instead of waiting. */
  powerState?: string;
  /** Counts the placement's (re)starts of the guest: readiness checks the guest again whenever it changes. */
  boots?: number;
  /** Parts that refresh found gone (domain, overlay, iso): the next up recreates them where no data is lost. */
  missing?: string[];
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
export const SETTING_KEYS = ["isoFile", "storage", "migration", "migrationUri", "guestNetns", "user", "privateKeyPath", "staticAddress", "knownHosts", "owner", "adopt"] as const;

/**
 * Volume names carry the placement's instance (random at create): a replacement, another stack or a VM of the same
 * name made by hand can never own a volume of that name, so delete removes only what this placement made. Placements
 * created before instances existed keep their recorded names.
 */
export const overlayName = (name: string, instance?: string) => (instance ? `${name}-${instance}.qcow2` : `${name}.qcow2`);
export const isoVolumeName = (name: string, hash: string, instance?: string) =>
  instance ? `${name}-${instance}-cidata-${hash.slice(0, 12)}.iso` : `${name}-cidata-${hash.slice(0, 16)}.iso`;
/** Where a new placement's instance comes from; unit tests swap in a fixed one (never production code). */
export const instances = { next: (): string => randomBytes(4).toString("hex") };

export const moves = (olds: Partial<PlacementInputs>, news: PlacementInputs) => MOVE_KEYS.some((k) => olds[k] !== news[k]);

export function placementDiff(olds: Partial<PlacementOutputs>, news: PlacementInputs): pulumi.dynamic.DiffResult {
  const changed = (k: keyof PlacementInputs) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]);
  // a move may change the pool's name along with the host; on one host, a new pool is a new disk
  const replaces = REPLACE_KEYS.filter(changed).filter((k) => !(k === "pool" && moves(olds, news)));
  const updates = [...RESTART_KEYS, ...MOVE_KEYS, ...SETTING_KEYS].filter(changed);
  return {
    changes: replaces.length + updates.length > 0 || (olds.leftovers?.length ?? 0) > 0 || (olds.missing?.length ?? 0) > 0,
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

/** The names of a placement's volumes: as recorded (older states), else from its instance. */
const names = (p: { name: string; isoHash: string; instance?: string; overlayVolume?: string }) => ({
  overlay: p.overlayVolume ?? overlayName(p.name, p.instance),
  iso: isoVolumeName(p.name, p.isoHash, p.instance),
});

async function ensureVolumes(v: Virsh, i: PlacementInputs, n: { overlay: string; iso: string }, created: string[]): Promise<{ diskPath: string; isoPath: string }> {
  if (i.storage === "shared") await v.refreshPool(i.pool); // a shared pool shows what other hosts wrote only after a refresh
  if (!(await v.volumeExists(i.pool, n.overlay))) {
    await v.createOverlay(i.pool, n.overlay, i.diskGiB, i.baseVolume);
    created.push(n.overlay);
  }
  if (!(await v.volumeExists(i.pool, n.iso))) {
    const size = (await stat(i.isoFile)).size;
    await v.exec(["vol-create-as", "--pool", i.pool, "--name", n.iso, "--capacity", String(size), "--format", "raw"]);
    created.push(n.iso);
    await v.exec(["vol-upload", "--pool", i.pool, "--vol", n.iso, "--file", i.isoFile], 300_000);
  }
  return { diskPath: await v.volumePath(i.pool, n.overlay), isoPath: await v.volumePath(i.pool, n.iso) };
}

const ownerOf = (i: PlacementInputs, instance?: string): Owner | undefined =>
  i.owner && instance ? { ...i.owner, instance } : undefined;

async function defineAndStart(v: Virsh, i: PlacementInputs, paths: { diskPath: string; isoPath: string }, instance?: string, start = true): Promise<void> {
  const state = await v.domainState(i.name);
  const uuid = state === undefined ? undefined : (await v.exec(["domuuid", "--", i.name])).trim();
  await v.withXml(domainXml({ ...i, ...paths, uuid, owner: ownerOf(i, instance) }), (f) => ["define", "--file", f]);
  if (start && state !== "running") await v.exec(["start", "--", i.name]);
}

function outputsOf(i: PlacementInputs, paths: { diskPath: string; isoPath: string }, extra: Partial<PlacementOutputs> = {}): PlacementOutputs {
  const instance = extra.instance;
  return plain({ ...i, overlayVolume: overlayName(i.name, instance), isoVolume: isoVolumeName(i.name, i.isoHash, instance), ...paths,
    powerState: "running", missing: [], ...extra });
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
    uuid: olds.uuid,
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

/**
 * Removes what this VM left on hosts where it does not run, host by host, only after asking that host: a host that does
 * not answer keeps its leftovers (recorded again), and a host where the VM's domain runs or is paused keeps everything
 * (that is a second copy: it is reported, never removed). Returns what is still left.
 */
export async function removeLeftovers(vm: { name: string; uuid?: string }, leftovers: Leftover[] | undefined): Promise<Leftover[]> {
  const still: Leftover[] = [];
  const hosts = new Map<string, Leftover[]>();
  for (const l of leftovers ?? []) hosts.set(l.uri, [...(hosts.get(l.uri) ?? []), l]);
  for (const [uri, items] of hosts) {
    const v = new Virsh(uri);
    const host = items[0].hostName;
    const seen = await observe(v, vm.name, vm.uuid);
    if (seen === "unknown" || seen === "running" || seen === "paused" || seen === "foreign") {
      const why = seen === "unknown" ? "did not answer" : seen === "foreign" ? `has another domain named ${vm.name}` : `has a ${seen} copy of ${vm.name}: two copies, check by hand`;
      say(`${vm.name}: left ${items.map((l) => l.volume ?? `definition ${l.domain}`).join(", ")} on ${host}: ${host} ${why}`);
      still.push(...items);
      continue;
    }
    try {
      if (seen === "shut off") await undefineDomain(v, vm.name); // a stopped, older copy with this VM's UUID
      for (const l of items) if (l.volume) await v.deleteVolume(l.pool, l.volume);
      audit({ action: "delete-leftover", vm: vm.name, host, outcome: "ok", detail: items.map((l) => l.volume ?? l.domain).join(",") });
    } catch (e) {
      say(`${vm.name}: could not remove leftovers on ${host}: ${errText(e).slice(0, 200)}`);
      still.push(...items);
    }
  }
  return still;
}

/**
 * A provider error that still records state: the engine saves `properties` as the resource's outputs and `reasons` as
 * its initErrors, but prints only "resource init failed"; so the message is also printed here, where it is seen.
 */
class PartialFailure extends Error {
  readonly reasons: string[];
  constructor(message: string, readonly id: string, readonly properties: Record<string, unknown>) {
    super(message);
    this.reasons = [message];
    say(`error: ${message}`);
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
    if (olds.missing?.length) say(`plan: ${olds.name}: recreate ${olds.missing.join(", ")} on ${olds.hostName} (found gone by refresh)`);
    return d;
  },

  async create(i: PlacementInputs) {
    const v = new Virsh(i.uri);
    const created: string[] = [];
    let defined = false;
    const instance = instances.next();
    try {
      // vm-infra never adopts a domain it did not make in this resource: a second stack with the same VM would
      // otherwise take over (and later destroy) the first one's VM
      const there = await findDomain(v, i.name);
      if (there.exists && i.adopt && there.uuid === i.adopt && there.owner) return await adopt(v, i, there.uuid, there.owner);
      if (there.exists)
        throw new Error(`a domain named ${i.name} already exists on ${i.hostName} (${ownerText(there.owner)}); vm-infra does not adopt ` +
          `an existing VM unless told to: remove it, choose another name, or, to manage that VM from this stack, set vms[].adopt to its ` +
          `UUID${there.owner ? ` (${there.uuid})` : " (only VMs made by vm-infra can be adopted)"}`);
      await checkRoom(v, i);
      const paths = await ensureVolumes(v, i, names({ ...i, instance }), created);
      defined = true;
      await defineAndStart(v, i, paths, instance);
      const uuid = (await v.exec(["domuuid", "--", i.name])).trim();
      audit({ action: "create", vm: i.name, host: i.hostName, outcome: "ok" });
      return { id: `vm/${i.name}`, outs: outputsOf(i, paths, { uuid, instance, boots: 1 }) };
    } catch (e) {
      // a failed create leaves nothing behind: what this call made, it removes
      if (defined) await stopDomain(v, i.name, 5000).then(() => undefineDomain(v, i.name)).catch(() => undefined);
      for (const vol of created.reverse()) await v.deleteVolume(i.pool, vol).catch(() => undefined);
      audit({ action: "create", vm: i.name, host: i.hostName, outcome: "failed", detail: String(e) });
      throw new Error(`create ${i.name} on ${i.hostName}: ${errText(e)} (rolled back: ${created.length} volume(s), domain ${defined ? "undefined" : "untouched"})`);
    }
  },

  /**
   * Refresh: where is the VM really, and is every part of it there? On its recorded host, or (moved outside vm-infra,
   * or by an interrupted up) on another configured host with the same UUID. A recorded host that does not answer
   * changes nothing (the state is kept, with a warning). A domain gone everywhere whose disk is gone too is reported
   * gone (the next up creates the VM); a part gone while the rest is there is listed in `missing` (the next up
   * recreates it, keeping the disk).
   */
  async read(id: string, props: PlacementOutputs) {
    const candidates: [string, { uri: string; pool: string }][] = [
      [props.hostName, { uri: props.uri, pool: props.pool }],
      ...Object.entries(props.knownHosts ?? {}).filter(([n]) => n !== props.hostName),
    ];
    const n = { overlay: props.overlayVolume ?? overlayName(props.name), iso: props.isoVolume };
    let found: { hostName: string; uri: string; pool: string; xml: string } | undefined;
    for (const [hostName, h] of candidates) {
      const v = new Virsh(h.uri);
      let xml: string;
      try {
        xml = await v.exec(["dumpxml", "--", props.name]);
      } catch (e) {
        if (isNotFound(e)) continue;
        say(`${props.name}: refresh could not ask ${hostName}: ${errText(e).slice(0, 200)}${hostName === props.hostName ? `; the state keeps ${hostName} until it answers` : ""}`);
        if (hostName === props.hostName) return { id, props };
        continue;
      }
      if (props.uuid && parseUuid(xml) !== props.uuid) continue; // same name, another VM
      found = { hostName, ...h, xml };
      break;
    }
    const recorded = new Virsh(props.uri);
    if (!found) {
      // the domain is gone; its disk may still be where it was (undefined by hand): keep it and redefine on up
      const disk = await recorded.volumeExists(props.pool, n.overlay).catch(() => false);
      if (!disk) return { id: undefined as unknown as string, props: {} }; // gone everywhere: the engine drops it, up creates it
      const missing = ["domain", ...((await recorded.volumeExists(props.pool, n.iso).catch(() => true)) ? [] : ["iso"])];
      say(`${props.name}: its domain is gone from ${props.hostName} but its disk ${n.overlay} is there: up defines it again on that disk`);
      return { id, props: plain({ ...props, powerState: "absent", missing }) };
    }
    const v = new Virsh(found.uri);
    const live = parseDomainXml(found.xml);
    const missing: string[] = [];
    if (props.storage === "shared") await v.refreshPool(found.pool).catch(() => undefined);
    if (!(await v.volumeExists(found.pool, n.overlay))) missing.push("overlay");
    if (!(await v.volumeExists(found.pool, n.iso))) missing.push("iso");
    const leftovers: Leftover[] = [];
    for (const [hostName, h] of candidates) {
      if (hostName === found.hostName) continue;
      const hv = new Virsh(h.uri);
      const seen = await observe(hv, props.name, props.uuid);
      if (seen === "unknown") { // cannot look: what was recorded there stays recorded
        leftovers.push(...(props.leftovers ?? []).filter((l) => l.hostName === hostName));
        continue;
      }
      if (seen === "running" || seen === "paused") say(`${props.name}: a second ${seen} copy is on ${hostName} (it runs on ${found.hostName}): check by hand; vm-infra touches neither`);
      if (seen === "shut off") leftovers.push({ hostName, uri: h.uri, pool: h.pool, domain: props.name });
      if (props.storage !== "shared")
        for (const vol of [n.overlay, n.iso])
          if (vol && (await hv.volumeExists(h.pool, vol).catch(() => false))) leftovers.push({ hostName, uri: h.uri, pool: h.pool, volume: vol });
    }
    if (found.hostName !== props.hostName) say(`${props.name}: found on ${found.hostName}, not on ${props.hostName} as recorded`);
    if (missing.length) say(`${props.name}: ${missing.join(", ")} gone from ${found.hostName}`);
    const powerState = await v.domainState(props.name).catch(() => props.powerState);
    return {
      id,
      props: plain({
        ...props, hostName: found.hostName, uri: found.uri, pool: found.pool, memoryMiB: live.memoryMiB, vcpus: live.vcpus,
        mac: live.mac ?? props.mac, diskPath: live.diskPaths[0] ?? props.diskPath, isoPath: live.diskPaths[1] ?? props.isoPath, leftovers,
        powerState, missing,
      }),
    };
  },

  async update(id: string, olds: PlacementOutputs, news: PlacementInputs) {
    const provider = (news as unknown as { __provider?: string }).__provider;
    let current: PlacementOutputs = { ...olds, leftovers: await removeLeftovers(olds, olds.leftovers) };
    if (moves(olds, news)) {
      const req = moveRequest(olds, news);
      say(`plan: ${planLine(shapeOf(req))}`);
      try {
        const { record, paths, leftovers } = await moveVm(req, { log: say });
        audit({ action: "migrate", vm: news.name, host: `${olds.hostName}->${news.hostName}`, outcome: "ok", detail: JSON.stringify(record) });
        current = { ...olds, hostName: news.hostName, uri: news.uri, pool: news.pool, migrationUri: news.migrationUri, guestNetns: news.guestNetns,
          knownHosts: news.knownHosts, ...paths, lastMigration: record, leftovers: [...current.leftovers ?? [], ...leftovers],
          powerState: await new Virsh(news.uri).domainState(news.name).catch(() => "running") };
      } catch (e) {
        const detail = e instanceof MigrationError ? JSON.stringify(e.record) : errText(e);
        audit({ action: "migrate", vm: news.name, host: `${olds.hostName}->${news.hostName}`, outcome: "failed", detail });
        if (!(e instanceof MigrationError)) throw new Error(`migrate ${news.name}: ${errText(e)}`);
        // the state records where the VM is now and what was left where, not where it was before the attempt
        const f = e.failure;
        const at = f.at === "to"
          ? { hostName: news.hostName, uri: news.uri, pool: news.pool, migrationUri: news.migrationUri, guestNetns: news.guestNetns, ...(f.paths ?? {}) }
          : {};
        const state = plain({ ...current, ...at, knownHosts: news.knownHosts, lastMigration: f.record, leftovers: [...current.leftovers ?? [], ...f.leftovers], __provider: provider });
        throw new PartialFailure(`migrate ${news.name}: ${errText(e)}`, id, state);
      }
    }
    const n = names(current.instance ? { ...news, instance: current.instance } : { ...news, overlayVolume: current.overlayVolume });
    const missing = current.missing ?? [];
    const restart = RESTART_KEYS.some((k) => JSON.stringify(current[k]) !== JSON.stringify(news[k]));
    const v = new Virsh(news.uri);
    if (!restart && missing.length === 0) {
      if (news.owner && JSON.stringify(current.owner) !== JSON.stringify(news.owner) && current.instance) await setOwner(v, news, current.instance);
      return { outs: plain({ ...current, ...news, overlayVolume: current.overlayVolume, isoVolume: current.isoVolume }) };
    }
    const created: string[] = [];
    try {
      if (missing.includes("overlay")) {
        const state = await v.domainState(news.name);
        if (state !== undefined && state !== "shut off")
          throw new Error(`its disk ${n.overlay} was deleted from pool ${news.pool} while ${news.name} is ${state}: qemu holds the only copy of ` +
            `its data, which recreating the disk would lose. Save what you need from the guest, then shut it down (virsh shutdown ${news.name}) ` +
            `and run pulumi up: it gets a new, empty disk`);
        say(`${news.name}: its disk ${n.overlay} is gone: a new, empty disk is created on the base image (the VM boots for the first time again)`);
      }
      const paths = await ensureVolumes(v, news, n, created);
      const state = await v.domainState(news.name);
      if (restart && state !== undefined) await stopDomain(v, news.name);
      const recreated = missing.includes("domain") || missing.includes("overlay");
      if (recreated && state !== undefined && state !== "shut off") await stopDomain(v, news.name);
      await defineAndStart(v, news, paths, current.instance);
      if (current.isoVolume && current.isoVolume !== n.iso) await v.deleteVolume(news.pool, current.isoVolume);
      const uuid = (await v.exec(["domuuid", "--", news.name])).trim();
      audit({ action: "update", vm: news.name, host: news.hostName, outcome: "ok", detail: missing.length ? `recreated ${missing.join(",")}` : undefined });
      return { outs: outputsOf(news, paths, { uuid, instance: current.instance, lastMigration: current.lastMigration, leftovers: current.leftovers ?? [],
        overlayVolume: n.overlay, isoVolume: n.iso, boots: (current.boots ?? 1) + 1 }) };
    } catch (e) {
      audit({ action: "update", vm: news.name, host: news.hostName, outcome: "failed", detail: String(e) });
      throw new Error(`update ${news.name} on ${news.hostName}: ${errText(e)}`);
    }
  },

  /**
   * Removes the domain and the volumes this placement made, after checking that the domain of that name is the one it
   * made (same UUID): a domain someone else made under that name, by hand or in another stack, is left, and said so.
   */
  async delete(_id: string, p: PlacementOutputs) {
    const v = new Virsh(p.uri);
    const there = await findDomain(v, p.name);
    if (there.exists && p.uuid && there.uuid !== p.uuid) {
      say(`${p.name}: the domain named ${p.name} on ${p.hostName} has UUID ${there.uuid}, not ${p.uuid} (${ownerText(there.owner)}): not this placement's; left as it is`);
    } else {
      await stopDomain(v, p.name);
      await undefineDomain(v, p.name);
    }
    // volumes named with this placement's instance are its own; older names are kept when another domain holds the name
    if (p.instance || !there.exists || there.uuid === p.uuid) {
      await v.deleteVolume(p.pool, p.overlayVolume ?? overlayName(p.name));
      if (p.isoVolume) await v.deleteVolume(p.pool, p.isoVolume);
    }
    const left = await removeLeftovers(p, p.leftovers);
    if (left.length) say(`${p.name}: deleted; still on hosts that did not answer: ${left.map((l) => `${l.volume ?? l.domain} on ${l.hostName}`).join(", ")}`);
    audit({ action: "delete", vm: p.name, host: p.hostName, outcome: "ok" });
  },
};

/**
 * Takes over a domain vm-infra made elsewhere (its UUID given explicitly): its disk stays, its owner record becomes this
 * stack's, nothing restarts. When its seed differs from this config's, the next up applies this config's (a restart).
 */
async function adopt(v: Virsh, i: PlacementInputs, uuid: string, from: Owner): Promise<{ id: string; outs: PlacementOutputs }> {
  const instance = from.instance;
  const n = names({ ...i, instance });
  if (!(await v.volumeExists(i.pool, n.overlay))) throw new Error(`adopt ${i.name}: its disk ${n.overlay} is not in pool ${i.pool} on ${i.hostName}`);
  const live = parseDomainXml(await v.exec(["dumpxml", "--", i.name]));
  const diskPath = await v.volumePath(i.pool, n.overlay);
  const liveIso = live.diskPaths[1] ?? "";
  const isoVolume = liveIso ? (await v.exec(["vol-name", "--", liveIso])).trim() : "";
  const sameSeed = isoVolume === n.iso;
  await setOwner(v, i, instance);
  say(`${i.name}: adopted on ${i.hostName} (UUID ${uuid}, ${ownerText(from)})${sameSeed ? "" : `; its seed ${isoVolume} differs from this config's: the next up applies this config (a restart)`}`);
  audit({ action: "adopt", vm: i.name, host: i.hostName, outcome: "ok", detail: `${uuid} from ${from.project}/${from.stack}/${from.resource}` });
  return {
    id: `vm/${i.name}`,
    outs: outputsOf({ ...i, memoryMiB: live.memoryMiB, vcpus: live.vcpus, mac: live.mac ?? i.mac, isoHash: sameSeed ? i.isoHash : `adopted:${isoVolume}` },
      { diskPath, isoPath: liveIso }, { uuid, instance, boots: 1, overlayVolume: n.overlay, isoVolume,
        powerState: (await v.domainState(i.name)) ?? "absent" }),
  };
}

async function setOwner(v: Virsh, i: PlacementInputs, instance: string): Promise<void> {
  const o = ownerOf(i, instance);
  if (!o) return;
  const state = await v.domainState(i.name);
  const flags = state === "running" || state === "paused" ? ["--live", "--config"] : ["--config"];
  await v.exec(["metadata", "--", i.name, "--uri", OWNER_NS, "--key", "vmi", "--set", ownerXml(o), ...flags]);
}
