// SSH to guests: argv built by a pure function. The far side of ssh is a shell: ssh joins `remote` into one line,
// so only constant commands may go there (never a user value). BatchMode (never a prompt), only the given key, `--`
// before the destination, and the guest's host key checked against exactly the one vm-infra made for it (never
// trusted on first use). Optionally from inside a network namespace (the lab's guests) or through the hypervisor.
import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import * as path from "node:path";
import type { JumpHost } from "../config/uri";
import { CommandError, run, Runner } from "./runner";
import { endpointKey, SshGate, sshGate } from "./sshGate";
import { withPrivateDir, withPrivateFile } from "./tempFiles";

/** The one host key a guest may answer with, under the name (its VM's) that known_hosts files it by. */
export interface PinnedKey {
  alias: string;
  /** "ssh-ed25519 AAAA..." */
  publicKey: string;
  /**
   * Other keys this guest may answer with, each verified some other way: only while vm-infra replaces the key the guest
   * has (read through its guest agent) with the pinned one, when either can be the one sshd presents.
   */
  alsoAccepted?: string[];
}

export interface SshTarget {
  user: string;
  address: string;
  privateKeyPath: string;
  hostKey: PinnedKey;
  /** From inside this network namespace (the local lab). */
  netns?: string;
  /** Through this hypervisor's SSH (ProxyJump): for an operator with no route to the guest network. */
  jump?: JumpHost;
}

/** The files a guest SSH reads: a known_hosts with the pinned key only, and the jump host's ssh_config if any. */
export interface GuestFiles {
  knownHosts: string;
  config?: string;
}

/** The known_hosts line that pins a guest's key (also the VM's `knownHosts` output, for the user's own ssh). Pure. */
export const knownHostsLine = (k: PinnedKey) => `${k.alias} ${k.publicKey}`;

/** A guest SSH's known_hosts: the pinned key, and any key also accepted for now, under the VM's name. Pure. */
export const knownHostsFile = (k: PinnedKey) =>
  [k.publicKey, ...(k.alsoAccepted ?? [])].map((publicKey) => `${knownHostsLine({ alias: k.alias, publicKey })}\n`).join("");

/** "SHA256:..." as ssh-keygen -l prints it, of a "type base64" public key. Pure. */
export function fingerprint(publicKey: string): string {
  const blob = Buffer.from(publicKey.trim().split(/\s+/)[1] ?? "", "base64");
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** A guest that answered with another host key than its pinned one: nothing was run on it. */
export class GuestHostKeyError extends Error {
  override readonly name = "GuestHostKeyError";
  constructor(readonly target: Pick<SshTarget, "address" | "hostKey">, readonly offered?: string) {
    super(`${target.hostKey.alias} at ${target.address}: the guest answered with another SSH host key${offered ? ` (${offered})` : ""} than the one vm-infra ` +
      `made for it (${fingerprint(target.hostKey.publicKey)}); refused, nothing was run on it`);
  }
}

/** The offered key's fingerprint when ssh refused a guest for its host key; undefined for any other failure. Pure. */
export function hostKeyRefusal(stderr: string): { offered?: string } | undefined {
  if (!/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No (ED25519 )?host key is known/i.test(stderr)) return undefined;
  const m = /key sent by the remote host is\s+(SHA256:[A-Za-z0-9+/]+)/.exec(stderr);
  return m ? { offered: m[1] } : {};
}

/** The jump host's name inside vm-infra's own ssh_config (the one file ssh reads when it is given). */
export const JUMP_ALIAS = "vmi-jump";

/**
 * The ssh_config that reaches a jump host: exactly the URI's user, port, key and known_hosts, and its host key always
 * checked (never trusted on first use). ssh hands the same file (-F) to the ssh it runs for the jump. Pure.
 */
export function jumpConfig(j: JumpHost): string {
  return [
    `Host ${JUMP_ALIAS}`, `  HostName ${j.host.replace(/^\[(.*)\]$/, "$1")}`, ...(j.user ? [`  User ${j.user}`] : []),
    ...(j.port ? [`  Port ${j.port}`] : []), ...(j.keyfile ? [`  IdentityFile ${j.keyfile}`, "  IdentitiesOnly yes"] : []),
    ...(j.knownHosts ? [`  UserKnownHostsFile ${j.knownHosts}`] : []), "  StrictHostKeyChecking yes", "  BatchMode yes", "  LogLevel ERROR", "",
  ].join("\n");
}

/** Runs `f` with the path of the ssh_config a target's route needs (undefined: none, ssh's defaults apply). */
export function withRoute<T>(t: Pick<SshTarget, "jump">, f: (configFile?: string) => Promise<T>): Promise<T> {
  return t.jump ? withPrivateFile(jumpConfig(t.jump), f, "ssh_config") : f(undefined);
}

/**
 * How vm-infra's SSH reaches a guest (readiness, health checks, the provisioning inventory): never a prompt, only the
 * given key, and the guest's host key looked up under its VM's name in a known_hosts that holds only the pinned key
 * (the system's known_hosts is not read). The one place this policy is written. Pure.
 */
export function guestSshOptions(k: PinnedKey, knownHosts: string): string[] {
  return ["BatchMode=yes", "IdentitiesOnly=yes", "StrictHostKeyChecking=yes", `UserKnownHostsFile=${knownHosts}`, "GlobalKnownHostsFile=/dev/null",
    `HostKeyAlias=${k.alias}`, `HostKeyAlgorithms=${k.publicKey.split(" ")[0]}`];
}

/** Writes a guest SSH's files into a private directory (removed afterwards) and passes their paths to `f`. */
export function withGuestFiles<T>(t: Pick<SshTarget, "hostKey" | "jump">, f: (files: GuestFiles) => Promise<T>): Promise<T> {
  return withPrivateDir(async (dir) => {
    const knownHosts = path.join(dir, "known_hosts");
    await writeFile(knownHosts, knownHostsFile(t.hostKey), { mode: 0o600 });
    if (!t.jump) return f({ knownHosts });
    const config = path.join(dir, "ssh_config");
    await writeFile(config, jumpConfig(t.jump), { mode: 0o600 });
    return f({ knownHosts, config });
  });
}

/** The guest's route as ssh options: a jump needs the ssh_config that withRoute/withGuestFiles writes. */
export function routeArgs(t: Pick<SshTarget, "jump">, configFile?: string): string[] {
  if (!t.jump) return [];
  if (!configFile) throw new Error("ssh: a jump host needs its ssh_config (withRoute)");
  return ["-F", configFile, "-o", `ProxyJump=${JUMP_ALIAS}`];
}

export function sshArgv(t: SshTarget, remote: readonly string[], files: GuestFiles, connectTimeoutS = 5): string[] {
  const ssh = [
    "ssh", ...routeArgs(t, files.config), "-i", t.privateKeyPath,
    ...[...guestSshOptions(t.hostKey, files.knownHosts), "LogLevel=ERROR", `ConnectTimeout=${connectTimeoutS}`].flatMap((o) => ["-o", o]),
    "-l", t.user, "--", t.address, ...remote,
  ];
  return t.netns ? ["ip", "netns", "exec", t.netns, ...ssh] : ssh;
}

/** A command through the jump host opens an SSH connection to the hypervisor: paced with its virsh calls. */
const viaJump = <T>(t: Pick<SshTarget, "jump">, f: () => Promise<T>, gate: SshGate): Promise<T> =>
  t.jump ? gate.through(endpointKey(t.jump), f) : f();

/**
 * Runs a constant command on the guest (`input`, if any, on its stdin: the way values reach the far side). A guest
 * that answers with another host key fails with GuestHostKeyError.
 */
export async function sshRun(t: SshTarget, remote: readonly string[], timeoutMs: number, runner: Runner = run, gate: SshGate = sshGate, input?: string) {
  return withGuestFiles(t, async (files) => {
    const [file, ...args] = sshArgv(t, remote, files);
    try {
      return await viaJump(t, () => runner(file, args, { timeoutMs, ...(input !== undefined ? { input, secrets: [input] } : {}) }), gate);
    } catch (e) {
      const refused = e instanceof CommandError && e.exitCode === 255 ? hostKeyRefusal(e.stderrTail) : undefined;
      if (refused) throw new GuestHostKeyError(t, refused.offered);
      throw e;
    }
  });
}

/**
 * A TCP port of the guest through the jump host's forwarding (`ssh -W`, no shell on either side): `request` is written
 * to it and what the guest answers is returned.
 */
export async function jumpTcp(t: Required<Pick<SshTarget, "address" | "jump">>, port: number, request: string, timeoutMs: number, runner: Runner = run) {
  return withRoute(t, (cfg) => viaJump(t, () => runner("ssh", [...routeArgs(t, cfg).slice(0, 2), "-W", `${t.address}:${port}`, "--", JUMP_ALIAS], { timeoutMs, input: request }), sshGate));
}

/** `ssh-keygen -l -f` accepts exactly the keys OpenSSH can use; the key goes through a private temp file. */
export async function validatePublicKey(key: string, runner: Runner = run): Promise<void> {
  await withPrivateFile(key + "\n", (f) => runner("ssh-keygen", ["-l", "-f", f], { timeoutMs: 10_000 }), "key.pub");
}
