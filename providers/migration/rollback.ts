// After a failed step: ask both hosts where the VM is, decide from the table in decide.ts, act, and look again.
// Returns where the VM is and what was left where; never stops a running copy without a verified one elsewhere.
import { Virsh, isNotFound } from "../../host/virsh";
import { completionTimeoutMs, migrateArgs } from "../../libvirt/migration";
import { clearStopMark, undefineDomain } from "../domainOps";
import { observe } from "../ownership";
import { Decision, Seen, decide } from "./decide";
import { Leftover, Log, MoveRequest, msg, shapeOf } from "./types";

export interface RollbackFacts {
  sourceState: string;
  paused: boolean;
  stopped: boolean;
  offline: boolean;
  /** Volumes this move created on the target. */
  createdOnTarget: string[];
}

export interface RollbackResult {
  /** Where the VM is now, as verified after acting ("unknown": the state keeps the source). */
  at: "from" | "to" | "unknown";
  decision: Decision;
  leftovers: Leftover[];
  /** This move shut the running VM down and it runs nowhere now (not started again: its host did not answer, or the start failed). */
  leftStopped: boolean;
  /** One sentence for the error message: where the VM runs, what did not answer, what was left where. */
  summary: string;
}

export async function rollback(r: MoveRequest, S: Virsh, T: Virsh, f: RollbackFacts, did: string[], log: Log): Promise<RollbackResult> {
  const from = r.from.hostName;
  const to = r.to.hostName;
  const [s0, t0] = [await observe(S, r.name, r.uuid), await observe(T, r.name, r.uuid)];
  const before = f.sourceState === "paused" ? "paused" : f.sourceState === "shut off" ? "shut off" : "running";
  const decision = decide({ source: s0, target: t0, offline: f.offline, before, pausedByUs: f.paused, stoppedByUs: f.stopped });
  log(`${r.name}: rollback: ${from} says ${s0}, ${to} says ${t0}: ${decision.why}`);
  const leftovers: Leftover[] = [];
  const ours = [...new Set([...f.createdOnTarget, ...(r.storage === "copy" ? [r.overlayVolume, r.isoVolume] : [])])];
  const step = async (what: string, fn: () => Promise<unknown>) => {
    await fn();
    did.push(what);
  };
  let failed: string | undefined;
  try {
    for (const a of decision.actions) {
      switch (a) {
        case "remove target domain":
          await step(`removed the unfinished copy on ${to}`, async () => {
            await T.exec(["destroy", "--", r.name]).catch((e) => { if (!isNotFound(e) && !/not running/.test(msg(e))) throw e; });
            await undefineDomain(T, r.name);
          });
          break;
        case "remove target volumes": {
          const present: string[] = [];
          for (const vol of ours) if (await T.volumeExists(r.to.pool, vol)) present.push(vol);
          if (present.length) await step(`deleted ${present.join(", ")} on ${to}`, async () => {
            for (const vol of present) await T.deleteVolume(r.to.pool, vol);
          });
          break;
        }
        case "migrate back": {
          if (r.storage === "copy")
            await step(`recreated the overlay on ${from} for the copy back`, async () => {
              await S.deleteVolume(r.from.pool, r.overlayVolume);
              await S.createOverlay(r.from.pool, r.overlayVolume, r.diskGiB, r.baseVolume);
            });
          const back = migrateArgs({
            name: r.name, destUri: r.from.migrationUri ?? r.from.uri, p2p: !!r.from.migrationUri, storage: r.storage,
            migration: { ...r.migration, mode: t0 === "running" ? "live" : "paused", postcopy: false, bandwidthMiBs: 0 }, copyDisks: ["vda"],
          });
          await step(`migrated back ${to} -> ${from}`, () => T.exec(back, completionTimeoutMs(shapeOf(r)) + 60_000));
          break;
        }
        case "resume source":
          await step(`resumed on ${from}`, () => S.exec(["resume", "--", r.name]));
          break;
        case "start source":
          await step(`started again on ${from}`, async () => {
            await S.exec(["start", "--", r.name]);
            await clearStopMark(S, r.name);
          });
          break;
        case "start target":
          await step(`started the copy on ${to}`, async () => {
            await T.exec(["start", "--", r.name]);
            await clearStopMark(T, r.name);
          });
          break;
        case "record source copy":
          break; // recorded below, from what the source holds after acting
      }
    }
  } catch (e) {
    failed = msg(e).slice(0, 300);
    did.push(`FAILED: ${failed}`);
  }

  // look again: the state records what is true now, not what was planned
  const [s1, t1] = [await observe(S, r.name, r.uuid), await observe(T, r.name, r.uuid)];
  const live = (x: Seen) => x === "running" || x === "paused";
  let at: RollbackResult["at"];
  if (live(s1) && !live(t1) && t1 !== "unknown") at = "from";
  else if (live(t1) && !live(s1) && s1 !== "unknown") at = "to";
  else if (live(t1) && s1 === "unknown") at = "to";
  else if (live(s1) && t1 === "unknown") at = "from";
  else if (!live(s1) && !live(t1) && decision.keep !== "none" && !failed) at = decision.keep === "source" ? "from" : "to";
  else at = "unknown";

  // what this VM still has where it does not run
  const leftHost = at === "from" ? { v: T, end: r.to, seen: t1 } : at === "to" ? { v: S, end: r.from, seen: s1 } : undefined;
  if (leftHost && r.storage === "copy") {
    const vols = at === "from" ? ours : [r.overlayVolume, r.isoVolume];
    for (const vol of vols) {
      const there = leftHost.seen === "unknown" ? true : await leftHost.v.volumeExists(leftHost.end.pool, vol).catch(() => true);
      if (there) leftovers.push({ hostName: leftHost.end.hostName, uri: leftHost.end.uri, pool: leftHost.end.pool, volume: vol });
    }
  }
  if (leftHost && (leftHost.seen === "shut off" || (leftHost.seen === "unknown" && at === "to")))
    leftovers.push({ hostName: leftHost.end.hostName, uri: leftHost.end.uri, pool: leftHost.end.pool, domain: r.name });

  const leftStopped = f.stopped && before === "running" && !live(s1) && !live(t1);
  const silent = [s1 === "unknown" ? from : undefined, t1 === "unknown" ? to : undefined].filter(Boolean) as string[];
  const parts: string[] = [];
  parts.push(did.length ? `Rollback: ${did.join("; ")}.` : "Rollback: nothing to undo.");
  const stoppedHere = (host: string, seen: Seen) => `The VM is on ${host}, shut down by this move and not started again (${host} ` +
    `${seen === "unknown" ? "did not answer" : `says ${seen}`}); the state records that, and the next up starts it.`;
  if (at === "from") parts.push(leftStopped ? stoppedHere(from, s1) : `The VM runs on ${from}${before === "running" ? "" : ` (${s1})`} as before.`);
  else if (at === "to") parts.push(leftStopped ? `${stoppedHere(to, t1)} The state now says ${to}.` : `The VM runs on ${to} (${t1}); the state now says ${to}.`);
  else parts.push(`Where the VM runs cannot be verified (${from}: ${s1}, ${to}: ${t1}); vm-infra changed nothing more; the state still says ${from}` +
    `${leftStopped ? ", and that this move shut the VM down: the next up starts it where it is found stopped" : ""}.`);
  if (silent.length) parts.push(`${silent.join(" and ")} did not answer${at === "unknown" ? `: run pulumi refresh when ${silent.length > 1 ? "they answer" : "it answers"}` : ""}.`);
  if (leftovers.length) {
    const byHost = new Map<string, string[]>();
    for (const l of leftovers) byHost.set(l.hostName, [...(byHost.get(l.hostName) ?? []), l.volume ?? `definition ${l.domain}`]);
    parts.push(`Left and recorded (the next up removes them once their host answers and the VM is verified elsewhere): ${[...byHost].map(([h, v]) => `${v.join(", ")} on ${h}`).join("; ")}.`);
  }
  const summary = parts.join(" ");
  log(`${r.name}: ${summary}`);
  return { at, decision, leftovers, leftStopped, summary };
}
