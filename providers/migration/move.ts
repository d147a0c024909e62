// A VM's move from one host to another, as one resource update, in named steps: pre-check (preChecks.ts), prepare
// target and transfer (transfer.ts), health check (health.ts), clean up the source. Any failure after the pre-check
// goes to rollback.ts, which decides from where the VM really is (decide.ts).
//
// What libvirt does not do here, and these steps do (shared/LAB.md): read-only seeds are never copied, so the ISO is
// placed on the target first; --copy-storage-inc needs the overlay pre-created on the target with its backing file;
// shared storage on a local filesystem needs --unsafe (vm-infra proves sharing itself first); --undefinesource
// leaves the source disks, removed only after health checks pass; an aborted copy leaves volumes on the target.
import { Virsh } from "../../host/virsh";
import { withPrivateFile } from "../../host/tempFiles";
import { domainXml } from "../../libvirt/domain";
import { migrateArgs, parseJobInfo, rewriteDiskPaths } from "../../libvirt/migration";
import { clearStopMark, stopToStartAgain, undefineDomain } from "../domainOps";
import { healthChecks, runHealth } from "./health";
import type { PoolPromises } from "./limits";
import { preChecks } from "./preChecks";
import { rollback } from "./rollback";
import { copyVolume, transfer } from "./transfer";
import { Leftover, Log, MigrationError, MigrationRecord, MoveRequest, StepError, attempt, msg } from "./types";

export interface MoveDeps {
  log: Log;
  /** How a host is reached; unit tests hand in hosts over a recording fake runner. */
  connect?: (uri: string) => Virsh;
  /** Other moves of this update arriving on the same target now (limits.ts): the memory promised to them. */
  arriving?: { vm: string; memoryMiB: number }[];
  /** The target pool room promised to this update's copies (limits.ts); this move's copy holds its size until it ends. */
  room?: PoolPromises;
}

export interface MoveResult {
  record: MigrationRecord;
  paths: { diskPath: string; isoPath: string };
  /** What the source kept that clean-up could not remove (its host stopped answering after the move was verified). */
  leftovers: Leftover[];
}

/**
 * Moves the VM. Resolves with the record of a successful move; rejects with MigrationError, whose failure says where
 * the VM is now, what the rollback did and what was left where.
 */
export async function moveVm(r: MoveRequest, deps: MoveDeps): Promise<MoveResult> {
  const connect = deps.connect ?? ((uri: string) => new Virsh(uri));
  const S = connect(r.from.uri);
  const T = connect(r.to.uri);
  const log = deps.log;
  const t0 = Date.now();
  const rec: MigrationRecord = {
    mode: r.migration.mode, storage: r.storage, from: r.from.hostName, to: r.to.hostName, startedAt: new Date(t0).toISOString(),
    durationMs: 0, health: [], rollback: [], outcome: "moved",
  };
  const createdOnTarget: string[] = [];
  let sourceState = "unknown";
  let paused = false;
  let stopped = false;
  let offline = r.migration.mode === "offline";
  let releaseRoom: (() => void) | undefined;
  try {
    ({ sourceState, release: releaseRoom } = await attempt("pre-check", () => preChecks(r, S, T, { arriving: deps.arriving, room: deps.room })));
    if (sourceState !== "running" && sourceState !== "paused") offline = true; // a stopped VM moves its definition and disk
    const mode = offline ? "offline" : r.migration.mode;
    rec.mode = mode;
    const restarts = r.startStopped && sourceState === "shut off";
    log(`${r.name}: pre-checks passed (${r.from.hostName}: ${sourceState}${restarts ? `, shut down by an earlier move that failed: it is started on ${r.to.hostName}` : ""}); moving ${mode}, storage ${r.storage}`);
    // vm-infra stopped it, not its owner: from here it is a running VM that this move shut down
    if (restarts) [sourceState, stopped] = ["running", true];

    // the target gets what libvirt will not copy
    await attempt("prepare target", async () => {
      if (r.storage !== "copy") return;
      if (!offline) { // libvirt's incremental copy needs the overlay there (offline moves copy the whole file later)
        await T.createOverlay(r.to.pool, r.overlayVolume, r.diskGiB, r.baseVolume);
        createdOnTarget.push(r.overlayVolume);
      }
      rec.bytesMoved = await copyVolume(S, T, r, r.isoVolume, "raw", createdOnTarget);
    });
    const { paths, srcPaths } = await attempt("prepare target", async () => ({
      paths: { diskPath: await T.volumePath(r.to.pool, r.overlayVolume).catch(() => ""), isoPath: await T.volumePath(r.to.pool, r.isoVolume) },
      srcPaths: { diskPath: await S.volumePath(r.from.pool, r.overlayVolume), isoPath: await S.volumePath(r.from.pool, r.isoVolume) },
    }));

    const tSwitch = Date.now();
    if (offline) {
      // the mark first: a run killed from here until the start on the target leaves the hosts saying vm-infra stopped it
      const mark = { by: `the move ${r.from.hostName} -> ${r.to.hostName}`, at: rec.startedAt };
      const restart = sourceState !== "shut off";
      await attempt("stop source", async () => {
        await stopToStartAgain(S, r.name, mark);
        stopped = true;
      });
      await attempt("copy disk", async () => {
        if (r.storage !== "copy") return; // shared: the target already sees the disk
        rec.bytesMoved = (rec.bytesMoved ?? 0) + (await copyVolume(S, T, r, r.overlayVolume, "qcow2", createdOnTarget));
        paths.diskPath = await T.volumePath(r.to.pool, r.overlayVolume);
      });
      await attempt("define and start on target", async () => {
        const uuid = (await S.exec(["domuuid", "--", r.name])).trim();
        await T.withXml(domainXml({ ...r, ...paths, uuid, ...(restart ? { stopMark: mark } : {}) }), (f) => ["define", "--file", f]);
        if (restart) {
          await T.exec(["start", "--", r.name]);
          await clearStopMark(T, r.name);
        }
      });
    } else {
      if (r.migration.mode === "paused" && sourceState === "running") {
        await attempt("suspend source", () => S.exec(["suspend", "--", r.name]));
        paused = true;
      }
      await attempt("transfer", async () => {
        const needXml = srcPaths.diskPath !== paths.diskPath || srcPaths.isoPath !== paths.isoPath;
        const call = (xmlFile?: string) => migrateArgs({
          name: r.name, destUri: r.to.migrationUri ?? r.to.uri, p2p: !!r.to.migrationUri, storage: r.storage,
          migration: r.migration, xmlFile, copyDisks: ["vda"],
        });
        log(`${r.name}: virsh ${call(needXml ? "<target xml>" : undefined).join(" ")}`);
        if (!needXml) return transfer(S, call(), r, log);
        // the target's pool keeps the disks under other paths: hand libvirt the domain as it must be defined there
        const xml = rewriteDiskPaths(await S.exec(["dumpxml", "--migratable", "--", r.name]), {
          [srcPaths.diskPath]: paths.diskPath, [srcPaths.isoPath]: paths.isoPath,
        });
        await withPrivateFile(xml, (f) => transfer(S, call(f), r, log));
      });
      const stats = parseJobInfo(await T.exec(["domjobinfo", "--completed", "--", r.name]).catch(() => ""));
      rec.downtimeMs = stats.downtimeMs; // libvirt's figure for the switchover
      rec.bytesMoved = (rec.bytesMoved ?? 0) + (stats.processedBytes ?? 0);
      if (paused || (await T.domainState(r.name)) === "paused") {
        if (sourceState === "running") await attempt("resume on target", () => T.exec(["resume", "--", r.name]));
        if (paused) rec.downtimeMs = Date.now() - tSwitch; // suspended from before the transfer until now
      }
    }

    if (sourceState === "running") {
      rec.health = await runHealth(healthChecks(r, T, paths), r.migration.healthTimeoutSeconds, log, r.name);
      const bad = rec.health.find((h) => !h.ok);
      if (bad) throw new StepError("health check", `${bad.check}: ${bad.detail}`);
    }
    // offline: the guest was unavailable from its shutdown until the checks (agent, SSH) pass on the target
    if (offline) rec.downtimeMs = Date.now() - tSwitch;

    // only now is the source's copy no longer needed; the VM is verified on the target, so a source that stops
    // answering here does not undo the move: what it still holds is recorded and removed by a later up
    const leftovers: Leftover[] = [];
    try {
      if (offline) await undefineDomain(S, r.name);
      if (r.storage === "copy") for (const vol of [r.overlayVolume, r.isoVolume]) await S.deleteVolume(r.from.pool, vol);
    } catch (e) {
      for (const vol of r.storage === "copy" ? [r.overlayVolume, r.isoVolume] : []) leftovers.push({ hostName: r.from.hostName, uri: r.from.uri, pool: r.from.pool, volume: vol });
      if (offline) leftovers.push({ hostName: r.from.hostName, uri: r.from.uri, pool: r.from.pool, domain: r.name });
      log(`${r.name}: moved, but clean-up on ${r.from.hostName} failed (${msg(e).slice(0, 200)}): its old copy is recorded and removed by a later up`);
    }
    rec.durationMs = Date.now() - t0;
    log(`${r.name}: moved ${r.from.hostName} -> ${r.to.hostName} (${rec.mode}) in ${(rec.durationMs / 1000).toFixed(1)} s, downtime ${rec.downtimeMs ?? "?"} ms`);
    return { record: rec, paths, leftovers };
  } catch (e) {
    rec.failedStep = e instanceof StepError ? e.step : "move";
    rec.error = msg(e);
    if (rec.failedStep === "pre-check") {
      rec.rollback.push("nothing had changed"); // pre-checks only ask questions
      rec.outcome = "rolled back";
      rec.durationMs = Date.now() - t0;
      throw new MigrationError({ record: rec, at: "from", leftovers: [], leftStopped: !!r.startStopped },
        `Rollback: nothing had changed. The VM ${r.startStopped ? "is still shut down" : "runs"} on ${r.from.hostName} as before.`);
    }
    log(`${r.name}: ${rec.failedStep} failed: ${rec.error.slice(0, 500)}; rolling back`);
    const rb = await rollback(r, S, T, { sourceState, paused, stopped, offline, createdOnTarget }, rec.rollback, log);
    rec.outcome = rb.at === "from" ? "rolled back" : rb.at === "to" ? "kept on target" : "unknown";
    rec.durationMs = Date.now() - t0;
    const paths = rb.at === "to"
      ? { diskPath: await T.volumePath(r.to.pool, r.overlayVolume).catch(() => ""), isoPath: await T.volumePath(r.to.pool, r.isoVolume).catch(() => "") }
      : undefined;
    throw new MigrationError({ record: rec, at: rb.at, paths, leftovers: rb.leftovers, leftStopped: rb.leftStopped }, rb.summary);
  } finally {
    releaseRoom?.(); // the copy is in the pool now, or rolled back out of it
  }
}
