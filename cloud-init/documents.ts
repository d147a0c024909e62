// Pure: VM spec -> NoCloud documents (user-data, meta-data, network-config), rendered through a YAML library, and
// their content hash (which names the ISO and re-runs its build). No I/O.
import { createHash } from "node:crypto";
import YAML from "yaml";
import { VmSpec } from "../config/spec";

export interface CloudInitDocs {
  userData: string;
  metaData: string;
  networkConfig: string;
  /** sha256 over all three documents; the ISO's name and its build trigger. */
  hash: string;
}

/** Stable for the VM's whole life, migrations included: derived from the name only. */
export const instanceId = (vm: Pick<VmSpec, "name">) => `iid-vm-infra-${vm.name}`;

export function userData(vm: VmSpec): string {
  const base: Record<string, unknown> = {
    hostname: vm.name,
    preserve_hostname: false,
    ssh_pwauth: false,
    disable_root: true,
    users: [
      {
        name: vm.user,
        shell: "/bin/bash",
        sudo: "ALL=(ALL) NOPASSWD:ALL",
        lock_passwd: true,
        ssh_authorized_keys: vm.sshKeys,
      },
    ],
  };
  if (vm.packages.length > 0) base.packages = vm.packages;
  const extra = vm.extraUserData ? (YAML.parse(vm.extraUserData) as unknown) : undefined;
  if (extra !== undefined && extra !== null && (typeof extra !== "object" || Array.isArray(extra)))
    throw new Error(`vm ${vm.name}: extraUserData must be a YAML mapping`);
  const doc = { ...base, ...(extra as Record<string, unknown> | undefined) };
  return `#cloud-config\n${YAML.stringify(doc)}`;
}

export function metaData(vm: VmSpec): string {
  return YAML.stringify({ "instance-id": instanceId(vm), "local-hostname": vm.name });
}

export function networkConfig(vm: VmSpec): string {
  const eth: Record<string, unknown> = { match: { macaddress: vm.mac }, "set-name": "eth0" };
  if (vm.address) {
    eth.dhcp4 = false;
    eth.addresses = [vm.address.cidr];
    if (vm.address.gateway) eth.routes = [{ to: "default", via: vm.address.gateway }];
    if (vm.address.dns) eth.nameservers = { addresses: vm.address.dns };
  } else {
    eth.dhcp4 = true;
  }
  return YAML.stringify({ version: 2, ethernets: { eth0: eth } });
}

export function cloudInitDocs(vm: VmSpec): CloudInitDocs {
  const u = userData(vm);
  const m = metaData(vm);
  const n = networkConfig(vm);
  const hash = createHash("sha256").update(JSON.stringify([u, m, n])).digest("hex");
  return { userData: u, metaData: m, networkConfig: n, hash };
}
