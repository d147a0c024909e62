// The placement unit's host steps: room in the pool, its volumes, define and start, the owner record, adoption.
import { stat } from "node:fs/promises";
import { Virsh } from "../../host/virsh";
import { Owner, StopMark, domainXml, ownerXml, OWNER_NS, parseDomainXml } from "../../libvirt/domain";
import { clearStopMark, metadataFlags } from "../domainOps";
import { audit } from "../audit";
import { ownerText } from "../ownership";
import { say } from "../say";
import { PlacementInputs, PlacementOutputs, names, outputsOf, ownerOf } from "./rules";

/** Minimum free space a new VM needs in its pool: the seed, plus room for the guest's first writes to its overlay. */
export const FIRST_BOOT_BYTES = 256 * 1024 ** 2;

/** A pool without room fails the create before anything is made there (a thin overlay grows later; this is the floor). */
export async function checkRoom(v: Virsh, i: PlacementInputs): Promise<void> {
  const { state, availableBytes: available } = await v.poolInfo(i.pool);
  const need = (await stat(i.isoFile)).size + FIRST_BOOT_BYTES;
  if (state !== undefined && state !== "running") throw new Error(`pool ${i.pool} on ${i.hostName} is ${state}; start it (virsh pool-start ${i.pool})`);
  if (available < need)
    throw new Error(`pool ${i.pool} on ${i.hostName} has ${(available / 1024 ** 2).toFixed(0)} MiB available; a new VM needs at least ` +
      `${(need / 1024 ** 2).toFixed(0)} MiB (seed + first boot). Free space in the pool or choose another pool`);
}

export async function ensureVolumes(v: Virsh, i: PlacementInputs, n: { overlay: string; iso: string }, created: string[]): Promise<{ diskPath: string; isoPath: string }> {
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

/**
 * A new VM's first definition and start. The XML carries no UUID: when a domain of that name appeared since the
 * create's check (another stack, a person), libvirt itself refuses the define instead of it being redefined.
 */
export async function defineNew(v: Virsh, i: PlacementInputs, paths: { diskPath: string; isoPath: string }, instance: string): Promise<void> {
  await v.withXml(domainXml({ ...i, ...paths, owner: ownerOf(i, instance) }), (f) => ["define", "--file", f]);
  await v.exec(["start", "--", i.name]);
}

/** `stopMark`: the VM was stopped by this update to be started again; the new definition keeps saying so until it runs. */
export async function defineAndStart(v: Virsh, i: PlacementInputs, paths: { diskPath: string; isoPath: string }, instance?: string, start = true,
  stopMark?: StopMark): Promise<void> {
  const state = await v.domainState(i.name);
  const uuid = state === undefined ? undefined : (await v.exec(["domuuid", "--", i.name])).trim();
  await v.withXml(domainXml({ ...i, ...paths, uuid, owner: ownerOf(i, instance), stopMark }), (f) => ["define", "--file", f]);
  if (start && state !== "running") await v.exec(["start", "--", i.name]);
  if (stopMark) await clearStopMark(v, i.name);
}

/**
 * Takes over a domain vm-infra made elsewhere (its UUID given explicitly): its disk stays, its owner record becomes this
 * stack's, nothing restarts. When its seed differs from this config's, the next up applies this config's (a restart).
 */
export async function adopt(v: Virsh, i: PlacementInputs, uuid: string, from: Owner): Promise<{ id: string; outs: PlacementOutputs }> {
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

export async function setOwner(v: Virsh, i: PlacementInputs, instance: string): Promise<void> {
  const o = ownerOf(i, instance);
  if (!o) return;
  const state = await v.domainState(i.name);
  await v.exec(["metadata", "--domain", i.name, "--uri", OWNER_NS, "--key", "vmi", "--set", ownerXml(o), ...metadataFlags(state)]);
}

/** What stopped a VM, from the state's stoppedByMove (states written before restarts were marked say only "a -> b at t"). */
export const stoppedBy = (s: string) => (s.startsWith("the ") ? s : `the move ${s}`);

/**
 * Starts a VM that vm-infra shut down and could not start again (the state's stoppedByMove: a failed move, or a run
 * killed between the stop and the start), if it is still shut off where the state says it is; a VM found running or
 * paused was started since, and is left as it is. True when this call started it.
 */
export async function startStopped(v: Virsh, p: PlacementOutputs): Promise<boolean> {
  const state = await v.domainState(p.name);
  if (state !== "shut off") return false;
  await v.exec(["start", "--", p.name]);
  await clearStopMark(v, p.name);
  const by = stoppedBy(p.stoppedByMove ?? "");
  say(`${p.name}: started on ${p.hostName}: ${by} shut it down and did not start it again`);
  audit({ action: "start", vm: p.name, host: p.hostName, outcome: "ok", detail: `stopped by ${by}` });
  return true;
}
