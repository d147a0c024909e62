// The lab's remote topology: an operator namespace (OPS.netns) joined to every host by a management network, and an
// sshd per host inside that host's namespaces, with host keys generated for this lab and key-only root login. Clients
// run in the operator namespace: libvirt over qemu+libssh (host keys checked against the lab's known_hosts), guests
// only through their hypervisor's sshd. The operator namespace has no route to the guest network.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { run } from "../host/runner";
import { lines } from "../host/virsh";
import { pidAlive } from "./proc";
import { HOSTS, KNOWN_HOSTS, LabHost, OPS, OPS_KEY, REMOTE_DIR, mgmtAddress, runDir, sshdDir } from "./layout";

const T = { timeoutMs: 30_000 };
const ip = (args: string[]) => run("ip", args, T);
const keygen = (file: string, comment: string) =>
  run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file], T);

const sshdPidFile = (h: LabHost) => path.join(sshdDir(h), "sshd.pid");

/** sshd's whole configuration (Debian's /etc/ssh/sshd_config is never read): key-only root login on the management address. */
function sshdConfig(h: LabHost): string {
  const d = sshdDir(h);
  return [
    `ListenAddress ${mgmtAddress(h)}`, "Port 22", `HostKey ${path.join(d, "ssh_host_ed25519_key")}`, `PidFile ${sshdPidFile(h)}`,
    `AuthorizedKeysFile ${path.join(d, "authorized_keys")}`, "PermitRootLogin prohibit-password", "PubkeyAuthentication yes",
    "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no",
    // its files are 0600 in a 0700 directory, but under /var/tmp (world-writable), which StrictModes refuses
    "StrictModes no",
    // ProxyJump to the guests is a TCP forward; nothing else is forwarded
    "AllowTcpForwarding yes", "AllowAgentForwarding no", "X11Forwarding no", "PermitTunnel no", "PrintMotd no",
    // MaxStartups stays OpenSSH's default (10:30:100), as on a real hypervisor: vm-infra paces its new connections
    // per host (host/sshGate.ts) instead of the lab raising the limit
    `SyslogFacility AUTH`, "LogLevel ERROR", "",
  ].join("\n");
}

async function keys(): Promise<void> {
  await mkdir(REMOTE_DIR, { recursive: true, mode: 0o700 });
  if (!existsSync(OPS_KEY)) await keygen(OPS_KEY, "vm-infra-lab-operator");
  const known: string[] = [];
  for (const h of HOSTS) {
    const d = sshdDir(h);
    await mkdir(d, { recursive: true, mode: 0o700 });
    const hostKey = path.join(d, "ssh_host_ed25519_key");
    if (!existsSync(hostKey)) await keygen(hostKey, `${h.name}-host-key`);
    const [type, key] = (await readFile(`${hostKey}.pub`, "utf8")).trim().split(/\s+/);
    known.push(`${mgmtAddress(h)} ${type} ${key}`);
    await writeFile(path.join(d, "authorized_keys"), await readFile(`${OPS_KEY}.pub`, "utf8"), { mode: 0o600 });
    await writeFile(path.join(d, "sshd_config"), sshdConfig(h), { mode: 0o600 });
  }
  await writeFile(KNOWN_HOSTS, known.join("\n") + "\n", { mode: 0o600 });
}

async function network(): Promise<void> {
  const nss = lines((await ip(["netns", "list"])).stdout).map((l) => l.split(" ")[0]);
  if (!nss.includes(OPS.netns)) await ip(["netns", "add", OPS.netns]);
  await ip(["-n", OPS.netns, "link", "set", "lo", "up"]);
  const has = async (ns: string, dev: string) => (await run("ip", ["-n", ns, "link", "show", "dev", dev], { ...T, okCodes: [0, 1] })).exitCode === 0;
  if (!(await has(OPS.netns, OPS.bridge))) {
    await ip(["-n", OPS.netns, "link", "add", OPS.bridge, "type", "bridge"]);
    await ip(["-n", OPS.netns, "addr", "add", `${OPS.address}/24`, "dev", OPS.bridge]);
  }
  await ip(["-n", OPS.netns, "link", "set", OPS.bridge, "up"]);
  for (const h of HOSTS) {
    const peer = `m-${h.name}`;
    if (!(await has(h.netns, "mgmt0"))) {
      await ip(["link", "add", "mgmt0", "netns", h.netns, "type", "veth", "peer", "name", peer, "netns", OPS.netns]);
      await ip(["-n", h.netns, "addr", "add", `${mgmtAddress(h)}/24`, "dev", "mgmt0"]);
    }
    await ip(["-n", h.netns, "link", "set", "mgmt0", "up"]);
    await ip(["-n", OPS.netns, "link", "set", peer, "master", OPS.bridge]);
    await ip(["-n", OPS.netns, "link", "set", peer, "up"]);
  }
}

/** Brings the remote topology up (after the hosts): keys, the management network, an sshd per host. Idempotent. */
export async function remoteUp(): Promise<void> {
  await keys();
  await network();
  await mkdir("/run/sshd", { recursive: true, mode: 0o755 }); // sshd's privilege-separation directory
  for (const h of HOSTS) {
    if (pidAlive(sshdPidFile(h))) continue;
    const libvirtd = pidAlive(path.join(runDir(h), "libvirtd.pid"));
    if (!libvirtd) throw new Error(`lab: ${h.name}: no libvirtd to start sshd beside`);
    // in the host's network, mount (its /run/libvirt) and UTS namespaces, like its libvirtd
    await run("nsenter", ["-t", String(libvirtd), "-m", "-n", "-u", "/usr/sbin/sshd", "-f", path.join(sshdDir(h), "sshd_config")], T);
  }
}

/** Stops every sshd of the lab, removes the operator namespace (and its veths) and the generated keys. */
export async function remoteDown(): Promise<void> {
  for (const h of HOSTS) {
    const pid = pidAlive(sshdPidFile(h));
    if (pid) process.kill(pid, "SIGTERM");
  }
  const nss = lines((await ip(["netns", "list"])).stdout).map((l) => l.split(" ")[0]);
  if (nss.includes(OPS.netns)) {
    for (const pid of lines((await ip(["netns", "pids", OPS.netns])).stdout).map(Number)) {
      try {
        process.kill(pid, "SIGKILL"); // a client left in the operator namespace (a killed test's pulumi)
      } catch {
        /* gone */
      }
    }
    await ip(["netns", "del", OPS.netns]);
  }
  await rm(REMOTE_DIR, { recursive: true, force: true });
}

/** What the remote topology left behind: its namespace, its files, an sshd of the lab. */
export function remoteLeaks(): string[] {
  const leaks: string[] = [];
  if (existsSync(path.join("/run/netns", OPS.netns))) leaks.push(`netns ${OPS.netns}`);
  if (existsSync(REMOTE_DIR)) leaks.push(`directory ${REMOTE_DIR}`);
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() !== "sshd") continue;
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(REMOTE_DIR)) leaks.push(`process ${pid} sshd`);
    } catch {
      /* exited while we looked */
    }
  }
  return leaks;
}
