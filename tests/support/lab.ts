// What the end-to-end tests look at on the lab: every domain and volume on every host, where a VM runs, SSH into a
// guest from the netns of the host it runs on, and the lab host's libvirtd process.
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { run, RunResult } from "../../host/runner";
import { PinnedKey, sshArgv, withGuestFiles } from "../../host/ssh";
import { Virsh } from "../../host/virsh";
import { HOSTS, LabHost, runDir, uri } from "../../lab/layout";
import { KEY_PATH } from "../../lab/stack";

export const virsh = (host: string) => new Virsh(uri(labHost(host)));
/** The lab's other host: where a VM on `host` moves to. */
export const otherHost = (host: string) => (host === "hv-a" ? "hv-b" : "hv-a");

/**
 * A lab guest as the suites that boot one or two at a time declare it. 2 vCPUs: under TCG a first boot is CPU-bound
 * and QEMU runs each vCPU on its own thread, so on a 2-core machine `up` to cloud-init done took 51 s instead of 73 s
 * (`npm run bench:migration -- --rounds 1 --vcpus 1|2`). The fleet suite
 * (four guests at once) keeps 1: more vCPU threads than cores only slows every guest down.
 */
export const GUEST = { vcpus: 2, memoryMiB: 768, diskGiB: 4, user: "ops" } as const;

export function labHost(name: string): LabHost {
  const h = HOSTS.find((x) => x.name === name);
  if (!h) throw new Error(`no lab host ${name}`);
  return h;
}

/** "host:domain:name (state)" and "host:pool:volume" for every host and pool. */
export async function inventory(pools = ["default", "shared", "small"]): Promise<string[]> {
  const all: string[] = [];
  for (const h of HOSTS) {
    const v = new Virsh(uri(h));
    for (const d of await v.listDomains()) all.push(`${h.name}:domain:${d}`);
    for (const p of pools) {
      await v.exec(["pool-refresh", "--", p]).catch(() => undefined);
      for (const vol of await v.listVolumes(p).catch(() => [] as string[])) all.push(`${h.name}:${p}:${vol}`);
    }
  }
  return all.sort();
}

/** Hosts on which a domain of this name exists, with its state. */
export async function whereIs(name: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const h of HOSTS) {
    const s = await new Virsh(uri(h)).domainState(name);
    if (s !== undefined) out[h.name] = s;
  }
  return out;
}

/** A VM's pinned SSH host key from the stack's outputs (vms.<name>.hostKey). */
export const pinnedKey = (vms: Record<string, { hostKey?: string }>, name: string): PinnedKey => {
  const publicKey = vms[name]?.hostKey;
  if (!publicKey) throw new Error(`no hostKey output for ${name}`);
  return { alias: name, publicKey };
};

/**
 * SSH as `user` from the netns of `host`, checking the guest's pinned host key as vm-infra does; `remote` must be
 * constant text (the guest's shell reads it).
 */
export async function guestSsh(user: string, address: string, host: string, hostKey: PinnedKey, remote: string[], input?: string, timeoutMs = 60_000): Promise<RunResult> {
  const t = { user, address, privateKeyPath: KEY_PATH, netns: labHost(host).netns, hostKey };
  return withGuestFiles(t, (files) => {
    const [file, ...args] = sshArgv(t, remote, files);
    return run(file, args, { timeoutMs, input });
  });
}

export function libvirtdPid(host: string): number | undefined {
  const f = path.join(runDir(labHost(host)), "libvirtd.pid");
  return existsSync(f) ? Number(readFileSync(f, "utf8").trim()) : undefined;
}

/** Polls the source's job until a migration is under way (or the deadline passes). */
export async function waitForJob(host: string, name: string, timeoutMs = 120_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const out = await virsh(host).exec(["domjobinfo", "--", name]).catch(() => "");
    if (/Job type:\s+Unbounded/.test(out) && /Data remaining/.test(out)) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}
