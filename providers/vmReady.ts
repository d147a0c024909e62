// Readiness: an address (the DHCP lease, else the guest agent, or the static address), then an SSH login with the
// configured key, the guest's host key checked against its pinned one, and cloud-init's result for this boot without errors,
// within a bounded wait. No host changes; in the guest, only the pinned host key installed where it never was
// (providers/guestHostKey.ts).
import * as pulumi from "@pulumi/pulumi";
import { say } from "./say";
import { Virsh } from "../host/virsh";
import { GuestHostKeyError, sshRun, SshTarget } from "../host/ssh";
import { installPinnedKey, onKeyRefusal } from "./guestHostKey";
import { parseDomifaddr } from "../libvirt/domain";
import { oncePer, poll, PollTimeout } from "../host/poll";
import type { HostSpec, ReadinessSpec, VmSpec } from "../config/spec";
import type { JumpHost } from "../config/uri";


export interface ReadyInputs extends Pick<VmSpec, "name" | "mac" | "user">, Pick<HostSpec, "uri">, Pick<ReadinessSpec, "privateKeyPath" | "timeoutSeconds"> {
  netns?: string;
  /** Through the hypervisor's SSH (config/resolve.ts guestRoute). */
  jump?: JumpHost;
  staticAddress?: string;
  /** The domain's state as the placement last saw it; a VM that is not running is reported, not waited for. */
  powerState?: string;
  /** Changes whenever the placement restarts the guest, so readiness is checked again. */
  generation: string;
  /** The guest's pinned SSH host key ("ssh-ed25519 AAAA..."), and its private half (a secret) to install it where it never was. */
  hostKey: string;
  hostKeyPrivate: string;
}

export interface ReadyOutputs extends ReadyInputs {
  /** "" when the VM is not running. */
  address: string;
  readySeconds: number;
  /** What readiness found: "ready", or the domain's state when the VM is not running (e.g. "shut off"). */
  status: string;
  /** The host key the guest last answered with when it was found ready: from then on, another one is refused. */
  verifiedHostKey?: string;
}

/**
 * The guest's address: what the guest agent says it has now, else the newest DHCP lease (leases outlive reboots, so
 * a re-created or restarted guest can show a stale one first; the lab's pitfall 7).
 */
export async function findAddress(v: Virsh, name: string, mac: string): Promise<string | undefined> {
  for (const source of ["agent", "lease"]) {
    try {
      const ips = parseDomifaddr(await v.exec(["domifaddr", "--source", source, "--", name], 15_000), mac);
      if (ips.length > 0) return ips[ips.length - 1];
    } catch {
      /* no lease source on this host, or the agent is not up yet */
    }
  }
  return undefined;
}

/**
 * Waits on the guest until cloud-init's last stage has written its result (`/run/cloud-init/result.json`: on tmpfs,
 * so it is this boot's), then prints it. Constant text for the guest's shell. Reading the file instead of running
 * `cloud-init status --wait` spares every readiness check a Python start of cloud-init on the guest (seconds under TCG).
 */
export const CLOUD_INIT_DONE = ["until test -s /run/cloud-init/result.json; do sleep 1; done; cat /run/cloud-init/result.json"];

export class CloudInitResultError extends Error {}

/**
 * cloud-init's result.json: `{"v1": {"datasource": ..., "errors": [...], "recoverable_errors": {level: [...]}}}`
 * (recoverable errors since cloud-init 23.4; `cloud-init status` calls a run with them "degraded"). Both kinds count:
 * a VM whose config did not fully apply is not ready.
 */
export function cloudInitResult(text: string): { datasource: string; errors: string[] } {
  let v1: { datasource?: unknown; errors?: unknown; recoverable_errors?: unknown } | undefined;
  try {
    v1 = (JSON.parse(text) as { v1?: typeof v1 }).v1;
  } catch {
    /* reported below */
  }
  if (!v1 || typeof v1 !== "object" || !Array.isArray(v1.errors))
    throw new CloudInitResultError(`cloud-init's /run/cloud-init/result.json is not what cloud-init writes (no v1.errors list): ${JSON.stringify(text.slice(0, 200))}`);
  const recoverable = v1.recoverable_errors && typeof v1.recoverable_errors === "object"
    ? Object.entries(v1.recoverable_errors as Record<string, unknown>).flatMap(([level, xs]) => (Array.isArray(xs) ? xs.map((x) => `${level}: ${String(x)}`) : []))
    : [];
  return { datasource: typeof v1.datasource === "string" ? v1.datasource : "", errors: [...v1.errors.map(String), ...recoverable] };
}

export async function waitReady(i: ReadyInputs, log: (s: string) => void = () => undefined, verifiedBefore?: string): Promise<ReadyOutputs> {
  const t0 = Date.now();
  const v = new Virsh(i.uri);
  // a stopped VM was stopped by someone on purpose (by hand, or it was moved while stopped): say so, do not wait for it
  if (i.powerState !== undefined && i.powerState !== "running") {
    const now = await v.domainState(i.name).catch(() => i.powerState);
    if (now !== "running") {
      log(`${i.name}: ${now ?? "not defined"} on ${i.uri}: not started by vm-infra, readiness not checked (start it with virsh start, then pulumi up)`);
      return { ...i, address: "", readySeconds: 0, status: now ?? "absent", ...(verifiedBefore ? { verifiedHostKey: verifiedBefore } : {}) };
    }
  }
  let address = i.staticAddress;
  let installed = false;
  const progress = oncePer(30_000);
  const end = t0 + i.timeoutSeconds * 1000;
  try {
    return await poll<ReadyOutputs>(async () => {
      address = i.staticAddress ?? (await findAddress(v, i.name, i.mac));
      if (!address) return { retry: "no address yet" };
      const target: SshTarget = { user: i.user, address, privateKeyPath: i.privateKeyPath, netns: i.netns, jump: i.jump, hostKey: { alias: i.name, publicKey: i.hostKey } };
      try {
        const r = await sshRun(target, CLOUD_INIT_DONE, Math.max(5000, Math.min(end - Date.now(), 300_000)));
        const done = cloudInitResult(r.stdout);
        if (done.errors.length) throw new Error(`${i.name}: cloud-init finished with errors: ${done.errors.join("; ")}`);
        return { value: { ...i, address, readySeconds: Math.round((Date.now() - t0) / 100) / 10, status: "ready", verifiedHostKey: i.hostKey } };
      } catch (e) {
        if (e instanceof CloudInitResultError) return { retry: e.message }; // caught mid-write, say; the timeout names it if it stays
        if (e instanceof GuestHostKeyError) {
          if (onKeyRefusal(i.hostKey, verifiedBefore) === "refuse" || installed)
            throw new Error(`${e.message}. ${installed ? "It still did after vm-infra installed the pinned key" : "vm-infra verified the pinned key on this guest before, so the key changed since"}; ` +
              "nothing was changed. If that was on purpose, put the pinned key back in the guest or replace the VM; if not, someone may be in the middle");
          await installPinnedKey(v, i.name, target, i.hostKeyPrivate, log);
          installed = true;
          return { retry: "pinned host key installed" };
        }
        const m = e instanceof Error ? e.message : String(e);
        if (m.startsWith(`${i.name}: cloud-init finished with errors`)) throw e; // done, but the config did not fully apply
        return { retry: m };
      }
    }, {
      // every 3 s: each attempt is a virsh connection to the host (an SSH login on a remote one) and an SSH to the
      // guest; asked every second, eight VMs booting on one SSH-reached 2-core host left their guests 12 % of a core
      // each (16 % at 3 s): the logins took the difference
      timeoutMs: i.timeoutSeconds * 1000, intervalMs: 3000, what: `${i.name} ready`,
      onWait: (ms) => {
        if (progress(ms)) log(`${i.name}: waiting for ${address ? `ssh ${i.user}@${address}` : "an address"} (${Math.round(ms / 1000)} s)`);
      },
    });
  } catch (e) {
    if (!(e instanceof PollTimeout)) throw e;
    throw new Error(`${i.name}: not ready within ${i.timeoutSeconds} s (address ${address ?? "none"}): ${e.last ?? "no address yet"}`);
  }
}

export const provider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: ReadyOutputs, news: ReadyInputs) {
    const keys = Object.keys(news) as (keyof ReadyInputs)[];
    // a VM seen ready before and not running now (refresh) is checked again
    const changes = keys.some((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k])) || (olds.status !== undefined && olds.status !== "ready" && news.powerState === "running");
    return { changes, replaces: [] };
  },
  async create(i: ReadyInputs) {
    const outs = await waitReady(i, say);
    return { id: i.name, outs };
  },
  async update(_id: string, olds: ReadyOutputs, news: ReadyInputs) {
    return { outs: await waitReady(news, say, olds.verifiedHostKey) };
  },
  /** Refresh: the domain's state and address now (a stopped or vanished VM shows here; the placement recreates it). */
  async read(id: string, props: ReadyOutputs) {
    const v = new Virsh(props.uri);
    const state = await v.domainState(props.name).catch(() => "unknown");
    if (state === "unknown") return { id, props };
    if (state !== "running") return { id, props: { ...props, address: "", status: state ?? "absent" } };
    const address = props.staticAddress ?? (await findAddress(v, props.name, props.mac)) ?? props.address;
    return { id, props: { ...props, address } };
  },
  async delete() {
    /* observing a VM changes nothing */
  },
};
