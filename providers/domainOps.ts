// Domain lifecycle steps shared by the providers: graceful first, forced after a deadline; already gone is success.
import { poll, PollTimeout } from "../host/poll";
import { Virsh, isNotFound } from "../host/virsh";
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

