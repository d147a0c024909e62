// The policy pack's rules, as pure functions over what a VM's placement resource declares (its inputs, as the
// engine hands them to CrossGuard). policy/index.ts wires them into a PolicyPack; unit tests call them directly.
// Each rule answers with the messages a reviewer reads: the VM, the rule, and what to change.

/** The placement's inputs that the rules read (providers/placement/rules.ts PlacementInputs, as plain data). */
export interface PlacementView {
  name: string;
  hostName: string;
  vcpus: number;
  memoryMiB: number;
  storage: "local" | "shared";
  domainType: "kvm" | "qemu";
  migration: { mode: string; bandwidthMiBs: number; maxDowntimeMs: number; postcopy: boolean };
  tags?: string[];
  group?: string;
  knownHosts: Record<string, { capacity?: { memoryMiB: number; vcpus: number } }>;
  /** Set by the provider's check when this update moves the VM: the host it leaves. */
  moveFrom?: string;
  /** The draining host the VM is declared on, when a drain places it (hosts.<h>.drain). */
  drainedFrom?: string;
}

/**
 * The pack's settings (`--policy-pack-config`, per policy). Defaults and their anchors: QEMU's own max downtime is
 * 300 ms and oVirt's default for a migration is 500 ms, the ceiling here; at most 5 migrations in one update is
 * KubeVirt's parallelMigrationsPerCluster (an update moving more would queue moves anyway, and a bad change should
 * not reach more VMs than one round of moves); the size ceilings are far above any VM in this project's examples
 * (they catch an extra digit, not a budget: set your own); "db" and "stateful" are the tags the README uses.
 */
export const POLICY_DEFAULTS = {
  statefulTags: ["db", "stateful"],
  maxDowntimeMs: 500,
  maxMemoryMiB: 131_072,
  maxVcpus: 32,
  maxMigrations: 5,
  productionStacks: "^prod(uction)?([-_.].*)?$",
};

const vmRef = (v: PlacementView) => `vms[${v.name}]`;

export function postcopyForStateful(v: PlacementView, statefulTags: string[]): string[] {
  const hit = (v.tags ?? []).filter((t) => statefulTags.includes(t));
  if (!v.migration?.postcopy || hit.length === 0) return [];
  return [`vm ${v.name}: post-copy is not allowed for a stateful VM (tagged ${hit.join(", ")}): a network failure after the switch to ` +
    `post-copy leaves no complete copy on either host. Set ${vmRef(v)}.migration.postcopy to false`];
}

export function copiedMoveBandwidth(v: PlacementView): string[] {
  if (v.moveFrom === undefined || v.storage !== "local" || (v.migration?.bandwidthMiBs ?? 0) > 0) return [];
  return [`vm ${v.name}: its move ${v.moveFrom} -> ${v.hostName} copies its disks with no bandwidth cap, which can fill the link ` +
    `the hosts share. Set ${vmRef(v)}.migration.bandwidthMiBs (MiB/s)`];
}

export function downtimeCeiling(v: PlacementView, maxDowntimeMs: number): string[] {
  const d = v.migration?.maxDowntimeMs;
  if (d === undefined || d <= maxDowntimeMs) return [];
  return [`vm ${v.name}: migration.maxDowntimeMs ${d} is above the ceiling of ${maxDowntimeMs} ms. Lower ${vmRef(v)}.migration.maxDowntimeMs`];
}

export function sizeCeiling(v: PlacementView, c: { maxMemoryMiB: number; maxVcpus: number }): string[] {
  const out: string[] = [];
  if (v.memoryMiB > c.maxMemoryMiB) out.push(`vm ${v.name}: memoryMiB ${v.memoryMiB} is above the ceiling of ${c.maxMemoryMiB} MiB`);
  if (v.vcpus > c.maxVcpus) out.push(`vm ${v.name}: vcpus ${v.vcpus} is above the ceiling of ${c.maxVcpus}`);
  return out;
}

export function productionNeedsKvm(v: PlacementView, stack: string, pattern: string): string[] {
  if (v.domainType !== "qemu" || !new RegExp(pattern).test(stack)) return [];
  return [`vm ${v.name}: stack ${stack} is a production stack (matches ${pattern}) and host ${v.hostName} runs it with domainType qemu ` +
    `(emulation, no KVM). Set hosts.${v.hostName}.domainType to kvm`];
}

/** Per host: the VMs placed there (after this update) add up to no more than its declared capacity. */
export function hostCapacity(vms: PlacementView[]): string[] {
  const capacity = (h: string) => vms.map((v) => v.knownHosts?.[h]?.capacity).find((c) => c !== undefined);
  const out: string[] = [];
  for (const h of [...new Set(vms.map((v) => v.hostName))].sort()) {
    const cap = capacity(h);
    if (!cap) continue;
    const on = vms.filter((v) => v.hostName === h).sort((a, b) => a.name.localeCompare(b.name));
    const mem = on.reduce((s, v) => s + v.memoryMiB, 0);
    const cpus = on.reduce((s, v) => s + v.vcpus, 0);
    const names = on.map((v) => v.name).join(", ");
    if (mem > cap.memoryMiB) out.push(`host ${h}: its VMs (${names}) need ${mem} MiB of memory, above its capacity of ${cap.memoryMiB} MiB`);
    if (cpus > cap.vcpus) out.push(`host ${h}: its VMs (${names}) need ${cpus} vCPUs, above its capacity of ${cap.vcpus}`);
  }
  return out;
}

/** VMs of one group never share a host. */
export function antiAffinity(vms: PlacementView[]): string[] {
  const out: string[] = [];
  const byKey = new Map<string, string[]>();
  for (const v of vms) if (v.group) byKey.set(`${v.group}\u0000${v.hostName}`, [...byKey.get(`${v.group}\u0000${v.hostName}`) ?? [], v.name]);
  for (const [key, names] of [...byKey].sort(([a], [b]) => a.localeCompare(b))) {
    if (names.length < 2) continue;
    const [group, host] = key.split("\u0000");
    out.push(`group ${group}: ${names.sort().join(", ")} would all run on ${host}; VMs of one group must be on different hosts`);
  }
  return out;
}

/**
 * At most `max` VMs change host in one update because the config says so. A drain's moves do not count: a host in
 * maintenance must be emptied whatever it holds, and the move limits (migrationLimits) pace them.
 */
export function blastRadius(vms: PlacementView[], max: number): string[] {
  const moving = vms.filter((v) => v.moveFrom !== undefined && v.drainedFrom === undefined).sort((a, b) => a.name.localeCompare(b.name));
  if (moving.length <= max) return [];
  return [`this update moves ${moving.length} VMs (${moving.map((v) => `${v.name} ${v.moveFrom} -> ${v.hostName}`).join(", ")}), ` +
    `above the limit of ${max} per update: split it into several updates`];
}

/** The stack's name from a resource URN (urn:pulumi:<stack>::<project>::<type>::<name>). */
export const stackOfUrn = (urn: string) => urn.split("::")[0].replace(/^urn:pulumi:/, "");
