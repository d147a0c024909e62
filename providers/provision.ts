// In-guest provisioning: the VM's playbook run with ansible-playbook after readiness (host/ansible.ts). It runs at
// create, and again only when what it would do changed: the playbook's files (their hash), its vars, its secret vars
// or its tags. A move never re-runs it. A failed run fails the up with the host, the task and what the rescue did;
// the VM stays, and the state does not record the run (the next up runs it again).
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { JumpHost } from "../config/uri";
import { PlaybookResult, runPlaybook } from "../host/ansible";
import { scrub } from "../host/runner";
import { audit } from "./audit";
import { say } from "./say";

export interface ProvisionInputs {
  name: string;
  hostName: string;
  /** The domain's UUID: a replaced VM (a new disk) is a new guest and is provisioned again; a move keeps it. */
  vmId: string;
  /** From readiness: the guest's address and whether it is running ("ready"). */
  address: string;
  status: string;
  user: string;
  privateKeyPath: string;
  /** The guest's pinned SSH host key (readiness verified it on the guest before this runs). */
  hostKey: string;
  netns?: string;
  jump?: JumpHost;
  /** Absolute path of the playbook, and the hash of the files in its directory. */
  playbook: string;
  playbookHash: string;
  vars: Record<string, unknown>;
  /** A Pulumi secret: handed to ansible in a private file, scrubbed from every message. */
  secretVars: Record<string, unknown>;
  tags: string[];
  timeoutSeconds: number;
}

export interface ProvisionResult {
  playbookHash: string;
  outcome: "ok";
  ok: number;
  changed: number;
  failed: number;
  rescued: number;
  seconds: number;
  at: string;
}

export interface ProvisionOutputs extends ProvisionInputs {
  result: ProvisionResult;
}

/**
 * What makes provisioning run again: another guest (a replaced VM), or another playbook, vars or tags. Nothing else
 * does: a host or address change is a move (same disk, same UUID), not a new guest.
 */
export const TRIGGERS = ["vmId", "playbook", "playbookHash", "vars", "secretVars", "tags"] as const;

export function triggered(olds: Partial<ProvisionInputs>, news: ProvisionInputs): string[] {
  return TRIGGERS.filter((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]));
}

const secretsOf = (i: ProvisionInputs) => Object.values(i.secretVars).filter((v): v is string => typeof v === "string" && v.length > 0);

/** ssh's and ansible's messages end in line breaks (ssh's `\r\n`): one line in the sentence. */
const oneLine = (m: string) => m.replace(/\s+/g, " ").trim();

/** The error a failed run reads as: where, which task, what the rescue did; secret values never in it. */
export function failureMessage(i: ProvisionInputs, r: PlaybookResult): string {
  const where = `${i.name} on ${i.hostName} (${i.address})`;
  if (r.outcome === "unreachable") {
    const f = r.failures.find((x) => x.unreachable);
    return `${where}: provisioning could not reach the guest over SSH${i.netns ? ` from ${i.netns}` : i.jump ? ` through ${i.jump.host}` : ""}: ${oneLine(f?.message ?? "unreachable")}; nothing ran. ` +
      "The VM is kept; run up again when its sshd answers.";
  }
  const first = r.failures[0];
  const rescue = r.rescued > 0
    ? "the rescue ran: it logged FAILED to /var/log/vm-infra/provisioning.log on the guest and undid the block's changes"
    : "no rescue caught it";
  return `${where}: provisioning failed at task "${first?.task ?? "?"}": ${oneLine(first?.message ?? `ansible-playbook exited ${r.exitCode}`)}; ${rescue}. ` +
    `The VM is kept and not recorded as provisioned; the next up runs ${path.basename(i.playbook)} again.`;
}

async function provision(i: ProvisionInputs, why: string): Promise<ProvisionOutputs> {
  if (i.status !== "ready" || !i.address)
    throw new Error(`${i.name} on ${i.hostName}: not provisioned: the VM is ${i.status || "not ready"}; start it and run up again`);
  say(`${i.name}: running ${path.basename(i.playbook)} on ${i.address} (${why})`);
  const t0 = Date.now();
  const r = await runPlaybook({
    name: i.name, address: i.address, user: i.user, privateKeyPath: i.privateKeyPath, hostKey: { alias: i.name, publicKey: i.hostKey }, netns: i.netns, jump: i.jump, playbook: i.playbook,
    vars: { ...i.vars, ...i.secretVars }, tags: i.tags, timeoutMs: i.timeoutSeconds * 1000, projectDir: path.join(__dirname, "..", ".."),
  });
  const seconds = Math.round((Date.now() - t0) / 100) / 10;
  if (r.outcome !== "ok") {
    const message = scrub(failureMessage(i, r), secretsOf(i));
    audit({ action: "provision", vm: i.name, host: i.hostName, outcome: "failed", detail: message.slice(0, 300) });
    throw new Error(message);
  }
  audit({ action: "provision", vm: i.name, host: i.hostName, outcome: "ok", detail: `ok=${r.ok} changed=${r.changed}` });
  say(`${i.name}: provisioned in ${seconds} s: ok=${r.ok} changed=${r.changed} rescued=${r.rescued}`);
  return { ...i, result: { playbookHash: i.playbookHash, outcome: "ok", ok: r.ok, changed: r.changed, failed: r.failed, rescued: r.rescued, seconds, at: new Date().toISOString() } };
}

export const provider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: ProvisionOutputs, news: ProvisionInputs) {
    return { changes: triggered(olds, news).length > 0, replaces: [] };
  },
  async create(i: ProvisionInputs) {
    return { id: i.name, outs: await provision(i, "first run") };
  },
  async update(_id: string, olds: ProvisionOutputs, news: ProvisionInputs) {
    return { outs: await provision(news, `${triggered(olds, news).join(", ")} changed`) };
  },
  async delete() {
    /* what ran in the guest goes with the VM */
  },
};
