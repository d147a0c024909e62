// Refresh of the placement unit: where the VM really is (by UUID, on every configured host), which of its parts are
// gone, what it left elsewhere. A recorded host that does not answer changes nothing.
import * as pulumi from "@pulumi/pulumi";
import { Virsh, isNotFound } from "../../host/virsh";
import { parseDomainXml, parseStopMark, parseUuid, stopText } from "../../libvirt/domain";
import { poll } from "../../host/poll";
import { seenOf } from "../migration/decide";
import { observe } from "../ownership";
import { errText, say } from "../say";
import { Leftover, PlacementOutputs, overlayName, plain } from "./rules";

/**
 * Refresh: where is the VM really, and is every part of it there? On its recorded host, or (moved outside vm-infra,
 * or by an interrupted up) on another configured host with the same UUID. A recorded host that does not answer
 * changes nothing (the state is kept, with a warning). A domain gone everywhere whose disk is gone too is reported
 * gone (the next up creates the VM); a part gone while the rest is there is listed in `missing` (the next up
 * recreates it, keeping the disk).
 */
export async function readPlacement(id: string, props: PlacementOutputs, waited = false): Promise<pulumi.dynamic.ReadResult> {
  // one entry per hypervisor: several host names may reach the same libvirtd (another pool on it, say)
  const all: [string, { uri: string; pool: string }][] = [
    [props.hostName, { uri: props.uri, pool: props.pool }],
    ...Object.entries(props.knownHosts ?? {}).filter(([n]) => n !== props.hostName),
  ];
  const candidates = all.filter(([, h], i) => all.findIndex(([, o]) => o.uri === h.uri) === i);
  const n = { overlay: props.overlayVolume ?? overlayName(props.name), iso: props.isoVolume };
  // every copy with this VM's UUID, on every host that answers; the running (or paused) one is where the VM is
  const copies: { hostName: string; uri: string; pool: string; xml: string; state: string; live: boolean }[] = [];
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
    const state = await v.domainState(props.name).catch(() => undefined);
    const seen = seenOf(state);
    copies.push({ hostName, ...h, xml, state: seen, live: seen === "running" || seen === "paused" });
  }
  const liveCopies = copies.filter((c) => c.live);
  if (liveCopies.length > 1 && !waited) {
    // a migration job of libvirt's is still moving it (the run that started it was killed): let it end, then look again
    const moving = await activeJob(liveCopies.map((c) => new Virsh(c.uri)), props.name);
    if (moving) {
      say(`${props.name}: a migration job is still under way on ${moving.uri}: waiting for libvirt to finish it`);
      await poll(async () => ((await activeJob([moving], props.name)) ? undefined : { value: true }),
        { timeoutMs: JOB_WAIT_MS, intervalMs: 1000, what: `${props.name}: libvirt's migration job on ${moving.uri}` }).catch(() => undefined);
      return readPlacement(id, props, true);
    }
  }
  // exactly one running copy is the VM; paused ones elsewhere never ran after they stopped (an incoming copy a
  // restarted libvirtd reconnected to) and are leftovers. Two running copies, or only paused ones, decide nothing.
  const running = copies.filter((c) => c.state === "running");
  if (liveCopies.length > 1 && running.length !== 1) {
    say(`${props.name}: copies on ${liveCopies.map((c) => `${c.hostName} (${c.state})`).join(" and ")}: check by hand; the state keeps ${props.hostName}, vm-infra touches neither`);
    return { id, props };
  }
  const found = running[0] ?? liveCopies[0] ?? copies[0]; // a stopped VM is where its (first, recorded-host-first) definition is
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
    if (seen === "shut off" || (seen === "paused" && found.state === "running")) leftovers.push({ hostName, uri: h.uri, pool: h.pool, domain: props.name });
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
      // a VM a failed move shut down that runs again (started by hand) needs no start from the next up; one that a run
      // killed between its stop and its start left off says so in its own definition (the stop mark)
      stoppedByMove: found.state === "running" ? undefined : props.stoppedByMove ?? stoppedByMark(props.name, found),
    }),
  };
}

/** A shut-off copy that carries vm-infra's stop mark was stopped by vm-infra to be started again, not by its owner. */
function stoppedByMark(name: string, c: { hostName: string; xml: string; state: string }): string | undefined {
  const m = c.state === "shut off" ? parseStopMark(c.xml) : undefined;
  if (m) say(`${name}: shut off on ${c.hostName} with vm-infra's stop mark: ${stopText(m)} stopped it to start it again and did not (its run ended first); the next up starts it`);
  return m ? stopText(m) : undefined;
}

/** How long refresh waits for a migration job that an interrupted run left to libvirt. */
const JOB_WAIT_MS = 15 * 60_000;

/** The first host on which libvirt runs a job for this domain (a migration in flight), if any. */
async function activeJob(hosts: Virsh[], name: string): Promise<Virsh | undefined> {
  for (const v of hosts) if ((await v.jobInfo(name)).active) return v;
  return undefined;
}
