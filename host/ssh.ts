// SSH to guests: argv built by a pure function. The far side of ssh is a shell: ssh joins `remote` into one line,
// so only constant commands may go there (never a user value). (BatchMode, no host-key prompts, `--` before the destination), and
// only constant remote commands. Optionally from inside a network namespace (the lab's guests live there).
import type { JumpHost } from "../config/uri";
import { run, Runner } from "./runner";
import { endpointKey, SshGate, sshGate } from "./sshGate";
import { withPrivateFile } from "./tempFiles";

export interface SshTarget {
  user: string;
  address: string;
  privateKeyPath: string;
  /** From inside this network namespace (the local lab). */
  netns?: string;
  /** Through this hypervisor's SSH (ProxyJump): for an operator with no route to the guest network. */
  jump?: JumpHost;
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
 * given key, and guest host keys not checked (vm-infra does not pin them yet: the lab reaches guests only from inside
 * its own namespaces). The one place this policy is written.
 */
export const GUEST_SSH_OPTIONS = ["BatchMode=yes", "IdentitiesOnly=yes", "StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null"] as const;

/** The guest's route as ssh options: a jump needs the ssh_config that withRoute writes. */
export function routeArgs(t: Pick<SshTarget, "jump">, configFile?: string): string[] {
  if (!t.jump) return [];
  if (!configFile) throw new Error("ssh: a jump host needs its ssh_config (withRoute)");
  return ["-F", configFile, "-o", `ProxyJump=${JUMP_ALIAS}`];
}

export function sshArgv(t: SshTarget, remote: readonly string[], connectTimeoutS = 5, configFile?: string): string[] {
  const ssh = [
    "ssh", ...routeArgs(t, configFile), "-i", t.privateKeyPath,
    ...[...GUEST_SSH_OPTIONS, "LogLevel=ERROR", `ConnectTimeout=${connectTimeoutS}`].flatMap((o) => ["-o", o]),
    "-l", t.user, "--", t.address, ...remote,
  ];
  return t.netns ? ["ip", "netns", "exec", t.netns, ...ssh] : ssh;
}

/** A command through the jump host opens an SSH connection to the hypervisor: paced with its virsh calls. */
const viaJump = <T>(t: Pick<SshTarget, "jump">, f: () => Promise<T>, gate: SshGate): Promise<T> =>
  t.jump ? gate.through(endpointKey(t.jump), f) : f();

export async function sshRun(t: SshTarget, remote: readonly string[], timeoutMs: number, runner: Runner = run, gate: SshGate = sshGate) {
  return withRoute(t, (cfg) => {
    const [file, ...args] = sshArgv(t, remote, 5, cfg);
    return viaJump(t, () => runner(file, args, { timeoutMs }), gate);
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
