// A guest that answers with another SSH host key than its pinned one. Refused when vm-infra verified the pinned key on
// that guest before (the key changed under it: someone may be in the middle). Otherwise the guest never had the pinned
// key: it was made before vm-infra pinned keys, or adopted from another stack. Then its key is learned through the
// hypervisor (the guest agent reads /etc/ssh/ssh_host_ed25519_key.pub: libvirt's channel, not the network, so nothing
// is trusted on first use), the pinned key is installed over an SSH session that checks that learned key, and sshd
// reloads. Keys travel on ssh's stdin, never argv; the remote commands are constants.
import { Virsh } from "../host/virsh";
import { fingerprint, sshRun, SshTarget } from "../host/ssh";
import { run, Runner } from "../host/runner";
import { SshGate, sshGate } from "../host/sshGate";

export const GUEST_KEY_FILE = "/etc/ssh/ssh_host_ed25519_key";

/** What to do about a host-key refusal: "refuse" when the pinned key was verified on this guest before. Pure. */
export const onKeyRefusal = (pinned: string, verifiedBefore?: string): "refuse" | "install" => (verifiedBefore === pinned ? "refuse" : "install");

/** "ssh-ed25519 AAAA... comment" -> "ssh-ed25519 AAAA..."; undefined when it is not an ed25519 public key. Pure. */
export function parsePublicKey(text: string): string | undefined {
  const m = /^(ssh-ed25519) ([A-Za-z0-9+/]+={0,2})(\s|$)/.exec(text.trim());
  return m ? `${m[1]} ${m[2]}` : undefined;
}

/** The ed25519 host key the guest has now, read through its guest agent (libvirt's channel, not the network). */
export async function agentHostKey(v: Virsh, domain: string): Promise<string | undefined> {
  return parsePublicKey(await v.agentReadFile(domain, `${GUEST_KEY_FILE}.pub`));
}

/**
 * Installs the pinned key (`privateKey` is its private half) on a guest that never had it. `v` reaches the guest's
 * hypervisor; `t` the guest, with `t.hostKey` the pinned key.
 */
export async function installPinnedKey(v: Virsh, domain: string, t: SshTarget, privateKey: string, log: (s: string) => void,
  runner: Runner = run, gate: SshGate = sshGate): Promise<void> {
  let current: string | undefined;
  try {
    current = await agentHostKey(v, domain);
  } catch (e) {
    throw new Error(`${t.hostKey.alias} at ${t.address}: the guest's SSH host key is not the one vm-infra made for it, and its guest agent could not ` +
      `show the key it has (${e instanceof Error ? e.message : String(e)}); vm-infra trusts no key it cannot verify, so nothing was run on it. ` +
      "Start qemu-guest-agent in the guest, or replace the VM (a new disk gets the pinned key at first boot)");
  }
  if (!current) throw new Error(`${t.hostKey.alias}: the guest agent's ${GUEST_KEY_FILE}.pub holds no ed25519 public key; nothing was run on the guest`);
  // sshd may present the new key as soon as its file is written (OpenSSH re-executes itself for each connection and
  // reads its host keys again) or only after the reload: each step accepts the key the guest had and the pinned one
  const learned: SshTarget = { ...t, hostKey: { alias: t.hostKey.alias, publicKey: current, alsoAccepted: [t.hostKey.publicKey] } };
  log(`${t.hostKey.alias}: the guest has SSH host key ${fingerprint(current)} (read through its guest agent), not yet the pinned ${fingerprint(t.hostKey.publicKey)}: ` +
    "installing the pinned key over SSH checked against the key it has");
  const put = (file: string, mode: string, content: string) =>
    sshRun(learned, ["sudo", "-n", "install", "-m", mode, "-o", "root", "-g", "root", "/dev/stdin", file], 30_000, runner, gate, content);
  await put(`${GUEST_KEY_FILE}.pub`, "644", `${t.hostKey.publicKey}\n`);
  await put(GUEST_KEY_FILE, "600", privateKey);
  // sshd reads its host keys again on reload (it re-executes itself); sessions already open stay
  await sshRun(learned, ["sudo", "-n", "systemctl", "reload", "ssh"], 30_000, runner, gate);
}
