// SSH to guests: argv built by a pure function. The far side of ssh is a shell: ssh joins `remote` into one line,
// so only constant commands may go there (never a user value). (BatchMode, no host-key prompts, `--` before the destination), and
// only constant remote commands. Optionally from inside a network namespace (the lab's guests live there).
import { run, Runner } from "./runner";
import { withPrivateFile } from "./tempFiles";

export interface SshTarget {
  user: string;
  address: string;
  privateKeyPath: string;
  netns?: string;
}

/**
 * How vm-infra's SSH reaches a guest (readiness, health checks, the provisioning inventory): never a prompt, only the
 * given key, and guest host keys not checked (vm-infra does not pin them yet: the lab reaches guests only from inside
 * its own namespaces). The one place this policy is written.
 */
export const GUEST_SSH_OPTIONS = ["BatchMode=yes", "IdentitiesOnly=yes", "StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null"] as const;

export function sshArgv(t: SshTarget, remote: readonly string[], connectTimeoutS = 5): string[] {
  const ssh = [
    "ssh", "-i", t.privateKeyPath, ...[...GUEST_SSH_OPTIONS, "LogLevel=ERROR", `ConnectTimeout=${connectTimeoutS}`].flatMap((o) => ["-o", o]),
    "-l", t.user, "--", t.address, ...remote,
  ];
  return t.netns ? ["ip", "netns", "exec", t.netns, ...ssh] : ssh;
}

export async function sshRun(t: SshTarget, remote: readonly string[], timeoutMs: number, runner: Runner = run) {
  const [file, ...args] = sshArgv(t, remote);
  return runner(file, args, { timeoutMs });
}

/** `ssh-keygen -l -f` accepts exactly the keys OpenSSH can use; the key goes through a private temp file. */
export async function validatePublicKey(key: string, runner: Runner = run): Promise<void> {
  await withPrivateFile(key + "\n", (f) => runner("ssh-keygen", ["-l", "-f", f], { timeoutMs: 10_000 }), "key.pub");
}
