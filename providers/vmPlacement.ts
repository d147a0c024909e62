// The placement unit: a VM's domain and the volumes it owns (overlay on the base image, cloud-init ISO) live on one
// host together and are created, updated and deleted as one resource. That shape lets a change of host become one
// update (a migration) instead of a replacement of disks or a second copy of the domain.
//
// check/diff are pure (they run during preview, maybe with unknown values); create/update/delete go through
// host/virsh.ts only. Registered with Pulumi through providers/shim.ts.
import * as pulumi from "@pulumi/pulumi";
import { Virsh, isNotFound } from "../host/virsh";
import { Owner, parseDomainXml, parseOwner } from "../libvirt/domain";
import { planLine } from "../libvirt/migration";
import { audit } from "./audit";
import { stopDomain, stopToStartAgain, undefineDomain } from "./domainOps";
import { cancelledSince } from "./migration/cancel";
import { limiter, poolPromises } from "./migration/limits";
import { moveVm } from "./migration/move";
import { MigrationError, shapeOf } from "./migration/types";
import { findDomain, observe, ownerText } from "./ownership";
import { removeLeftovers } from "./placement/leftovers";
import { adopt, checkRoom, defineAndStart, defineNew, ensureVolumes, setOwner, startStopped, stoppedBy } from "./placement/ops";
import { readPlacement } from "./placement/refresh";
import {
  PlacementInputs, PlacementOutputs, RESTART_KEYS, checkMove, checkUndrain, checkedInputs, instances, moveRequest, moves, names, outputsOf,
  overlayName, placementDiff, plain, strayVolumes,
} from "./placement/rules";
import { errText, say } from "./say";

export * from "./placement/rules";
export { removeLeftovers };

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

/**
 * A host's new URI must reach the same hypervisor: the VM (same UUID) is found through it, or nothing is recorded. A
 * URI that reaches another machine is not a way to move a VM (give that machine its own host name).
 */
async function sameHypervisor(olds: PlacementOutputs, news: PlacementInputs): Promise<void> {
  const seen = await observe(new Virsh(news.uri), news.name, olds.uuid).catch(() => "unknown" as const);
  if (seen === "running" || seen === "paused" || seen === "shut off") return;
  throw new Error(`${news.name}: hosts.${news.hostName}.uri changed to ${news.uri}, but ${news.name}${olds.uuid ? ` (UUID ${olds.uuid})` : ""} is ` +
    `${seen === "unknown" ? "not reachable through it" : seen === "foreign" ? "another domain there" : "not there"}; nothing was changed and the state keeps ` +
    `${olds.uri}. A new URI must reach the same hypervisor; to move the VM to another one, give that hypervisor its own host name`);
}

/** What a move's plan line adds: the drain that causes it, the VMs it waits for. */
const moveNote = (news: PlacementInputs) =>
  `${news.drainedFrom ? ` (drain of ${news.drainedFrom})` : ""}${news.migration.after?.length ? `; waits for ${news.migration.after.join(", ")} (migration.after)` : ""}`;

/** The domain's owner record names this very resource: the state lost it (a create killed before it was recorded, a `pulumi state delete`). */
const sameResource = (o: Owner | undefined, i: PlacementInputs) =>
  !!o && !!i.owner && o.project === i.owner.project && o.stack === i.owner.stack && o.resource === i.owner.resource;
const SAME_RESOURCE = ": this resource's own VM, which the state does not hold (a create killed before the state recorded it, or a `pulumi state delete`)";

/**
 * A failed create removes what it made and says exactly what it did: the domain only when it is this create's (its
 * disk is the overlay this create made, named with its instance: a domain of that name defined by someone else
 * meanwhile is left alone), and each volume it made, naming any it could not remove.
 */
async function undoCreate(v: Virsh, i: PlacementInputs, definedOn: string | undefined, created: string[]): Promise<string> {
  let domain = "domain untouched";
  if (definedOn) {
    domain = await v.exec(["dumpxml", "--", i.name]).then(async (xml) => {
      if (!parseDomainXml(xml).diskPaths.includes(definedOn)) return `domain ${i.name} left as it is: ${ownerText(parseOwner(xml))}, not by this create`;
      await stopDomain(v, i.name, 5000);
      await undefineDomain(v, i.name);
      return "domain undefined";
    }, (x) => (isNotFound(x) ? "domain never defined" : Promise.reject(x))).catch((x) => `domain ${i.name} may still be defined on ${i.hostName}: ${errText(x)}`);
  }
  const left: string[] = [];
  for (const vol of [...created].reverse()) await v.deleteVolume(i.pool, vol).catch((x) => left.push(`${vol} (${errText(x)})`));
  const removed = `${created.length - left.length} volume(s) removed`;
  return `rolled back: ${removed}${left.length ? `, left in pool ${i.pool} on ${i.hostName}: ${left.join(", ")}` : ""}, ${domain}`;
}

/** Says which volumes named for this VM the pool holds besides this create's; removes nothing (see strayVolumes). */
async function reportStrays(v: Virsh, i: PlacementInputs, own: string[]): Promise<void> {
  const where = `pool ${i.pool} on ${i.hostName}`;
  const strays = await v.listVolumes(i.pool).then((all) => strayVolumes(i.name, all, own), (x) => {
    say(`${i.name}: could not list ${where} to look for volumes a killed create left: ${errText(x)}`);
    return [];
  });
  if (strays.length)
    say(`${i.name}: ${where} holds ${strays.length} volume(s) named for ${i.name} that are not this create's: ${strays.join(", ")}; left by a ` +
      `create of ${i.name} killed before the state recorded it${i.storage === "shared" ? ", or another host's VM of that name in this shared pool" : ""}. ` +
      `Left in place: remove them (virsh vol-delete --pool ${i.pool} NAME) once you know nothing needs them`);
}

export const provider: pulumi.dynamic.ResourceProvider = {
  async check(olds: Partial<PlacementInputs>, news: PlacementInputs) {
    return { inputs: checkedInputs(olds, news), failures: [...checkMove(olds, news), ...checkUndrain(olds, news)] };
  },

  async diff(_id: string, olds: PlacementOutputs, news: PlacementInputs) {
    const d = placementDiff(olds, news);
    // preview's plan line; computed from inputs only (preview runs nothing on any host)
    if (moves(olds, news) && olds.hostName !== undefined)
      say(`plan: ${planLine(shapeOf(moveRequest(olds, news)))}${moveNote(news)}`);
    if (olds.missing?.length) say(`plan: ${olds.name}: recreate ${olds.missing.join(", ")} on ${olds.hostName} (found gone by refresh)`);
    if (olds.stoppedByMove && !moves(olds, news))
      say(`plan: ${olds.name}: start on ${olds.hostName} (shut down by ${stoppedBy(olds.stoppedByMove)}, which did not start it again)`);
    return d;
  },

  async create(i: PlacementInputs) {
    const v = new Virsh(i.uri);
    const created: string[] = [];
    let definedOn: string | undefined; // the overlay's path, once a define of the domain on it may have happened
    const instance = instances.next();
    try {
      // vm-infra never adopts a domain it did not make in this resource: a second stack with the same VM would
      // otherwise take over (and later destroy) the first one's VM
      const there = await findDomain(v, i.name);
      if (there.exists && i.adopt && there.uuid === i.adopt && there.owner) return await adopt(v, i, there.uuid, there.owner);
      if (there.exists)
        throw new Error(`a domain named ${i.name} already exists on ${i.hostName} (${ownerText(there.owner)}${sameResource(there.owner, i) ? SAME_RESOURCE : ""}); vm-infra does not adopt ` +
          `an existing VM unless told to: remove it, choose another name, or, to manage that VM from this stack, set vms[].adopt to its ` +
          `UUID${there.owner ? ` (${there.uuid})` : " (only VMs made by vm-infra can be adopted)"}`);
      await checkRoom(v, i);
      const n = names({ ...i, instance });
      const paths = await ensureVolumes(v, i, n, created);
      await reportStrays(v, i, [n.overlay, n.iso]);
      definedOn = paths.diskPath;
      await defineNew(v, i, paths, instance);
      const uuid = (await v.exec(["domuuid", "--", i.name])).trim();
      audit({ action: "create", vm: i.name, host: i.hostName, outcome: "ok" });
      return { id: `vm/${i.name}`, outs: outputsOf(i, paths, { uuid, instance, boots: 1 }) };
    } catch (e) {
      const undone = await undoCreate(v, i, definedOn, created);
      audit({ action: "create", vm: i.name, host: i.hostName, outcome: "failed", detail: `${String(e)} (${undone})` });
      throw new Error(`create ${i.name} on ${i.hostName}: ${errText(e)} (${undone})`);
    }
  },

  /** Refresh: see placement/refresh.ts. */
  read: readPlacement,

  async update(id: string, olds: PlacementOutputs, checked: PlacementInputs) {
    const { moveFrom: _policyOnly, ...news } = checked;
    const provider = (news as unknown as { __provider?: string }).__provider;
    if (!moves(olds, news) && olds.uri !== news.uri) await sameHypervisor(olds, news);
    let current: PlacementOutputs = { ...olds, leftovers: await removeLeftovers(olds, olds.leftovers, new Virsh(moves(olds, news) ? olds.uri : news.uri)) };
    if (moves(olds, news)) {
      const req = moveRequest(olds, news);
      say(`plan: ${planLine(shapeOf(req))}${moveNote(news)}`);
      const release = await limiter.acquire({ vm: news.name, from: olds.hostName, to: news.hostName, memoryMiB: req.memoryMiB }, news.limits, say,
        () => cancelledSince(news.owner?.stack));
      try {
        const { record, paths, leftovers } = await moveVm(req, { log: say, arriving: limiter.arriving(news.hostName, news.name), room: poolPromises }).finally(release);
        audit({ action: "migrate", vm: news.name, host: `${olds.hostName}->${news.hostName}`, outcome: "ok", detail: JSON.stringify(record) });
        current = { ...olds, hostName: news.hostName, uri: news.uri, pool: news.pool, migrationUri: news.migrationUri, guestNetns: news.guestNetns, guestJump: news.guestJump,
          knownHosts: news.knownHosts, ...paths, lastMigration: record, leftovers: [...current.leftovers ?? [], ...leftovers],
          powerState: await new Virsh(news.uri).domainState(news.name).catch(() => "running"), stoppedByMove: undefined };
      } catch (e) {
        const detail = e instanceof MigrationError ? JSON.stringify(e.record) : errText(e);
        audit({ action: "migrate", vm: news.name, host: `${olds.hostName}->${news.hostName}`, outcome: "failed", detail });
        if (!(e instanceof MigrationError)) throw new Error(`migrate ${news.name}: ${errText(e)}`);
        // the state records where the VM is now and what was left where, not where it was before the attempt
        const f = e.failure;
        const at = f.at === "to"
          ? { hostName: news.hostName, uri: news.uri, pool: news.pool, migrationUri: news.migrationUri, guestNetns: news.guestNetns, guestJump: news.guestJump,
            drainedFrom: news.drainedFrom, ...(f.paths ?? {}) }
          : {};
        const state = plain({ ...current, ...at, knownHosts: news.knownHosts, lastMigration: f.record, leftovers: [...current.leftovers ?? [], ...f.leftovers],
          stoppedByMove: f.leftStopped ? `the move ${olds.hostName} -> ${news.hostName} at ${f.record.startedAt}` : undefined, __provider: provider });
        throw new PartialFailure(`migrate ${news.name}: ${errText(e)}`, id, state);
      }
    }
    const n = names(current.instance ? { ...news, instance: current.instance } : { ...news, overlayVolume: current.overlayVolume });
    const missing = current.missing ?? [];
    const changed = RESTART_KEYS.filter((k) => JSON.stringify(current[k]) !== JSON.stringify(news[k]));
    const restart = changed.length > 0;
    const v = new Virsh(news.uri);
    if (!restart && missing.length === 0) {
      if (news.owner && JSON.stringify(current.owner) !== JSON.stringify(news.owner) && current.instance) await setOwner(v, news, current.instance);
      const started = current.stoppedByMove ? await startStopped(v, current) : false;
      return { outs: plain({ ...current, ...news, overlayVolume: current.overlayVolume, isoVolume: current.isoVolume, stoppedByMove: undefined,
        ...(started ? { powerState: "running", boots: (current.boots ?? 1) + 1 } : {}) }) };
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
      const recreated = missing.includes("domain") || missing.includes("overlay");
      // a running VM stopped here is started again below; the mark says so on the host until it runs
      const mark = (restart || recreated) && (state === "running" || state === "paused")
        ? { by: `the restart that applies ${changed.length ? changed.join(", ") : `a new ${missing.join(", ")}`}`, at: new Date().toISOString() } : undefined;
      if (mark) await stopToStartAgain(v, news.name, mark);
      else if ((restart || recreated) && state !== undefined && state !== "shut off") await stopDomain(v, news.name);
      await defineAndStart(v, news, paths, current.instance, true, mark);
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
    if (!there.exists || there.uuid !== p.uuid) {
      // not where the state says: if it runs on another host, its disks are its only copy (and a shared pool's are the
      // same files): nothing is removed until the state knows where it is
      for (const [hostName, h] of Object.entries(p.knownHosts ?? {})) {
        if (h.uri === p.uri) continue;
        const seen = await observe(new Virsh(h.uri), p.name, p.uuid);
        if (seen === "running" || seen === "paused")
          throw new Error(`delete ${p.name}: it is not on ${p.hostName} as recorded but ${seen} on ${hostName}; nothing was removed. ` +
            `Run pulumi refresh (it records where the VM is), then destroy again`);
      }
    }
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

