// Where the lab lives and what its hosts look like. Product code never imports lab/; tests and scripts do.
import { existsSync } from "node:fs";
import * as path from "node:path";

/** The checkout's root, whether this runs compiled (dist/lab) or from source under ts-jest (lab/). */
export const PROJECT_ROOT = (() => {
  for (let d = __dirname; ; d = path.dirname(d)) {
    if (existsSync(path.join(d, "package.json")) && existsSync(path.join(d, "lab", "host-init.sh"))) return d;
    if (path.dirname(d) === d) throw new Error(`vm-infra: no checkout above ${__dirname}`);
  }
})();

export const LAB_DIR = process.env.VM_INFRA_LAB_DIR ?? "/var/tmp/vm-infra-lab";
export const RUN_DIR = process.env.VM_INFRA_LAB_RUN ?? "/run/vm-infra-lab";
export const SHARED_DIR = path.join(LAB_DIR, "shared");

export interface LabHost {
  name: string;
  netns: string;
  index: number; // 1-based: bridge address .index, migration address 192.168.250.index
  dhcp: boolean;
}

export const HOSTS: readonly LabHost[] = [
  { name: "hv-a", netns: "vmi-hv-a", index: 1, dhcp: true },
  { name: "hv-b", netns: "vmi-hv-b", index: 2, dhcp: false },
];

export const GUEST_NET = { bridge: "virbr-lab", prefix: "192.168.100", dhcpStart: 10, dhcpEnd: 200 };
export const MIG_NET = "192.168.250";

export const stateDir = (h: LabHost) => path.join(LAB_DIR, "hosts", h.name);
export const runDir = (h: LabHost) => path.join(RUN_DIR, h.name);
export const socketPath = (h: LabHost) => path.join(runDir(h), "libvirt-sock");
export const uri = (h: LabHost) => `qemu+unix:///system?socket=${socketPath(h)}`;
/** The URI the other host's libvirtd uses to reach this one for peer-to-peer migration. */
export const migrationUri = (h: LabHost) => `qemu+tcp://${MIG_NET}.${h.index}/system`;

/**
 * The remote topology (beside the local one, up at the same time): an operator namespace joined to every host by a
 * management network, each host running its own sshd there. Clients in the operator namespace reach libvirt over
 * qemu+libssh with the hosts' keys checked, and guests only through their hypervisor (no route to the guest network).
 */
export const OPS = { netns: "vmi-ops", bridge: "mgmt", prefix: "192.168.251", address: "192.168.251.254" };
export const mgmtAddress = (h: LabHost) => `${OPS.prefix}.${h.index}`;
/** Generated per lab (removed by `lab down`): the operator's key, the hosts' known_hosts, each host's sshd files. */
export const REMOTE_DIR = path.join(LAB_DIR, "remote");
export const OPS_KEY = path.join(REMOTE_DIR, "operator_ed25519");
export const KNOWN_HOSTS = path.join(REMOTE_DIR, "known_hosts");
export const sshdDir = (h: LabHost) => path.join(REMOTE_DIR, h.name);
/**
 * A host as the operator reaches it: libvirt over libssh2, host key verified against the lab's known_hosts. (libvirt
 * 9.0's libssh client, qemu+libssh, crashed with SIGSEGV in 6 of about 40 `dumpxml` calls of running domains on the
 * lab; libssh2 in none.)
 */
export const sshUri = (h: LabHost) =>
  `qemu+libssh2://root@${mgmtAddress(h)}/system?keyfile=${OPS_KEY}&known_hosts=${KNOWN_HOSTS}&known_hosts_verify=normal&sshauth=privkey`;
