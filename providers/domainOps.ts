// Domain lifecycle steps shared by the providers: graceful first, forced after a deadline; already gone is success.
import { poll, PollTimeout } from "../host/poll";
import { Virsh, isNotFound } from "../host/virsh";
import { STOP_NS, StopMark, stopMarkXml } from "../libvirt/domain";
import { audit } from "./audit";

export const SHUTDOWN_DEADLINE_MS = 60_000;

export async function stopDomain(v: Virsh, name: string, deadlineMs = SHUTDOWN_DEADLINE_MS): Promise<void> {
  let state = await v.domainState(name);
  if (state === undefined || state === "shut off") return;
  await v.exec(["shutdown", "--", name]).catch((e) => {
    if (!isNotFound(e)) throw e;
  });
  const stopped = await poll(async () => {
    state = await v.domainState(name);
    return state === undefined || state === "shut off" ? { value: true } : undefined;
  }, { timeoutMs: deadlineMs, intervalMs: 1000, what: `${name} shut down on ${v.uri}` }).catch((e) => {
    if (e instanceof PollTimeout) return false;
    throw e;
  });
  if (stopped) return;
  await v.exec(["destroy", "--", name]).catch((e) => {
    if (!isNotFound(e)) throw e;
  });
  audit({ action: "force-stop", vm: name, host: v.uri, outcome: "ok", detail: `no clean shutdown in ${deadlineMs} ms` });
}

export async function undefineDomain(v: Virsh, name: string): Promise<void> {
  if ((await v.domainState(name)) === undefined) return;
  await v.exec(["undefine", "--nvram", "--", name]).catch((e) => {
    if (!isNotFound(e)) throw e;
  });
}

/** `virsh metadata` flags for a domain in `state`: a running or paused one changes live and persistent definitions. */
export const metadataFlags = (state: string | undefined) => (state === "running" || state === "paused" ? ["--live", "--config"] : ["--config"]);

/**
 * Stops a running domain that the caller will start again (an offline move, a restart): the stop mark goes into its
 * live and persistent definition first, so that a run killed before the start leaves the host saying why it is off.
 */
export async function stopToStartAgain(v: Virsh, name: string, mark: StopMark, deadlineMs = SHUTDOWN_DEADLINE_MS): Promise<void> {
  const state = await v.domainState(name);
  if (state === undefined || state === "shut off") return;
  await v.exec(["metadata", "--domain", name, "--uri", STOP_NS, "--key", "vmistop", "--set", stopMarkXml(mark), ...metadataFlags(state)]);
  await stopDomain(v, name, deadlineMs);
}

/** Removes the stop mark once the domain runs again; a domain without one (or gone) is left as it is. */
export async function clearStopMark(v: Virsh, name: string): Promise<void> {
  const state = await v.domainState(name).catch(() => undefined);
  if (state === undefined) return;
  await v.exec(["metadata", "--domain", name, "--uri", STOP_NS, "--key", "vmistop", "--remove", ...metadataFlags(state)]).catch(() => undefined);
}
