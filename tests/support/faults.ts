// Fault injection for the lab (a test helper, not product code): kill or stop a host's libvirtd, cut the migration
// network between the hosts, or kill a `pulumi` run with its plugins, at a chosen phase of a move; bring them back;
// and check the invariant afterwards by asking the hosts, not the state: exactly one running domain with the VM's
// UUID, on the host the state names, and nothing of the VM anywhere else.
import { run } from "../../host/runner";
import { Virsh } from "../../host/virsh";
import { labUp } from "../../lab/hosts";
import { HOSTS, uri } from "../../lab/layout";
import { labHost, libvirtdPid, virsh } from "./lab";

export type Fault = "source libvirtd" | "target libvirtd" | "migration network" | "pulumi";
export type Phase = "pre-check" | "prepare target" | "transfer start" | "mid-transfer" | "switchover" | "health check" | "source clean-up";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** SIGKILL (or SIGSTOP) to a lab host's libvirtd; its guests keep running, as on a real host. */
export function hitLibvirtd(host: string, signal: "SIGKILL" | "SIGSTOP" = "SIGKILL"): number {
  const pid = libvirtdPid(host);
  if (!pid) throw new Error(`fault: no libvirtd pid for ${host}`);
  process.kill(pid, signal);
  return pid;
}

/** Runs `fn` (a kill, say) while `host`'s libvirtd is stopped (SIGSTOP), then brings every lab host back. */
export async function whileHeld(host: string, fn: () => Promise<void>): Promise<void> {
  hitLibvirtd(host, "SIGSTOP");
  try {
    await fn();
  } finally {
    await recoverHosts();
  }
}

/** Brings every lab host back (a killed daemon restarts and reconnects to its guests); a stopped one continues. */
export async function recoverHosts(): Promise<void> {
  for (const h of HOSTS) {
    const pid = libvirtdPid(h.name);
    if (pid) try { process.kill(pid, "SIGCONT"); } catch { /* gone */ }
  }
  await restoreMigrationNetwork();
  await labUp();
}

/** Takes the migration link down on both hosts (libvirtd TCP, QEMU migration and NBD between the hosts). */
export async function cutMigrationNetwork(): Promise<void> {
  for (const h of HOSTS) await run("ip", ["-n", h.netns, "link", "set", "mig0", "down"], { timeoutMs: 10_000 });
}

export async function restoreMigrationNetwork(): Promise<void> {
  for (const h of HOSTS) await run("ip", ["-n", h.netns, "link", "set", "mig0", "up"], { timeoutMs: 10_000, okCodes: [0, 1] });
}

/**
 * Kills a running `pulumi up` of `stack` with every plugin it started (they run in process groups of their own),
 * whether a person ran it (`pulumi up`) or vm-infra's CLI (the Automation API runs it by its full path).
 */
export async function killPulumi(stack: string): Promise<void> {
  const pid = (await run("pgrep", ["-o", "-f", `^([^ ]*/)?pulumi up .*--stack ${stack}( |$)`], { timeoutMs: 10_000 })).stdout.trim();
  const kids = async (p: string) => (await run("pgrep", ["-P", p], { timeoutMs: 10_000, okCodes: [0, 1] })).stdout.split("\n").filter(Boolean);
  const plugins = await kids(pid);
  const grandchildren = (await Promise.all(plugins.map(kids))).flat();
  await run("kill", ["-KILL", "--", `-${pid}`, ...plugins, ...grandchildren], { timeoutMs: 10_000, okCodes: [0, 1] });
}

export interface MoveWatch {
  name: string;
  from: string;
  to: string;
  /** Target pool and the overlay's volume name (prepare target is seen when it appears there). */
  pool: string;
  overlay: string;
}

/** Waits until the move reaches `phase`, seen from the hosts. "pre-check" is before the up starts: nothing to wait for. */
export async function waitForPhase(phase: Phase, w: MoveWatch, timeoutMs = 180_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  const S = virsh(w.from);
  const T = virsh(w.to);
  const job = async () => (await S.exec(["domjobinfo", "--", w.name], 10_000).catch(() => ""));
  const reached = async (): Promise<boolean> => {
    switch (phase) {
      case "pre-check": return true;
      case "prepare target": return T.volumeExists(w.pool, w.overlay).catch(() => false);
      case "transfer start": return /Job type:\s+Unbounded/.test(await job());
      case "mid-transfer": {
        const j = await job();
        const processed = /Data processed:\s+([\d.]+) MiB/.exec(j);
        return /Unbounded/.test(j) && processed !== null && Number(processed[1]) > 20;
      }
      case "switchover":
      case "health check":
      case "source clean-up":
        // the switchover is done when the target runs the VM and the source no longer does (live: no definition left;
        // offline: the stopped definition stays until clean-up)
        return (await T.domainState(w.name).catch(() => undefined)) === "running" &&
          [undefined, "shut off"].includes(await S.domainState(w.name).catch(() => "?"));
    }
  };
  while (!(await reached())) {
    if (Date.now() > end) throw new Error(`fault: ${w.name} never reached ${phase} (${w.from} -> ${w.to})`);
    await sleep(phase === "prepare target" ? 100 : 200);
  }
}

/** Every lab host's view of a domain name: state and UUID, or "silent". */
export async function copiesOf(name: string): Promise<Record<string, { state: string; uuid: string } | "silent">> {
  const out: Record<string, { state: string; uuid: string } | "silent"> = {};
  for (const h of HOSTS) {
    const v = new Virsh(uri(labHost(h.name)));
    try {
      const state = await v.domainState(name);
      if (state !== undefined) out[h.name] = { state, uuid: (await v.exec(["domuuid", "--", name])).trim() };
    } catch {
      out[h.name] = "silent";
    }
  }
  return out;
}

/** Volumes whose name starts with `prefix`, per host and pool. */
export async function volumesNamed(prefix: string, pools = ["default", "shared"]): Promise<string[]> {
  const found: string[] = [];
  for (const h of HOSTS) {
    const v = new Virsh(uri(h));
    for (const p of pools) {
      await v.exec(["pool-refresh", "--", p]).catch(() => undefined);
      for (const vol of await v.listVolumes(p).catch(() => [] as string[])) if (vol.startsWith(prefix)) found.push(`${h.name}:${p}:${vol}`);
    }
  }
  return found.sort();
}
