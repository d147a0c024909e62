// Steps 2 and 3 of a move: what libvirt does not copy is placed on the target (volumes through this machine), then
// libvirt's migration job runs, polled for progress and aborted on the progress or completion timeout.
import { stat } from "node:fs/promises";
import * as path from "node:path";
import { run } from "../../host/runner";
import { withPrivateDir } from "../../host/tempFiles";
import { Virsh } from "../../host/virsh";
import { completionTimeoutMs, mib } from "../../libvirt/migration";
import { poll, PollTimeout } from "../../host/poll";
import { volBytes } from "./preChecks";
import { Log, MoveRequest, StepError, msg, shapeOf } from "./types";

/** Copies a volume between hosts through this machine (download, optional rebase onto the target's base, upload). */
export async function copyVolume(S: Virsh, T: Virsh, r: MoveRequest, vol: string, format: "qcow2" | "raw", created: string[]): Promise<number> {
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

/**
 * How long `virsh migrate` may take to return after vm-infra aborted its job. A p2p migration whose migration network
 * went away keeps the client waiting on libvirt for the whole deadline; past this, vm-infra stops waiting (the source's
 * libvirt still holds the cancelled job: the rollback looks at both hosts, and refresh and the pre-check wait for it).
 */
export const ABORT_GRACE_MS = 60_000;

/** Runs `virsh migrate` from `src` while polling its job every 500 ms: progress to the log, timeouts abort. */
export async function transfer(src: Virsh, args: string[], r: MoveRequest, log: Log, pollMs = 500, graceMs = ABORT_GRACE_MS): Promise<void> {
  const m = r.migration;
  const deadline = completionTimeoutMs(shapeOf(r));
  let done = false;
  let failure: unknown;
  const client = new AbortController();
  const job = src.exec(args, deadline + 60_000, undefined, client.signal).then(
    () => { done = true; },
    (e: unknown) => { done = true; failure = e; },
  );
  const t0 = Date.now();
  let best = Number.POSITIVE_INFINITY;
  let bestAt = t0;
  let lastLog = 0;
  let downtimeSet = false;
  let abortReason: string | undefined;
  // the one wait loop (host/poll.ts): until the job ends, or its own progress and completion rules abort it
  await poll(async () => {
    if (done) return { value: true };
    const info = await src.jobInfo(r.name);
    if (done) return { value: true };
    if (info.active) {
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
    if (now - bestAt > m.progressTimeoutSeconds * 1000) abortReason = `no progress for ${m.progressTimeoutSeconds} s`;
    else if (now - t0 > deadline) abortReason = `not complete within ${Math.round(deadline / 1000)} s (${m.completionSecondsPerGiB} s per GiB)`;
    if (!abortReason) return { retry: "job running" };
    log(`${r.name}: aborting the migration: ${abortReason}`);
    await src.exec(["domjobabort", "--", r.name], 30_000).catch(() => undefined);
    return { value: false };
  }, { timeoutMs: deadline + 60_000, intervalMs: pollMs, what: `${r.name}: migration job` }).catch((e) => {
    if (!(e instanceof PollTimeout)) throw e; // virsh migrate itself times out at the same bound: its error follows
  });
  if (abortReason && !done) {
    const ended = await Promise.race([job.then(() => true), new Promise<boolean>((res) => setTimeout(() => res(false), graceMs))]);
    if (!ended) {
      log(`${r.name}: libvirt did not end the aborted migration within ${Math.round(graceMs / 1000)} s (is the migration network down?); ` +
        `vm-infra stops waiting for it: ${r.from.hostName}'s libvirt still holds the cancelled job`);
      client.abort("the aborted migration did not end");
    }
  }
  await job;
  if (abortReason) throw new StepError("transfer", `aborted: ${abortReason}`);
  if (failure) throw new StepError("transfer", msg(failure));
}

