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
  /**
   * sha256 over the documents as they would be without the host key: what restarts the VM when it changes. The key is
   * installed once at first boot (cloud-init's ssh module runs once per instance), so a seed that differs only by it
   * has nothing new for a running guest, and VMs made before keys were pinned are not restarted to receive one.
   */
  seedHash: string;
}

/** The VM's SSH host key (providers/hostKey.ts), handed to cloud-init. */
export interface GuestHostKey {
  publicKey: string;
  privateKey: string;
}

/** cloud-config keys that would replace or add to the pinned host key: extraUserData may not set them. */
export const HOST_KEY_SETTINGS = ["ssh_keys", "ssh_genkeytypes", "ssh_deletekeys"] as const;

/**
 * cloud-init reads YAML 1.1 (PyYAML): there `52:54:00:46:27:37` is a base-60 integer and `on` a boolean. Every document
 * is written, and extraUserData read, with 1.1's rules, so a MAC of digits only stays a string (it was an integer, and
 * such a guest never got its network: "Not all expected physical devices present") and a value means to cloud-init
 * what it meant to its author.
 */
const YAML_11 = { version: "1.1" } as const;
const dump = (doc: unknown) => YAML.stringify(doc, YAML_11);

/** Stable for the VM's whole life, migrations included: derived from the name only. */
export const instanceId = (vm: Pick<VmSpec, "name">) => `iid-vm-infra-${vm.name}`;

export function userData(vm: VmSpec, hostKey?: GuestHostKey): string {
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
  // exactly this key and no other: the ones the image may carry are deleted, none is generated
  if (hostKey) Object.assign(base, { ssh_keys: { ed25519_private: hostKey.privateKey, ed25519_public: hostKey.publicKey }, ssh_genkeytypes: [], ssh_deletekeys: true });
  if (vm.packages.length > 0) base.packages = vm.packages;
  const extra = vm.extraUserData ? (YAML.parse(vm.extraUserData, YAML_11) as unknown) : undefined;
  if (extra !== undefined && extra !== null && (typeof extra !== "object" || Array.isArray(extra)))
    throw new Error(`vm ${vm.name}: extraUserData must be a YAML mapping`);
  const pinning = HOST_KEY_SETTINGS.filter((k) => extra && Object.prototype.hasOwnProperty.call(extra, k));
  if (pinning.length > 0)
    throw new Error(`vm ${vm.name}: extraUserData sets ${pinning.join(", ")}: vm-infra makes each VM's SSH host key and accepts only that one; remove ${pinning.length > 1 ? "them" : "it"}`);
  const doc = { ...base, ...(extra as Record<string, unknown> | undefined) };
  return `#cloud-config\n${dump(doc)}`;
}

export function metaData(vm: VmSpec): string {
  return dump({ "instance-id": instanceId(vm), "local-hostname": vm.name });
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
  return dump({ version: 2, ethernets: { eth0: eth } });
}

const sha = (docs: string[]) => createHash("sha256").update(JSON.stringify(docs)).digest("hex");

export function cloudInitDocs(vm: VmSpec, hostKey?: GuestHostKey): CloudInitDocs {
  const u = userData(vm, hostKey);
  const m = metaData(vm);
  const n = networkConfig(vm);
  return { userData: u, metaData: m, networkConfig: n, hash: sha([u, m, n]), seedHash: hostKey ? sha([userData(vm), m, n]) : sha([u, m, n]) };
}
