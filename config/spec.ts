// Stack config -> a validated, typed spec. Every rule about names, keys, sizes and references lives here, and this is
// the only place that turns user input into trusted values. Pure: no I/O (ssh-keygen checks run in host/ before use).
import { createHash } from "node:crypto";
import { z } from "zod";
import { afterProblems, drainPlan, type DrainChoice } from "./fleet";
import { addressSchema, hostSchema, imageSchema, limitsSchema, migrationSchema, NAME_RE, Raw, readinessSchema, vmSchema } from "./schema";
import { jumpHostOf } from "./uri";

export { LIMIT_DEFAULTS, LIMITS, MIGRATION_DEFAULTS, NAME_RE, VM_DEFAULTS } from "./schema";

/** A configured host (options: config/schema.ts hostSchema). */
export type HostSpec = Omit<z.output<typeof hostSchema>, "network"> & { name: string; network: string };
export type DomainType = HostSpec["domainType"];
/** The base image (options: config/schema.ts imageSchema). */
export type ImageSpec = z.output<typeof imageSchema>;
export type StaticAddress = z.output<typeof addressSchema>;
/** How a change of `host` moves the VM (options and defaults with their anchors: config/schema.ts migrationSchema). */
export type MigrationSpec = z.output<typeof migrationSchema>;
export type MigrationMode = MigrationSpec["mode"];
/**
 * A VM (options: config/schema.ts vmSchema), its MAC filled in; `host` is where it runs after this update: the host
 * declared, or where a drain of that host (`drainedFrom`) sends it (config/fleet.ts).
 */
export type VmSpec = Omit<z.output<typeof vmSchema>, "mac"> & { mac: string; drainedFrom?: string };
/** How many moves run at once (options and anchors: config/schema.ts limitsSchema). */
export type MigrationLimits = z.output<typeof limitsSchema>;
export type ReadinessSpec = z.output<typeof readinessSchema>;

/**
 * A VM's libvirt domain properties, each declared once above (VmSpec, HostSpec, ImageSpec) and named here: a new domain
 * property is added to its spec type, its parser below, this list and the domain builder (libvirt/domain.ts), nothing
 * else. A change of one redefines the domain (a restart); a move carries them as they are.
 */
export const DOMAIN_KEYS = {
  vm: ["vcpus", "memoryMiB", "mac"],
  host: ["domainType", "network", "bridge"],
  image: ["kernel", "initrd", "cmdline"],
} as const satisfies { vm: readonly (keyof VmSpec)[]; host: readonly (keyof HostSpec)[]; image: readonly (keyof ImageSpec)[] };
export const DOMAIN_SPEC_KEYS = [...DOMAIN_KEYS.vm, ...DOMAIN_KEYS.host, ...DOMAIN_KEYS.image] as const;
export type DomainSpec = Pick<VmSpec, (typeof DOMAIN_KEYS.vm)[number]> & Pick<HostSpec, (typeof DOMAIN_KEYS.host)[number]> &
  Pick<ImageSpec, (typeof DOMAIN_KEYS.image)[number]>;

export interface Spec {
  hosts: Record<string, HostSpec>;
  image: ImageSpec;
  vms: VmSpec[];
  readiness: ReadinessSpec;
  limits: MigrationLimits;
  /** The moves the hosts marked `drain` cause (each VM's host already says where it goes). */
  drain: DrainChoice[];
}

/** A static address without its prefix length. */
export const ipOf = (cidr: string) => cidr.split("/")[0];

export class SpecError extends Error {
  override readonly name = "SpecError";
  constructor(readonly problems: string[]) {
    super(`invalid vm-infra config:\n  - ${problems.join("\n  - ")}`);
  }
}

/** Deterministic locally administered MAC (QEMU's 52:54:00 prefix) from the VM name. */
export function macFor(name: string): string {
  const h = createHash("sha256").update(`vm-infra:${name}`).digest();
  return `52:54:00:${[h[0], h[1], h[2]].map((b) => b.toString(16).padStart(2, "0")).join(":")}`;
}

/** The index of the VM named `name` in the raw list, for messages. */
const indexOf = (raw: { vms?: unknown }, name: string) => (Array.isArray(raw.vms) ? raw.vms.findIndex((v) => isObj(v) && v.name === name) : -1);

const isObj = (v: unknown): v is Raw => typeof v === "object" && v !== null && !Array.isArray(v);

/** Where a problem is, as the user wrote it: `hosts."hv-a".uri`, `vms[0] ("web-1").migration.mode`. */
function where(path: readonly PropertyKey[], raw: { vms?: unknown }): string {
  let out = "";
  path.forEach((k, i) => {
    if (i === 1 && path[0] === "hosts") out += `.${JSON.stringify(String(k))}`;
    else if (typeof k === "number") {
      out += `[${k}]`;
      const v = path[0] === "vms" && i === 1 && Array.isArray(raw.vms) ? raw.vms[k] : undefined;
      if (isObj(v)) out += ` (${JSON.stringify(typeof v.name === "string" ? v.name : "")})`;
    } else out += out ? `.${String(k)}` : String(k);
  });
  return out;
}

function section<T>(schema: z.ZodType<T>, value: unknown, path: PropertyKey[], raw: { vms?: unknown }, p: string[]): T | undefined {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  for (const iss of r.error.issues) {
    const at = [...path, ...iss.path];
    if (iss.code === "unrecognized_keys") for (const k of iss.keys) p.push(`${where([...at, k], raw)}: unknown option (${iss.message})`);
    else p.push(`${where(at, raw)}: ${iss.message}`);
  }
  return undefined;
}

export function parseSpec(raw: { hosts?: unknown; image?: unknown; vms?: unknown; readiness?: unknown; migrationLimits?: unknown }): Spec {
  const p: string[] = [];
  const hosts: Record<string, HostSpec> = {};
  if (!isObj(raw.hosts) || Object.keys(raw.hosts).length === 0) p.push("hosts: a map of host name -> {uri, pool, network} is required");
  else
    for (const [name, h] of Object.entries(raw.hosts)) {
      const at = `hosts.${JSON.stringify(name)}`;
      if (!NAME_RE.test(name)) p.push(`${at}: host names must match ${NAME_RE.source}`);
      const host = section(hostSchema, h, ["hosts", name], raw, p);
      if (host && host.bridge !== undefined && host.network !== undefined) p.push(`${at}: give network or bridge, not both`);
      if (host?.guestJump && host.guestNetns !== undefined) p.push(`${at}: give guestNetns or guestJump, not both`);
      if (host?.guestJump && typeof jumpHostOf(host.uri) === "string") p.push(`${at}.guestJump: ${jumpHostOf(host.uri)}`);
      if (host) hosts[name] = { ...host, name, network: host.network ?? "default" };
    }

  if (!isObj(raw.image)) p.push("image: {volume, source?, sha256?} is required");
  const image = isObj(raw.image) ? section(imageSchema, raw.image, ["image"], raw, p) : undefined;
  if (image?.source !== undefined && image.sha256 === undefined) p.push("image.sha256: the source's sha256 (64 hex digits) is required with image.source");
  if (image && (image.kernel === undefined) !== (image.initrd === undefined)) p.push("image: kernel and initrd go together");

  const readiness = section(readinessSchema, raw.readiness ?? {}, ["readiness"], raw, p);
  const limits = section(limitsSchema, raw.migrationLimits ?? {}, ["migrationLimits"], raw, p);

  const vms: VmSpec[] = [];
  if (!Array.isArray(raw.vms)) p.push("vms: a list of VMs is required");
  else
    raw.vms.forEach((v, i) => {
      const vm = section(vmSchema, v, ["vms", i], raw, p);
      if (!vm) return;
      const at = where(["vms", i], raw);
      if (!hosts[vm.host] && !(isObj(raw.hosts) && vm.host in raw.hosts))
        p.push(`${at}.host: unknown host ${JSON.stringify(vm.host)}; known: ${Object.keys(isObj(raw.hosts) ? raw.hosts : {}).join(", ")}`);
      if (vm.sshKeys.length === 0) p.push(`${at}.sshKeys: at least one SSH public key is required (here or in vm-infra:sshKeys)`);
      if (vm.storage === "shared" && hosts[vm.host] && !hosts[vm.host].sharedPool) p.push(`${at}.storage: "shared" needs hosts.${vm.host}.sharedPool`);
      if (vm.migration.postcopy && vm.migration.mode !== "live") p.push(`${at}.migration.postcopy: only with mode "live"`);
      vms.push({ ...vm, mac: vm.mac ?? macFor(vm.name) });
    });

  for (const [what, key] of [["name", (v: VmSpec) => v.name], ["mac", (v: VmSpec) => v.mac],
    ["address", (v: VmSpec) => v.address && ipOf(v.address.cidr)]] as const) {
    const seen = new Set<string>();
    for (const v of vms) {
      const k = key(v);
      if (k === undefined || k === "") continue;
      if (seen.has(k)) p.push(`vms: duplicate ${what} ${JSON.stringify(k)}`);
      seen.add(k);
    }
  }
  if (p.length === 0) p.push(...afterProblems(vms, (i) => where(["vms", indexOf(raw, vms[i].name)], raw)));
  const drain = p.length === 0 ? drainPlan(hosts, vms) : { choices: [], problems: [] };
  p.push(...drain.problems);
  if (p.length > 0 || !image || !readiness || !limits) throw new SpecError(p);
  const moved = new Map(drain.choices.map((c) => [c.vm, c]));
  return {
    hosts, image, readiness, limits, drain: drain.choices,
    vms: vms.map((v) => (moved.has(v.name) ? { ...v, host: moved.get(v.name)!.to, drainedFrom: v.host } : v)),
  };
}
