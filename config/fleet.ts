// Fleet rules over the whole spec, pure: the waves `migration.after` declares (references, cycles, the order VMs are
// built in) and where a drain sends the VMs of a host marked `drain`. parseSpec applies both, so everything after it
// (resolve, the components, the policy pack) sees each VM on the host it will run on.
import { DOMAIN_KEYS, type HostSpec, type VmSpec } from "./spec";

/** Problems in the `after` lists: unknown names, a VM waiting for itself, cycles. */
export function afterProblems(vms: Pick<VmSpec, "name" | "migration">[], at: (i: number) => string): string[] {
  const names = new Set(vms.map((v) => v.name));
  const p: string[] = [];
  vms.forEach((v, i) => {
    for (const d of v.migration.after ?? []) {
      if (d === v.name) p.push(`${at(i)}.migration.after: a VM cannot wait for itself`);
      else if (!names.has(d)) p.push(`${at(i)}.migration.after: unknown VM ${JSON.stringify(d)}; known: ${[...names].join(", ")}`);
    }
  });
  if (p.length) return p;
  const cycle = findCycle(vms);
  return cycle ? [`vms: migration.after makes a cycle (${cycle.join(" -> ")}): no VM of it could ever move first`] : [];
}

function findCycle(vms: Pick<VmSpec, "name" | "migration">[]): string[] | undefined {
  const deps = new Map(vms.map((v) => [v.name, v.migration.after ?? []]));
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (n: string): string[] | undefined => {
    if (state.get(n) === "done") return undefined;
    if (state.get(n) === "open") return [...path.slice(path.indexOf(n)), n];
    state.set(n, "open");
    path.push(n);
    for (const d of deps.get(n) ?? []) {
      const c = visit(d);
      if (c) return c;
    }
    path.pop();
    state.set(n, "done");
    return undefined;
  };
  for (const v of vms) {
    const c = visit(v.name);
    if (c) return c;
  }
  return undefined;
}

/**
 * The order VMs are built in: each after the VMs it waits for, otherwise as declared (the `after` lists must be
 * valid: afterProblems). Its wave: 1 for a VM that waits for none, else one more than the latest it waits for.
 */
export function waves<T extends { name: string; migration: { after?: string[] } }>(vms: T[]): { vm: T; wave: number }[] {
  const byName = new Map(vms.map((v) => [v.name, v]));
  const wave = new Map<string, number>();
  const out: { vm: T; wave: number }[] = [];
  const place = (v: T): number => {
    const known = wave.get(v.name);
    if (known !== undefined) return known;
    const w = 1 + Math.max(0, ...(v.migration.after ?? []).map((d) => place(byName.get(d)!)));
    wave.set(v.name, w);
    out.push({ vm: v, wave: w });
    return w;
  };
  vms.forEach(place);
  return out;
}

export interface DrainChoice { vm: string; from: string; to: string }

/**
 * Where the VMs declared on draining hosts go. Non-draining VMs stay where they are declared; each drained VM (largest
 * memory first, then by name) goes to the least loaded host (memory of the VMs placed there) that can take it:
 * not draining, the same domain type and network (a move cannot also redefine the domain), its shared pool when its
 * storage is shared, room within a declared capacity, and no VM of its anti-affinity group. A pure function of the
 * config: the same config always drains the same way, so a second up changes nothing. Each VM that fits nowhere
 * is a problem, with the reason per host.
 */
export function drainPlan(hosts: Record<string, HostSpec>, vms: VmSpec[]): { choices: DrainChoice[]; problems: string[] } {
  const draining = (h: string) => !!hosts[h]?.drain;
  const placed = vms.filter((v) => !draining(v.host)).map((v) => ({ name: v.name, host: v.host, memoryMiB: v.memoryMiB, vcpus: v.vcpus, group: v.group }));
  const toMove = vms.filter((v) => draining(v.host)).sort((a, b) => b.memoryMiB - a.memoryMiB || a.name.localeCompare(b.name));
  const choices: DrainChoice[] = [];
  const problems: string[] = [];
  const used = (h: string) => placed.filter((p) => p.host === h).reduce((s, p) => ({ mem: s.mem + p.memoryMiB, cpu: s.cpu + p.vcpus }), { mem: 0, cpu: 0 });
  for (const v of toMove) {
    const from = hosts[v.host];
    const why: string[] = [];
    const fits = Object.values(hosts).sort((a, b) => a.name.localeCompare(b.name)).filter((h) => {
      if (h.name === from.name) return false;
      if (h.drain) { why.push(`${h.name}: draining too`); return false; }
      const differs = DOMAIN_KEYS.host.filter((k) => h[k] !== from[k]);
      if (differs.length) { why.push(`${h.name}: another ${differs.join(", ")} (${differs.map((k) => `${String(h[k])} instead of ${String(from[k])}`).join(", ")})`); return false; }
      if (v.storage === "shared" && h.sharedPool !== from.sharedPool) { why.push(`${h.name}: does not share pool ${from.sharedPool}`); return false; }
      const u = used(h.name);
      if (h.capacity && u.mem + v.memoryMiB > h.capacity.memoryMiB) {
        why.push(`${h.name}: ${h.capacity.memoryMiB - u.mem} MiB of its ${h.capacity.memoryMiB} MiB capacity free`);
        return false;
      }
      if (h.capacity && u.cpu + v.vcpus > h.capacity.vcpus) { why.push(`${h.name}: ${h.capacity.vcpus - u.cpu} of its ${h.capacity.vcpus} vCPUs free`); return false; }
      const mate = v.group && placed.find((p) => p.host === h.name && p.group === v.group);
      if (mate) { why.push(`${h.name}: runs ${mate.name} of group ${v.group}`); return false; }
      return true;
    });
    const to = fits.sort((a, b) => used(a.name).mem - used(b.name).mem || a.name.localeCompare(b.name))[0];
    if (!to) {
      problems.push(`hosts.${JSON.stringify(from.name)}.drain: no host can take vm ${v.name} (${v.memoryMiB} MiB, ${v.vcpus} vCPU${v.vcpus > 1 ? "s" : ""}` +
        `${v.group ? `, group ${v.group}` : ""}): ${why.length ? why.join("; ") : "there is no other host"}. Nothing was moved; add capacity or a host, or drain later`);
      continue;
    }
    placed.push({ name: v.name, host: to.name, memoryMiB: v.memoryMiB, vcpus: v.vcpus, group: v.group });
    choices.push({ vm: v.name, from: from.name, to: to.name });
  }
  return { choices: choices.sort((a, b) => a.vm.localeCompare(b.vm)), problems };
}
