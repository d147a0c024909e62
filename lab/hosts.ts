// Two libvirtd hosts in their own network + mount + UTS namespaces. Control from the root namespace goes over
// unix sockets only; guest and migration traffic stays inside the namespaces (no uplink, no default route).
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { randomUUID } from "node:crypto";
import * as path from "node:path";
import { run } from "../host/runner";
import { poll, PollTimeout } from "../host/poll";
import { Virsh, lines } from "../host/virsh";
import { GUEST_NET, HOSTS, LabHost, MIG_NET, PROJECT_ROOT, SHARED_DIR, runDir, socketPath, stateDir, uri } from "./layout";
import { pidAlive } from "./proc";
import { remoteDown, remoteLeaks, remoteUp } from "./remote";

const T = { timeoutMs: 30_000 };
const ip = (args: string[]) => run("ip", args, T);

async function netnsList(): Promise<string[]> {
  return lines((await ip(["netns", "list"])).stdout).map((l) => l.split(" ")[0]);
}

async function linkExists(ns: string, dev: string): Promise<boolean> {
  return run("ip", ["-n", ns, "link", "show", "dev", dev], { ...T, okCodes: [0, 1] }).then((r) => r.exitCode === 0);
}

async function writeConfig(h: LabHost): Promise<void> {
  const s = stateDir(h);
  await mkdir(path.join(s, "etc", "qemu"), { recursive: true });
  const uuidFile = path.join(s, "host-uuid");
  if (!existsSync(uuidFile)) await writeFile(uuidFile, randomUUID());
  const hostUuid = (await readFile(uuidFile, "utf8")).trim(); // distinct per host, or migration refuses
  await writeFile(
    path.join(s, "etc", "libvirtd.conf"),
    [`listen_tcp = 1`, `listen_tls = 0`, `auth_tcp = "none"`, `auth_unix_rw = "none"`, `host_uuid = "${hostUuid}"`,
     `log_outputs = "3:file:/var/log/libvirt/libvirtd.log"`, ``].join("\n"),
  );
  await writeFile(
    path.join(s, "etc", "qemu.conf"),
    [`user = "root"`, `group = "root"`, `dynamic_ownership = 0`, `security_driver = "none"`, `stdio_handler = "file"`,
     `cgroup_controllers = [ ]`, `namespaces = [ ]`, `migration_host = "${MIG_NET}.${h.index}"`, ``].join("\n"),
  );
  await writeFile(path.join(s, "resolv.conf"), "");
  await writeFile(path.join(s, "hosts"), `127.0.0.1 localhost\n127.0.1.1 ${h.name}\n${MIG_NET}.1 hv-a\n${MIG_NET}.2 hv-b\n`);
}

function networkXml(h: LabHost): string {
  const dhcp = h.dhcp
    ? `<dhcp><range start='${GUEST_NET.prefix}.${GUEST_NET.dhcpStart}' end='${GUEST_NET.prefix}.${GUEST_NET.dhcpEnd}'/></dhcp>`
    : "";
  // isolated network (no <forward>): nothing in the lab is routed anywhere
  return `<network><name>lab</name><bridge name='${GUEST_NET.bridge}' stp='off'/>` +
    `<ip address='${GUEST_NET.prefix}.${h.index}' netmask='255.255.255.0'>${dhcp}</ip></network>`;
}

function poolXml(name: string, dir: string): string {
  return `<pool type='dir'><name>${name}</name><target><path>${dir}</path></target></pool>`;
}

async function hostUp(h: LabHost): Promise<void> {
  if (!(await netnsList()).includes(h.netns)) {
    await ip(["netns", "add", h.netns]);
  }
  await ip(["-n", h.netns, "link", "set", "lo", "up"]);
  const pidFile = path.join(runDir(h), "libvirtd.pid");
  if (!pidAlive(pidFile)) {
    await writeConfig(h);
    // a restart keeps libvirt's status files (qemu/*.xml, network/*): through them the new daemon reconnects to the
    // guests and the network its predecessor left running, as libvirtd does on a real host. Only the dead daemon's
    // own socket and PID file go (the network is started explicitly below, so autostart markers do not matter)
    await mkdir(runDir(h), { recursive: true });
    for (const f of await readdir(runDir(h))) if (/^(libvirt-sock|libvirt-admin-sock|libvirtd\.pid|virtlockd|virtlogd)/.test(f)) await rm(path.join(runDir(h), f), { force: true });
    await run("ip", ["netns", "exec", h.netns, "unshare", "--mount", "--uts", "--propagation", "private", "--",
      path.join(PROJECT_ROOT, "lab", "host-init.sh"), h.name, stateDir(h), runDir(h), SHARED_DIR], { timeoutMs: 60_000 });
    await waitFor(() => existsSync(socketPath(h)), 60_000, `${h.name}: libvirtd socket`);
  }
  const v = new Virsh(uri(h));
  await waitFor(async () => v.exec(["version"]).then(() => true, () => false), 60_000, `${h.name}: libvirtd answering`);
  const nets = await v.exec(["net-list", "--all", "--name"]);
  if (!lines(nets).includes("lab")) await v.withXml(networkXml(h), (f) => ["net-define", f]);
  const active = lines(await v.exec(["net-list", "--name"]));
  if (!active.includes("lab")) {
    // a libvirtd restarted in a namespace that outlived its predecessor finds the old bridge (and dnsmasq) there
    if (await linkExists(h.netns, GUEST_NET.bridge)) await ip(["-n", h.netns, "link", "del", GUEST_NET.bridge]);
    for (const pid of lines((await ip(["netns", "pids", h.netns])).stdout).map(Number)) {
      if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "dnsmasq") process.kill(pid, "SIGTERM");
    }
    await v.exec(["net-start", "lab"]);
  }
  const pools = lines(await v.exec(["pool-list", "--all", "--name"]));
  for (const [name, dir] of [["default", "/var/lib/libvirt/images"], ["shared", "/var/lib/vm-infra-shared"], ["small", "/var/lib/vm-infra-small"]]) {
    if (!pools.includes(name)) {
      await v.withXml(poolXml(name, dir), (f) => ["pool-define", f]);
      await v.exec(["pool-autostart", name]);
    }
    const activePools = lines(await v.exec(["pool-list", "--name"]));
    if (!activePools.includes(name)) await v.exec(["pool-start", name]);
  }
}

async function linksUp(): Promise<void> {
  const [a, b] = HOSTS;
  // migration link: libvirtd TCP 16509, QEMU migration and NBD ports
  if (!(await linkExists(a.netns, "mig0"))) {
    await ip(["link", "add", "mig0", "netns", a.netns, "type", "veth", "peer", "name", "mig0", "netns", b.netns]);
    for (const h of HOSTS) {
      await ip(["-n", h.netns, "addr", "add", `${MIG_NET}.${h.index}/24`, "dev", "mig0"]);
      await ip(["-n", h.netns, "link", "set", "mig0", "up"]);
    }
  }
  // guest trunk: joins both hosts' bridges into one L2 segment, so a guest keeps its address on either host
  if (!(await linkExists(a.netns, "trunk0"))) {
    await ip(["link", "add", "trunk0", "netns", a.netns, "type", "veth", "peer", "name", "trunk0", "netns", b.netns]);
  }
  for (const h of HOSTS) {
    await ip(["-n", h.netns, "link", "set", "trunk0", "master", GUEST_NET.bridge]);
    await ip(["-n", h.netns, "link", "set", "trunk0", "up"]);
  }
}

export async function labUp(): Promise<void> {
  await mkdir(SHARED_DIR, { recursive: true });
  for (const h of HOSTS) await hostUp(h);
  await linksUp();
  await remoteUp();
}

export async function labDown(): Promise<void> {
  await remoteDown();
  const present = await netnsList();
  for (const h of HOSTS) {
    if (existsSync(socketPath(h))) {
      const v = new Virsh(uri(h));
      try {
        for (const d of lines(await v.exec(["list", "--name"]))) await v.exec(["destroy", "--", d]).catch(() => undefined);
        await v.exec(["net-destroy", "lab"]).catch(() => undefined);
      } catch {
        /* daemon already gone */
      }
    }
    const pid = pidAlive(path.join(runDir(h), "libvirtd.pid"));
    if (pid) process.kill(pid, "SIGTERM");
    if (present.includes(h.netns)) {
      // every process still in the namespace (dnsmasq, qemu, a stuck libvirtd) ends, by PID
      let round = 0;
      await poll(async () => {
        const pids = lines((await ip(["netns", "pids", h.netns])).stdout).map(Number);
        if (pids.length === 0) return { value: true };
        const signal = round++ < 20 ? "SIGTERM" : "SIGKILL"; // 4 s to end cleanly, then killed
        for (const p of pids) {
          try {
            process.kill(p, signal);
          } catch {
            /* gone */
          }
        }
        return { retry: `${pids.length} process(es) left` };
      }, { timeoutMs: 10_000, intervalMs: 200, what: `lab: ${h.name}: every process in ${h.netns} ended` }).catch((e) => {
        if (!(e instanceof PollTimeout)) throw e; // the namespace goes anyway; `lab down --check` reports what is left
      });
      await ip(["netns", "del", h.netns]); // takes its veths and bridge with it
    }
    await rm(runDir(h), { recursive: true, force: true });
    // the host's definitions and pools go too (a later `up` must not bring back domains or disks of a dead run);
    // only caches stay: libvirt's capability cache here, the guest image and the SSH key elsewhere
    for (const d of ["etc", "lib", "log"]) await rm(path.join(stateDir(h), d), { recursive: true, force: true });
  }
  await rm(SHARED_DIR, { recursive: true, force: true });
}

/** What a lab left behind after `down`: its namespaces, its run directory, and lab daemons or guests in any netns. */
export async function labLeaks(): Promise<string[]> {
  const leaks: string[] = [];
  for (const ns of await netnsList()) if (HOSTS.some((h) => h.netns === ns)) leaks.push(`netns ${ns}`);
  for (const h of HOSTS) for (const d of [runDir(h), path.join(stateDir(h), "lib"), path.join(stateDir(h), "etc")])
    if (existsSync(d)) leaks.push(`directory ${d}`);
  if (existsSync(SHARED_DIR)) leaks.push(`directory ${SHARED_DIR}`);
  leaks.push(...remoteLeaks());
  const { readdirSync, readlinkSync } = await import("node:fs");
  const rootNet = readlinkSync("/proc/self/ns/net");
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const comm = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
      if (!/^(libvirtd|qemu-system-x86|dnsmasq)/.test(comm)) continue;
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (readlinkSync(`/proc/${pid}/ns/net`) !== rootNet || cmdline.includes("vm-infra-lab")) leaks.push(`process ${pid} ${comm}`);
    } catch {
      /* exited while we looked */
    }
  }
  return leaks;
}

export interface HostStatus {
  name: string;
  netns: string;
  uri: string;
  up: boolean;
  domains: string[];
}

export async function labStatus(): Promise<HostStatus[]> {
  const out: HostStatus[] = [];
  for (const h of HOSTS) {
    const v = new Virsh(uri(h));
    let domains: string[] = [];
    let up = false;
    if (existsSync(socketPath(h))) {
      try {
        domains = lines(await v.exec(["list", "--all"]));
        up = true;
      } catch {
        up = false;
      }
    }
    out.push({ name: h.name, netns: h.netns, uri: uri(h), up, domains });
  }
  return out;
}

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  await poll(async () => ((await check()) ? { value: true } : undefined), { timeoutMs, intervalMs: 200, what: `lab: ${what}` });
}

