// Guest host keys pinned (issue 10 item 4): the key made by ssh-keygen, handed to cloud-init, the seed hash that does
// not restart a VM for it, a refusal read from ssh's own words, and the install on a guest that never had the key
// (learned through the guest agent, installed over SSH checked against that learned key, keys on stdin only).
import YAML from "yaml";
import { readFileSync } from "node:fs";
import { cloudInitDocs } from "../../cloud-init/documents";
import { MIGRATION_DEFAULTS, macFor, VmSpec } from "../../config/spec";
import { makeHostKey } from "../../providers/hostKey";
import { installPinnedKey, onKeyRefusal, parsePublicKey } from "../../providers/guestHostKey";
import { fingerprint, GuestHostKeyError, hostKeyRefusal, sshRun } from "../../host/ssh";
import { CommandError, run, Runner } from "../../host/runner";
import { Virsh } from "../../host/virsh";
import { SshGate } from "../../host/sshGate";
import { withPrivateFile } from "../../host/tempFiles";

const vm: VmSpec = {
  name: "web-1", host: "hv-a", vcpus: 1, memoryMiB: 512, diskGiB: 4, user: "ops",
  sshKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBsDSiUG+pm/RKi1LSX+t9/dajLwyJtlG+n01nxm0rVf lab"],
  packages: [], mac: macFor("web-1"), storage: "local", migration: MIGRATION_DEFAULTS, tags: [],
};
const PINNED = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOq1kYvR3Gc3mO8ZbqPgmYc3xQYqkQq6yH6o3J0Zb1Cd";
const OTHER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBsDSiUG+pm/RKi1LSX+t9/dajLwyJtlG+n01nxm0rVf";
const PRIVATE = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";

test("ssh-keygen makes an ed25519 pair: the public half without a comment, the private half OpenSSH's, and ssh-keygen agrees on the fingerprint", async () => {
  const k = await makeHostKey();
  expect(k.publicKey).toMatch(/^ssh-ed25519 [A-Za-z0-9+/]{68}$/);
  expect(k.privateKey).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n[\s\S]+\n-----END OPENSSH PRIVATE KEY-----\n$/);
  const listed = await withPrivateFile(`${k.publicKey}\n`, (f) => run("ssh-keygen", ["-l", "-f", f], { timeoutMs: 10_000 }), "k.pub");
  expect(listed.stdout.split(" ")[1]).toBe(fingerprint(k.publicKey));
  // the private half gives back the same public half
  const derived = await withPrivateFile(k.privateKey, (f) => run("ssh-keygen", ["-y", "-f", f], { timeoutMs: 10_000 }), "k");
  expect(derived.stdout.trim()).toBe(k.publicKey);
  expect((await makeHostKey()).publicKey).not.toBe(k.publicKey);
});

test("cloud-init gets exactly the pinned key and no other; the restart hash is the seed's without the key (VMs made before are not restarted)", () => {
  const d = cloudInitDocs(vm, { publicKey: PINNED, privateKey: PRIVATE });
  const u = YAML.parse(d.userData.replace(/^#cloud-config\n/, ""));
  expect([u.ssh_keys, u.ssh_genkeytypes, u.ssh_deletekeys]).toEqual([{ ed25519_private: PRIVATE, ed25519_public: PINNED }, [], true]);
  const without = cloudInitDocs(vm);
  expect(d.seedHash).toBe(without.hash);
  expect(without.seedHash).toBe(without.hash);
  expect(d.hash).not.toBe(without.hash);
  expect(cloudInitDocs(vm, { publicKey: OTHER, privateKey: PRIVATE }).seedHash).toBe(d.seedHash);
  expect(cloudInitDocs({ ...vm, packages: ["htop"] }, { publicKey: PINNED, privateKey: PRIVATE }).seedHash).not.toBe(d.seedHash);
});

test("extraUserData cannot replace or add host keys", () => {
  expect(() => cloudInitDocs({ ...vm, extraUserData: "ssh_genkeytypes: [rsa]\nssh_keys: {}\n" })).toThrow(
    "vm web-1: extraUserData sets ssh_keys, ssh_genkeytypes: vm-infra makes each VM's SSH host key and accepts only that one; remove them");
  expect(() => cloudInitDocs({ ...vm, extraUserData: "ssh_deletekeys: false\n" })).toThrow("extraUserData sets ssh_deletekeys");
});

test("ssh's refusal of a changed guest key is recognised with the fingerprint it was offered; other failures are not", () => {
  const changed = [
    "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@",
    "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @",
    "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@",
    "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!",
    "The fingerprint for the ED25519 key sent by the remote host is",
    "SHA256:Hk2KqTKyv2T3VbJ3m8j0x0l6y3b3E1u8oZ7nV3cQp0s.",
    "Host key for web-1 has changed and you have requested strict checking.",
    "Host key verification failed.",
  ].join("\r\n");
  expect(hostKeyRefusal(changed)).toEqual({ offered: "SHA256:Hk2KqTKyv2T3VbJ3m8j0x0l6y3b3E1u8oZ7nV3cQp0s" });
  expect(hostKeyRefusal("Host key verification failed.\r\n")).toEqual({});
  expect(hostKeyRefusal("ssh: connect to host 192.168.100.5 port 22: Connection refused\r\n")).toBeUndefined();
  expect(hostKeyRefusal("Permission denied (publickey).\r\n")).toBeUndefined();
});

test("a refused guest key fails sshRun with GuestHostKeyError naming both fingerprints; exit 255 for another reason stays a CommandError", async () => {
  const refusing: Runner = async (file, args) => {
    throw new CommandError([file, ...args], 255, null, false, "The fingerprint for the ED25519 key sent by the remote host is\r\nSHA256:abc+/9.\r\nHost key verification failed.\r\n", "");
  };
  const t = { user: "ops", address: "192.168.100.5", privateKeyPath: "/k", netns: "vmi-hv-a", hostKey: { alias: "web-1", publicKey: PINNED } };
  const e = await sshRun(t, ["true"], 5000, refusing).catch((x: unknown) => x);
  expect(e).toBeInstanceOf(GuestHostKeyError);
  expect((e as Error).message).toBe(`web-1 at 192.168.100.5: the guest answered with another SSH host key (SHA256:abc+/9) than the one vm-infra made for it (${fingerprint(PINNED)}); refused, nothing was run on it`);
  const refused: Runner = async (file, args) => {
    throw new CommandError([file, ...args], 255, null, false, "ssh: connect to host 192.168.100.5 port 22: Connection refused\r\n", "");
  };
  const f = await sshRun(t, ["true"], 5000, refused).catch((x: unknown) => x);
  expect(f).toBeInstanceOf(CommandError);
  expect(f).not.toBeInstanceOf(GuestHostKeyError);
});

test("refuse a changed key once the pinned key was verified on the guest; install it where it never was", () => {
  expect(onKeyRefusal(PINNED, PINNED)).toBe("refuse");
  expect(onKeyRefusal(PINNED, undefined)).toBe("install");
  expect(onKeyRefusal(PINNED, OTHER)).toBe("install"); // a key pinned before was replaced (a new HostKey): never verified
  expect(parsePublicKey(`${OTHER} root@web-1\n`)).toBe(OTHER);
  expect(parsePublicKey("ssh-rsa AAAAB3NzaC1yc2E root@web-1")).toBeUndefined();
  expect(parsePublicKey("")).toBeUndefined();
});

test("installing the pinned key: learned through the agent, then constant commands over SSH that checks the learned key, the keys on stdin only", async () => {
  const agentCalls: string[] = [];
  const agent: Runner = async (_f, args) => {
    const req = JSON.parse(args[args.length - 1]) as { execute: string; arguments: Record<string, unknown> };
    agentCalls.push(`${req.execute} ${JSON.stringify(req.arguments)}`);
    const answer = req.execute === "guest-file-open" ? 1000 : req.execute === "guest-file-read"
      ? { count: 80, "buf-b64": Buffer.from(`${OTHER} root@web-1\n`).toString("base64"), eof: true } : {};
    return { stdout: JSON.stringify({ return: answer }), stderr: "", exitCode: 0 };
  };
  const ssh: { args: string[]; input?: string; knownHosts: string }[] = [];
  const guest: Runner = async (file, args, o) => {
    const kh = args.find((a) => a.startsWith("UserKnownHostsFile="))!.split("=")[1];
    ssh.push({ args: args.slice(args.indexOf("--") + 2), input: o.input as string | undefined, knownHosts: readFileSync(kh, "utf8") });
    return { stdout: "", stderr: "", exitCode: 0 };
  };
  const logged: string[] = [];
  const t = { user: "ops", address: "192.168.100.5", privateKeyPath: "/k", netns: "vmi-hv-a", hostKey: { alias: "web-1", publicKey: PINNED } };
  await installPinnedKey(new Virsh("qemu:///a", agent), "web-1", t, PRIVATE, (s) => logged.push(s), guest, new SshGate());
  expect(agentCalls).toEqual(['guest-file-open {"path":"/etc/ssh/ssh_host_ed25519_key.pub","mode":"r"}', 'guest-file-read {"handle":1000,"count":65536}',
    'guest-file-close {"handle":1000}']);
  expect(ssh.map((c) => c.args.join(" "))).toEqual([
    "sudo -n install -m 644 -o root -g root /dev/stdin /etc/ssh/ssh_host_ed25519_key.pub",
    "sudo -n install -m 600 -o root -g root /dev/stdin /etc/ssh/ssh_host_ed25519_key",
    "sudo -n systemctl reload ssh"]);
  expect(ssh.map((c) => c.input)).toEqual([`${PINNED}\n`, PRIVATE, undefined]);
  // checked against the key the guest has now, or the pinned one once sshd presents it: nothing else
  expect(ssh.map((c) => c.knownHosts)).toEqual(Array(3).fill(`web-1 ${OTHER}\nweb-1 ${PINNED}\n`));
  expect(logged).toEqual([`web-1: the guest has SSH host key ${fingerprint(OTHER)} (read through its guest agent), not yet the pinned ${fingerprint(PINNED)}: ` +
    "installing the pinned key over SSH checked against the key it has"]);
});

test("no guest agent: nothing is installed, and the error says why and what to do", async () => {
  const silent: Runner = async (file, args) => {
    throw new CommandError([file, ...args], 1, null, false, "error: Guest agent is not responding: QEMU guest agent is not connected", "");
  };
  const guest: Runner = async () => {
    throw new Error("must not be called");
  };
  const t = { user: "ops", address: "192.168.100.5", privateKeyPath: "/k", hostKey: { alias: "web-1", publicKey: PINNED } };
  await expect(installPinnedKey(new Virsh("qemu:///a", silent), "web-1", t, PRIVATE, () => undefined, guest, new SshGate())).rejects.toThrow(
    /^web-1 at 192\.168\.100\.5: the guest's SSH host key is not the one vm-infra made for it, and its guest agent could not show the key it has \(.*QEMU guest agent is not connected\); vm-infra trusts no key it cannot verify, so nothing was run on it\. Start qemu-guest-agent in the guest, or replace the VM/);
});
