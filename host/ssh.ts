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

export function sshArgv(t: SshTarget, remote: readonly string[], connectTimeoutS = 5): string[] {
  const ssh = [
    "ssh", "-i", t.privateKeyPath, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
    "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
    "-o", `ConnectTimeout=${connectTimeoutS}`, "-l", t.user, "--", t.address, ...remote,
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
