// A VM's move from one host to another, as one resource update: pre-checks (nothing changed when they fail), target
// preparation, the transfer (libvirt's migration job, polled), health checks on the target, then cleanup of the
// source. Any failure rolls back to the source, state-driven (it looks where the domain really is), so the VM runs
// in exactly one place: never two running copies, never none when the source was healthy.
//
// What libvirt does not do here, and this file does (shared/LAB.md): read-only seeds are never copied, so the ISO is
// placed on the target first; --copy-storage-inc needs the overlay pre-created on the target with its backing file;
// shared storage on a local filesystem needs --unsafe (vm-infra proves sharing itself first); --undefinesource
// leaves the source disks, removed only after health checks pass; an aborted copy leaves volumes on the target.
import { stat } from "node:fs/promises";
import * as path from "node:path";
import type { DomainType, MigrationSpec } from "../config/spec";
import { run } from "../host/runner";
import { sshRun } from "../host/ssh";
import { withPrivateDir, withPrivateFile } from "../host/tempFiles";
import { Virsh } from "../host/virsh";
import { domainXml, parseDomainXml, parseKeyValues } from "../libvirt/domain";
import { MoveShape, StorageMove, completionTimeoutMs, mib, migrateArgs, parseJobInfo, rewriteDiskPaths } from "../libvirt/migration";
import { sleep, stopDomain, undefineDomain } from "./domainOps";
import { findAddress } from "./vmReady";

export interface HostEnd {
  hostName: string;
  uri: string;
  migrationUri?: string;
  pool: string;
  guestNetns?: string;
}

export interface MoveRequest {
  name: string;
  from: HostEnd;
  to: HostEnd;
  storage: StorageMove;
  migration: MigrationSpec;
  domainType: DomainType;
  vcpus: number;
  memoryMiB: number;
  diskGiB: number;
  network: string;
  bridge?: string;
  mac: string;
  baseVolume: string;
  overlayVolume: string;
  isoVolume: string;
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  guest: { user: string; privateKeyPath: string; staticAddress?: string };
}

export interface HealthResult {
  check: string;
  ok: boolean;
  attempts: number;
  ms: number;
  detail?: string;
}

export interface MigrationRecord {
  mode: string;
  storage: StorageMove;
  from: string;
  to: string;
  startedAt: string;
  durationMs: number;
  /** Guest downtime as libvirt reports it for the switchover (live/paused); for offline, stop to start on target. */
  downtimeMs?: number;
  bytesMoved?: number;
  health: HealthResult[];
  rollback: string[];
  outcome: "moved" | "rolled back" | "rollback failed";
  failedStep?: string;
  error?: string;
}

export class MigrationError extends Error {
  constructor(readonly record: MigrationRecord) {
    const rb = record.rollback.length ? record.rollback.join("; ") : "nothing to undo";
    const where = record.outcome === "rolled back" ? `the VM runs on ${record.from} as before` : `ROLLBACK INCOMPLETE, check both hosts and run pulumi refresh`;
    super(`${record.from} -> ${record.to} failed at ${record.failedStep}: ${record.error}. Rollback: ${rb}. ${where}.`);
  }
}

type Log = (line: string) => void;

/** A failure at a named step. */
class StepError extends Error {
  constructor(readonly step: string, message: string) {
    super(message);
  }
}

const msg = (e: unknown) => (e instanceof Error ? e.message : String(e));

async function attempt<T>(step: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof StepError) throw e;
    throw new StepError(step, msg(e));
  }
}

export function shapeOf(r: MoveRequest): MoveShape {
  return { name: r.name, fromHost: r.from.hostName, toHost: r.to.hostName, storage: r.storage, migration: r.migration, memoryMiB: r.memoryMiB, diskGiB: r.diskGiB };
}

// ---------------------------------------------------------------------------------------------------- pre-checks

async function volBytes(v: Virsh, pool: string, vol: string, key: "Capacity" | "Allocation"): Promise<number> {
  const kv = parseKeyValues(await v.exec(["vol-info", "--bytes", "--pool", pool, "--", vol]));
  return Number((kv[key] ?? "0").split(" ")[0]);
}

/** Everything that can be known before anything moves. Throws StepError("pre-check") with all problems found. */
export async function preChecks(r: MoveRequest, S: Virsh, T: Virsh): Promise<{ sourceState: string }> {
  const problems: string[] = [];
  try {
    await T.exec(["uri"], 15_000);
  } catch (e) {
    throw new StepError("pre-check", `target ${r.to.hostName} is unreachable: ${msg(e)}`);
  }
  const sourceState = await S.domainState(r.name);
  if (sourceState === undefined) throw new StepError("pre-check", `${r.name} is not on ${r.from.hostName} (it moved or vanished outside vm-infra: run pulumi refresh)`);
  if ((await T.domainState(r.name)) !== undefined) problems.push(`a domain named ${r.name} already exists on ${r.to.hostName}`);

  // CPU: the target's hypervisor must offer the CPU the guest runs with now
  const live = await S.exec(["dumpxml", "--", r.name]);
  const cpu = /<cpu[\s>][\s\S]*?<\/cpu>/.exec(live)?.[0];
  if (cpu && /<model/.test(cpu)) {
    const out = await withPrivateFile(cpu, (f) => T.exec(["hypervisor-cpu-compare", "--virttype", r.domainType, "--file", f]).catch((e: unknown) => `error: ${msg(e)}`));
    if (/incompatible|error/i.test(out)) problems.push(`CPU: ${r.to.hostName} cannot run this guest's CPU (${out.trim().split("\n")[0]})`);
  }

  if (!r.bridge) { // a host bridge is outside libvirt's view; a libvirt network must be active
    const net = parseKeyValues(await T.exec(["net-info", "--", r.network]).catch((e: unknown) => `Active: no (${msg(e)})`));
    if (net.Active !== "yes") problems.push(`network ${r.network} is not active on ${r.to.hostName}`);
  }

  // memory
  const mem = parseKeyValues(await T.exec(["nodememstats"]));
  const kib = (k: string) => Number((mem[k] ?? "0").split(" ")[0]);
  const freeMiB = Math.floor((kib("free") + kib("cached") + kib("buffers")) / 1024);
  if (freeMiB < r.memoryMiB) problems.push(`memory: ${r.to.hostName} has ${freeMiB} MiB free, the VM needs ${r.memoryMiB} MiB`);

  if (r.storage === "shared") {
    if (r.to.pool !== r.from.pool) problems.push(`storage: shared pool ${r.from.pool} on ${r.from.hostName} but ${r.to.pool} on ${r.to.hostName}`);
    else {
      // each host's view of a shared pool is only as new as its last refresh
      await S.refreshPool(r.from.pool);
      await T.refreshPool(r.to.pool);
      for (const vol of [r.overlayVolume, r.isoVolume, r.baseVolume]) {
        const [a, b] = [await S.volumePath(r.from.pool, vol).catch(() => "?"), await T.volumePath(r.to.pool, vol).catch(() => "missing")];
        if (a !== b) problems.push(`storage: ${vol} is ${b} on ${r.to.hostName} but ${a} on ${r.from.hostName}: pool ${r.to.pool} is not shared`);
      }
    }
  } else {
    if (!(await T.volumeExists(r.to.pool, r.baseVolume))) problems.push(`base image ${r.baseVolume} is not in pool ${r.to.pool} on ${r.to.hostName}`);
    for (const vol of [r.overlayVolume, r.isoVolume])
      if (await T.volumeExists(r.to.pool, vol)) problems.push(`volume ${vol} already exists in pool ${r.to.pool} on ${r.to.hostName} (left from an earlier move? delete it first)`);
    const need = (await volBytes(S, r.from.pool, r.overlayVolume, "Allocation")) + (await volBytes(S, r.from.pool, r.isoVolume, "Capacity"));
    const { state, availableBytes: avail } = await T.poolInfo(r.to.pool);
    if ((state ?? "running") !== "running") problems.push(`pool ${r.to.pool} on ${r.to.hostName} is ${state}`);
    const margin = 64 * 1024 ** 2;
    if (avail < need + margin) problems.push(`room: pool ${r.to.pool} on ${r.to.hostName} has ${mib(avail)} available, the copy needs ${mib(need + margin)}`);
  }
  if (problems.length) throw new StepError("pre-check", problems.join("; "));
  return { sourceState };
}

// ---------------------------------------------------------------------------------------------- storage helpers

/** Copies a volume between hosts through this machine (download, optional rebase onto the target's base, upload). */
async function copyVolume(S: Virsh, T: Virsh, r: MoveRequest, vol: string, format: "qcow2" | "raw", created: string[]): Promise<number> {
  return withPrivateDir(async (dir) => {
    const file = path.join(dir, "vol");
    await S.exec(["vol-download", "--pool", r.from.pool, "--vol", vol, "--file", file], 1_800_000);
    if (format === "qcow2") {
      // the overlay names its backing file by path: point it at the target's copy of the base image
      const base = await T.volumePath(r.to.pool, r.baseVolume);
      await run("qemu-img", ["rebase", "-u", "-f", "qcow2", "-F", "qcow2", "-b", base, file], { timeoutMs: 60_000 });
    }
    const size = format === "qcow2" ? `${r.diskGiB}G` : String(await volBytes(S, r.from.pool, vol, "Capacity"));
    await T.exec(["vol-create-as", "--pool", r.to.pool, "--name", vol, "--capacity", size, "--format", format]);
    created.push(vol);
    await T.exec(["vol-upload", "--pool", r.to.pool, "--vol", vol, "--file", file], 1_800_000);
    return (await stat(file)).size;
  });
}

// ----------------------------------------------------------------------------------------------------- transfer

/** Runs `virsh migrate` from `src` while polling its job every 500 ms: progress to the log, timeouts abort. */
export async function transfer(src: Virsh, args: string[], r: MoveRequest, log: Log, pollMs = 500): Promise<void> {
  const m = r.migration;
  const deadline = completionTimeoutMs(shapeOf(r));
  let done = false;
  let failure: unknown;
  const job = src.exec(args, deadline + 60_000).then(
    () => { done = true; },
    (e: unknown) => { done = true; failure = e; },
  );
  const t0 = Date.now();
  let best = Number.POSITIVE_INFINITY;
  let bestAt = t0;
  let lastLog = 0;
  let downtimeSet = false;
  let abortReason: string | undefined;
  while (!done) {
    await sleep(pollMs);
    if (done) break;
    const info = await src.exec(["domjobinfo", "--", r.name], 10_000).then(parseJobInfo).catch(() => undefined);
    if (info?.active) {
      if (!downtimeSet && m.mode === "live") {
        downtimeSet = true;
        await src.exec(["migrate-setmaxdowntime", "--", r.name, String(m.maxDowntimeMs)], 10_000).catch((e: unknown) => log(`${r.name}: could not set max downtime: ${msg(e)}`));
      }
      const remaining = info.remainingBytes ?? Number.POSITIVE_INFINITY; // "Data" counts memory and copied disk
      if (remaining < best) {
        best = remaining;
        bestAt = Date.now();
      }
      if (Date.now() - lastLog >= 2000 && info.totalBytes && info.remainingBytes !== undefined) {
        lastLog = Date.now();
        const pct = Math.max(0, Math.min(100, Math.round(100 * (1 - info.remainingBytes / info.totalBytes))));
        log(`${r.name}: migrating ${r.from.hostName} -> ${r.to.hostName}: ${pct}%, ${mib(info.processedBytes)} sent, ${mib(info.remainingBytes)} remaining, ${Math.round((Date.now() - t0) / 1000)} s`);
      }
    }
    const now = Date.now();
    if (!abortReason && now - bestAt > m.progressTimeoutSeconds * 1000) abortReason = `no progress for ${m.progressTimeoutSeconds} s`;
    if (!abortReason && now - t0 > deadline) abortReason = `not complete within ${Math.round(deadline / 1000)} s (${m.completionSecondsPerGiB} s per GiB)`;
    if (abortReason) {
      log(`${r.name}: aborting the migration: ${abortReason}`);
      await src.exec(["domjobabort", "--", r.name], 30_000).catch(() => undefined);
      break;
    }
  }
  await job;
  if (abortReason) throw new StepError("transfer", `aborted: ${abortReason}`);
  if (failure) throw new StepError("transfer", msg(failure));
}

// ------------------------------------------------------------------------------------------------ health checks

interface Check {
  name: string;
  run: () => Promise<void>;
}

export function healthChecks(r: MoveRequest, T: Virsh, paths: { diskPath: string; isoPath: string }): Check[] {
  const checks: Check[] = [
    { name: "domain running", run: async () => expectEq("state", await T.domainState(r.name), "running") },
    {
      name: "QEMU monitor answering",
      run: async () => {
        const out = await T.exec(["qemu-monitor-command", "--", r.name, '{"execute":"query-status"}'], 15_000);
        if (!/"status":\s*"running"/.test(out)) throw new Error(`query-status: ${out.trim()}`);
      },
    },
    {
      name: "memory, vCPUs, disks and NIC as configured",
      run: async () => {
        const d = parseDomainXml(await T.exec(["dumpxml", "--", r.name]));
        expectEq("memory MiB", d.memoryMiB, r.memoryMiB);
        expectEq("vCPUs", d.vcpus, r.vcpus);
        expectEq("MAC", d.mac?.toLowerCase(), r.mac.toLowerCase());
        for (const p of [paths.diskPath, paths.isoPath]) if (!d.diskPaths.includes(p)) throw new Error(`disk ${p} not attached (has ${d.diskPaths.join(", ")})`);
      },
    },
    {
      name: "guest agent ping",
      run: async () => void (await T.exec(["qemu-agent-command", "--timeout", "10", "--", r.name, '{"execute":"guest-ping"}'], 20_000)),
    },
    {
      name: "SSH login",
      run: async () => {
        const address = await guestAddress(r, T);
        await sshRun({ user: r.guest.user, address, privateKeyPath: r.guest.privateKeyPath, netns: r.to.guestNetns }, ["true"], 20_000);
      },
    },
  ];
  const http = r.migration.httpCheck;
  if (http)
    checks.push({
      name: `HTTP GET :${http.port}${http.path}`,
      run: async () => {
        const address = await guestAddress(r, T);
        const url = `http://${address}:${http.port}${http.path}`;
        const curl = ["curl", "-fsS", "-o", "/dev/null", "--max-time", "5", "--", url];
        const [file, ...args] = r.to.guestNetns ? ["ip", "netns", "exec", r.to.guestNetns, ...curl] : curl;
        await run(file, args, { timeoutMs: 15_000 });
      },
    });
  return checks;
}

async function guestAddress(r: MoveRequest, T: Virsh): Promise<string> {
  const a = r.guest.staticAddress ?? (await findAddress(T, r.name, r.mac));
  if (!a) throw new Error("no address yet (lease or guest agent)");
  return a;
}

function expectEq(what: string, got: unknown, want: unknown): void {
  if (got !== want) throw new Error(`${what} is ${String(got)}, expected ${String(want)}`);
}

/** Runs each check until it passes or the deadline passes; stops at the first check that never passes. */
export async function runHealth(checks: Check[], timeoutS: number, log: Log, name: string): Promise<HealthResult[]> {
  const results: HealthResult[] = [];
  for (const c of checks) {
    const t0 = Date.now();
    let attempts = 0;
    let last = "";
    for (;;) {
      attempts++;
      try {
        await c.run();
        results.push({ check: c.name, ok: true, attempts, ms: Date.now() - t0 });
        break;
      } catch (e) {
        last = msg(e);
      }
      if (Date.now() - t0 > timeoutS * 1000) {
        results.push({ check: c.name, ok: false, attempts, ms: Date.now() - t0, detail: last.slice(0, 300) });
        log(`${name}: health check failed: ${c.name}: ${last.slice(0, 300)}`);
        return results;
      }
      await sleep(2000);
    }
  }
  return results;
}

// --------------------------------------------------------------------------------------------------------- move

export interface MoveDeps {
  log: Log;
}

/**
 * Moves the VM. Resolves with the record of a successful move; rejects with MigrationError (whose record says what
 * failed and what the rollback did) otherwise.
 */
export async function moveVm(r: MoveRequest, deps: MoveDeps): Promise<{ record: MigrationRecord; paths: { diskPath: string; isoPath: string } }> {
  const S = new Virsh(r.from.uri);
  const T = new Virsh(r.to.uri);
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
  try {
    ({ sourceState } = await preChecks(r, S, T));
    if (sourceState !== "running" && sourceState !== "paused") offline = true; // a stopped VM moves its definition and disk
    const mode = offline ? "offline" : r.migration.mode;
    rec.mode = mode;
    log(`${r.name}: pre-checks passed (${r.from.hostName}: ${sourceState}); moving ${mode}, storage ${r.storage}`);

    // the target gets what libvirt will not copy
    await attempt("prepare target", async () => {
      if (r.storage !== "copy") return;
      if (!offline) { // libvirt's incremental copy needs the overlay there (offline moves copy the whole file later)
        await T.createOverlay(r.to.pool, r.overlayVolume, r.diskGiB, r.baseVolume);
        createdOnTarget.push(r.overlayVolume);
      }
      rec.bytesMoved = await copyVolume(S, T, r, r.isoVolume, "raw", createdOnTarget);
    });
    const paths = { diskPath: await T.volumePath(r.to.pool, r.overlayVolume).catch(() => ""), isoPath: await T.volumePath(r.to.pool, r.isoVolume) };
    const srcPaths = { diskPath: await S.volumePath(r.from.pool, r.overlayVolume), isoPath: await S.volumePath(r.from.pool, r.isoVolume) };

    const tSwitch = Date.now();
    if (offline) {
      await attempt("stop source", async () => {
        await stopDomain(S, r.name);
        stopped = true;
      });
      await attempt("copy disk", async () => {
        if (r.storage !== "copy") return; // shared: the target already sees the disk
        rec.bytesMoved = (rec.bytesMoved ?? 0) + (await copyVolume(S, T, r, r.overlayVolume, "qcow2", createdOnTarget));
        paths.diskPath = await T.volumePath(r.to.pool, r.overlayVolume);
      });
      await attempt("define and start on target", async () => {
        const uuid = (await S.exec(["domuuid", "--", r.name])).trim();
        await T.withXml(domainXml({ ...r, ...paths, uuid }), (f) => ["define", "--file", f]);
        if (sourceState !== "shut off") await T.exec(["start", "--", r.name]);
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

    // only now is the source's copy no longer needed
    await attempt("clean up source", async () => {
      if (offline) await undefineDomain(S, r.name);
      if (r.storage === "copy") for (const vol of [r.overlayVolume, r.isoVolume]) await S.deleteVolume(r.from.pool, vol);
    });
    rec.durationMs = Date.now() - t0;
    log(`${r.name}: moved ${r.from.hostName} -> ${r.to.hostName} (${rec.mode}) in ${(rec.durationMs / 1000).toFixed(1)} s, downtime ${rec.downtimeMs ?? "?"} ms`);
    return { record: rec, paths };
  } catch (e) {
    rec.failedStep = e instanceof StepError ? e.step : "move";
    rec.error = msg(e);
    let ok: boolean;
    if (rec.failedStep === "pre-check") {
      rec.rollback.push("nothing had changed"); // pre-checks only ask questions
      ok = true;
    } else {
      log(`${r.name}: ${rec.failedStep} failed: ${rec.error.slice(0, 500)}; rolling back`);
      ok = await rollback(r, S, T, { sourceState, paused, stopped, offline, createdOnTarget }, rec.rollback, log);
    }
    rec.outcome = ok ? "rolled back" : "rollback failed";
    rec.durationMs = Date.now() - t0;
    throw new MigrationError(rec);
  }
}

interface RollbackFacts {
  sourceState: string;
  paused: boolean;
  stopped: boolean;
  offline: boolean;
  createdOnTarget: string[];
}

/** Back to the source, decided by where the domain is now. Returns whether the source is as it was. */
export async function rollback(r: MoveRequest, S: Virsh, T: Virsh, f: RollbackFacts, did: string[], log: Log): Promise<boolean> {
  const step = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
      did.push(what);
    } catch (e) {
      did.push(`${what} FAILED: ${msg(e).slice(0, 300)}`);
      throw e;
    }
  };
  try {
    const onS = await S.domainState(r.name).catch(() => "unknown");
    const onT = await T.domainState(r.name).catch(() => "unknown");
    if (onT !== undefined && onT !== "unknown") {
      if (!f.offline && onS === undefined && (onT === "running" || onT === "paused")) {
        // the switchover happened: move it back the same way (the source disks are still there)
        if (r.storage === "copy") {
          await step(`recreated the overlay on ${r.from.hostName} for the copy back`, async () => {
            await S.deleteVolume(r.from.pool, r.overlayVolume);
            await S.createOverlay(r.from.pool, r.overlayVolume, r.diskGiB, r.baseVolume);
          });
        }
        const back = migrateArgs({
          name: r.name, destUri: r.from.migrationUri ?? r.from.uri, p2p: !!r.from.migrationUri, storage: r.storage,
          migration: { ...r.migration, mode: onT === "running" ? "live" : "paused", postcopy: false, bandwidthMiBs: 0 }, copyDisks: ["vda"],
        });
        await step(`migrated back ${r.to.hostName} -> ${r.from.hostName}`, () => T.exec(back, completionTimeoutMs(shapeOf(r)) + 60_000));
      } else {
        await step(`stopped and undefined the domain on ${r.to.hostName}`, async () => {
          await stopDomain(T, r.name, 30_000);
          await undefineDomain(T, r.name);
        });
      }
    }
    // volumes this move made on the target, and a full-size leftover of an aborted copy
    if (r.storage === "copy") {
      const gone = new Set([...f.createdOnTarget, r.overlayVolume, r.isoVolume]);
      const present: string[] = [];
      for (const vol of gone) if (await T.volumeExists(r.to.pool, vol)) present.push(vol);
      if (present.length) await step(`deleted ${present.join(", ")} on ${r.to.hostName}`, async () => {
        for (const vol of present) await T.deleteVolume(r.to.pool, vol);
      });
    }
    const now = await S.domainState(r.name);
    if (now === "paused" && (f.paused || f.sourceState === "running")) await step(`resumed on ${r.from.hostName}`, () => S.exec(["resume", "--", r.name]));
    if (now === "shut off" && (f.sourceState === "running" || f.stopped)) await step(`started again on ${r.from.hostName}`, () => S.exec(["start", "--", r.name]));
    const final = await S.domainState(r.name);
    const wanted = f.sourceState === "shut off" ? "shut off" : f.sourceState === "paused" ? "paused" : "running";
    if (f.sourceState !== "unknown" && final !== wanted) {
      did.push(`source is ${final ?? "missing"}, expected ${wanted}`);
      return false;
    }
    const left = await T.domainState(r.name).catch(() => "unknown");
    if (left !== undefined) {
      did.push(left === "unknown" ? `${r.to.hostName} unreachable: could not verify that no copy is left there` : `a domain is still on ${r.to.hostName} (${left})`);
      return false;
    }
    if (did.length === 0) did.push("nothing had changed");
    log(`${r.name}: rollback done: ${did.join("; ")}`);
    return true;
  } catch (e) {
    log(`${r.name}: rollback failed: ${msg(e)}`);
    return false;
  }
}
