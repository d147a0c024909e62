// Stack config -> a validated, typed spec. Every rule about names, keys, sizes and references lives here, and this is
// the only place that turns user input into trusted values. Pure: no I/O (ssh-keygen checks run in host/ before use).
import { createHash } from "node:crypto";

export type DomainType = "kvm" | "qemu";

export interface HostSpec {
  name: string;
  /** libvirt URI, e.g. qemu+ssh://root@hv1/system or qemu+unix:///system?socket=... */
  uri: string;
  /** Storage pool that holds the base image, overlays and cloud-init ISOs. Default "default". */
  pool: string;
  /** libvirt network the VMs' NICs attach to. Default "default". */
  network: string;
  /** Or a host bridge (e.g. br0) instead of a libvirt network: the NIC is `<interface type='bridge'>`. */
  bridge?: string;
  /** Domain type: kvm (default) on real hosts; qemu (TCG) where KVM cannot run guests, like the lab. */
  domainType: DomainType;
  /** Run guest-facing commands (ssh) inside this network namespace: how the lab reaches its guests. */
  guestNetns?: string;
  /**
   * Peer-to-peer migration: the URI the *other* hosts' libvirtd uses to reach this one (e.g. qemu+tls://hv2/system).
   * With it, the source libvirtd drives a migration to this host by itself, so it completes or aborts cleanly even if
   * vm-infra dies half-way. Without it, vm-infra drives a direct migration over its own connections to both hosts.
   */
  migrationUri?: string;
  /**
   * A pool whose storage all hosts naming the same pool here share (NFS, a cluster filesystem). VMs with
   * storage: "shared" keep their disks there, so moving them copies no disk.
   */
  sharedPool?: string;
}

export interface ImageSpec {
  /** Volume name of the base image in each host's pool. */
  volume: string;
  /** Local qcow2 uploaded to each host's pool once; omit when the volume is already there. */
  source?: string;
  /** sha256 of the source file, checked before upload. */
  sha256?: string;
  /** Direct kernel boot (optional): paths on the hosts. */
  kernel?: string;
  initrd?: string;
  cmdline?: string;
}

export interface StaticAddress {
  /** e.g. 192.168.100.50/24 */
  cidr: string;
  gateway?: string;
  dns?: string[];
}

export interface VmSpec {
  name: string;
  host: string;
  vcpus: number;
  memoryMiB: number;
  diskGiB: number;
  user: string;
  sshKeys: string[];
  packages: string[];
  /** Extra cloud-config (YAML mapping as text), merged over the generated one. */
  extraUserData?: string;
  mac: string;
  address?: StaticAddress;
  /** Where the disks live: the host's own pool ("local", default) or its sharedPool ("shared"). */
  storage: "local" | "shared";
  migration: MigrationSpec;
  /**
   * Explicit adoption: the UUID of a domain of this name, made by vm-infra (another stack, or a stack whose state was
   * lost), that this stack takes over as it is. Without it, a domain of that name on the host is refused.
   */
  adopt?: string;
}

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

export type MigrationMode = "live" | "paused" | "offline";

/** How a change of `host` moves the VM. Defaults and their anchors are in MIGRATION_DEFAULTS. */
export interface MigrationSpec {
  mode: MigrationMode;
  /** MiB/s cap for the transfer; 0 = libvirt's default (no cap). */
  bandwidthMiBs: number;
  maxDowntimeMs: number;
  autoConverge: boolean;
  /** Opt-in: switch to post-copy after the first pre-copy pass (a network failure then loses the VM). */
  postcopy: boolean;
  /** Abort when the remaining data has not shrunk for this long. */
  progressTimeoutSeconds: number;
  /** Abort when the whole transfer takes longer than this per GiB of RAM (plus disk when copying). */
  completionSecondsPerGiB: number;
  /** Each health check on the target is retried until this deadline. */
  healthTimeoutSeconds: number;
  /** Optional application check after the move: GET http://<guest address>:<port><path> answers 2xx. */
  httpCheck?: { port: number; path: string };
}

/**
 * Anchors: QEMU's default max downtime is 300 ms; KubeVirt aborts a migration that made no progress for 150 s and
 * allows 150 s per GiB to complete (its completionTimeoutPerGiB); both off by default there for auto-converge and
 * post-copy, as here. Live is the default mode: the VM keeps running and the switchover costs the downtime only.
 */
export const MIGRATION_DEFAULTS: MigrationSpec = {
  mode: "live",
  bandwidthMiBs: 0,
  maxDowntimeMs: 300,
  autoConverge: false,
  postcopy: false,
  progressTimeoutSeconds: 150,
  completionSecondsPerGiB: 150,
  healthTimeoutSeconds: 120,
};

export interface ReadinessSpec {
  /** Private key used for the readiness SSH login (must match one of the VM's keys). */
  privateKeyPath: string;
  /** Upper bound for address + SSH + cloud-init done, seconds. Default 600. */
  timeoutSeconds: number;
}

export interface Spec {
  hosts: Record<string, HostSpec>;
  image: ImageSpec;
  vms: VmSpec[];
  readiness: ReadinessSpec;
}

/** A static address without its prefix length. */
export const ipOf = (cidr: string) => cidr.split("/")[0];

export const LIMITS = { minMemoryMiB: 256, maxMemoryMiB: 1 << 20, minDiskGiB: 3, maxDiskGiB: 16384, maxVcpus: 256 };
export const NAME_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
const USER_RE = /^[a-z_][a-z0-9_-]{0,31}$/;
const MAC_RE = /^52:54:00(:[0-9a-f]{2}){3}$/;
const KEY_RE = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\n\r]*)?$/;
const VOLUME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const CIDR_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;
const URI_RE = /^(qemu|test)(\+(unix|ssh|tcp|tls))?:\/\/[^\s]*$/;
const IP_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

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

type Raw = Record<string, unknown>;
const isObj = (v: unknown): v is Raw => typeof v === "object" && v !== null && !Array.isArray(v);

export function parseSpec(raw: { hosts?: unknown; image?: unknown; vms?: unknown; readiness?: unknown }): Spec {
  const p: string[] = [];
  const hosts: Record<string, HostSpec> = {};
  if (!isObj(raw.hosts) || Object.keys(raw.hosts).length === 0) p.push("hosts: a map of host name -> {uri, pool, network} is required");
  else
    for (const [name, h] of Object.entries(raw.hosts)) {
      const at = `hosts.${JSON.stringify(name)}`;
      if (!NAME_RE.test(name)) p.push(`${at}: host names must match ${NAME_RE.source}`);
      if (!isObj(h)) {
        p.push(`${at}: must be an object`);
        continue;
      }
      const uri = str(h.uri);
      if (!uri || !URI_RE.test(uri))
        p.push(`${at}.uri: a libvirt URI like qemu+ssh://root@hv1/system is required`);
      const pool = str(h.pool) ?? "default";
      const network = str(h.network) ?? "default";
      for (const [k, v] of [["pool", pool], ["network", network]] as const)
        if (!VOLUME_RE.test(v)) p.push(`${at}.${k}: ${JSON.stringify(v)} is not a valid libvirt object name`);
      const bridge = str(h.bridge);
      if (bridge !== undefined && !/^[A-Za-z0-9_.-]{1,15}$/.test(bridge)) p.push(`${at}.bridge: a Linux interface name (at most 15 of [A-Za-z0-9_.-])`);
      if (bridge !== undefined && h.network !== undefined) p.push(`${at}: give network or bridge, not both`);
      const domainType = (str(h.domainType) ?? "kvm") as DomainType;
      if (domainType !== "kvm" && domainType !== "qemu") p.push(`${at}.domainType: must be "kvm" or "qemu"`);
      const guestNetns = str(h.guestNetns);
      if (guestNetns !== undefined && !NAME_RE.test(guestNetns)) p.push(`${at}.guestNetns: must match ${NAME_RE.source}`);
      const migrationUri = str(h.migrationUri);
      if (migrationUri !== undefined && !URI_RE.test(migrationUri)) p.push(`${at}.migrationUri: a libvirt URI like qemu+tls://hv2/system`);
      const sharedPool = str(h.sharedPool);
      if (sharedPool !== undefined && !VOLUME_RE.test(sharedPool)) p.push(`${at}.sharedPool: ${JSON.stringify(sharedPool)} is not a valid pool name`);
      hosts[name] = { name, uri: uri ?? "", pool, network, bridge, domainType, guestNetns, migrationUri, sharedPool };
    }

  const img = isObj(raw.image) ? raw.image : {};
  if (!isObj(raw.image)) p.push("image: {volume, source?, sha256?} is required");
  const image: ImageSpec = {
    volume: str(img.volume) ?? "",
    source: str(img.source),
    sha256: str(img.sha256),
    kernel: str(img.kernel),
    initrd: str(img.initrd),
    cmdline: str(img.cmdline),
  };
  if (!VOLUME_RE.test(image.volume)) p.push(`image.volume: ${JSON.stringify(image.volume)} is not a valid volume name`);
  if (image.source !== undefined && !image.source.startsWith("/")) p.push("image.source: must be an absolute path");
  if (image.source !== undefined && !/^[0-9a-f]{64}$/.test(image.sha256 ?? ""))
    p.push("image.sha256: the source's sha256 (64 hex digits) is required with image.source");
  for (const k of ["kernel", "initrd"] as const)
    if (image[k] !== undefined && !image[k]!.startsWith("/")) p.push(`image.${k}: must be an absolute path`);
  if ((image.kernel === undefined) !== (image.initrd === undefined)) p.push("image: kernel and initrd go together");

  const r = isObj(raw.readiness) ? raw.readiness : {};
  const readiness: ReadinessSpec = {
    privateKeyPath: str(r.privateKeyPath) ?? "",
    timeoutSeconds: num(r.timeoutSeconds) ?? 600,
  };
  if (!readiness.privateKeyPath.startsWith("/")) p.push("readiness.privateKeyPath: an absolute path to the SSH private key is required");
  if (!(readiness.timeoutSeconds >= 10 && readiness.timeoutSeconds <= 7200)) p.push("readiness.timeoutSeconds: between 10 and 7200");

  const vms: VmSpec[] = [];
  if (!Array.isArray(raw.vms)) p.push("vms: a list of VMs is required");
  else
    raw.vms.forEach((v, i) => {
      const at = `vms[${i}]`;
      if (!isObj(v)) return p.push(`${at}: must be an object`);
      const name = str(v.name) ?? "";
      const where = `${at} (${JSON.stringify(name)})`;
      if (!NAME_RE.test(name))
        p.push(`${where}.name: must match ${NAME_RE.source} (lowercase letters, digits, '-'; at most 63)`);
      const host = str(v.host) ?? "";
      if (!hosts[host]) p.push(`${where}.host: unknown host ${JSON.stringify(host)}; known: ${Object.keys(hosts).join(", ")}`);
      const vcpus = num(v.vcpus) ?? 1;
      const memoryMiB = num(v.memoryMiB) ?? 1024;
      const diskGiB = num(v.diskGiB) ?? 4;
      if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > LIMITS.maxVcpus) p.push(`${where}.vcpus: an integer 1..${LIMITS.maxVcpus}`);
      if (!Number.isInteger(memoryMiB) || memoryMiB < LIMITS.minMemoryMiB || memoryMiB > LIMITS.maxMemoryMiB)
        p.push(`${where}.memoryMiB: an integer ${LIMITS.minMemoryMiB}..${LIMITS.maxMemoryMiB}`);
      if (!Number.isInteger(diskGiB) || diskGiB < LIMITS.minDiskGiB || diskGiB > LIMITS.maxDiskGiB)
        p.push(`${where}.diskGiB: an integer ${LIMITS.minDiskGiB}..${LIMITS.maxDiskGiB} (the base image needs room)`);
      const user = str(v.user) ?? "debian";
      if (!USER_RE.test(user)) p.push(`${where}.user: must match ${USER_RE.source}`);
      const sshKeys = Array.isArray(v.sshKeys) ? v.sshKeys.map((k) => String(k).trim()) : [];
      if (sshKeys.length === 0) p.push(`${where}.sshKeys: at least one SSH public key is required`);
      sshKeys.forEach((k, j) => {
        if (!KEY_RE.test(k)) p.push(`${where}.sshKeys[${j}]: not an OpenSSH public key ("ssh-ed25519 AAAA... comment")`);
      });
      const packages = Array.isArray(v.packages) ? v.packages.map(String) : [];
      packages.forEach((pk) => {
        if (!/^[a-z0-9][a-z0-9+.-]{0,99}$/.test(pk)) p.push(`${where}.packages: ${JSON.stringify(pk)} is not a Debian package name`);
      });
      const mac = (str(v.mac) ?? macFor(name)).toLowerCase();
      if (!MAC_RE.test(mac)) p.push(`${where}.mac: must look like 52:54:00:xx:xx:xx`);
      let address: StaticAddress | undefined;
      if (v.address !== undefined && v.address !== "dhcp") {
        const a = isObj(v.address) ? v.address : {};
        address = { cidr: str(a.cidr) ?? "", gateway: str(a.gateway), dns: Array.isArray(a.dns) ? a.dns.map(String) : undefined };
        if (!validCidr(address.cidr)) p.push(`${where}.address.cidr: like 192.168.100.50/24`);
        if (address.gateway !== undefined && !validIp(address.gateway)) p.push(`${where}.address.gateway: an IPv4 address`);
        for (const d of address.dns ?? []) if (!validIp(d)) p.push(`${where}.address.dns: ${JSON.stringify(d)} is not an IPv4 address`);
      }
      const extraUserData = str(v.extraUserData);
      const storage = (str(v.storage) ?? "local") as VmSpec["storage"];
      if (storage !== "local" && storage !== "shared") p.push(`${where}.storage: "local" or "shared"`);
      if (storage === "shared" && hosts[host] && !hosts[host].sharedPool)
        p.push(`${where}.storage: "shared" needs hosts.${host}.sharedPool`);
      const migration = parseMigration(v.migration, `${where}.migration`, p);
      const adopt = str(v.adopt);
      if (v.adopt !== undefined && !(adopt && UUID_RE.test(adopt))) p.push(`${where}.adopt: the UUID of the domain to adopt (virsh domuuid ${name})`);
      vms.push({ name, host, vcpus, memoryMiB, diskGiB, user, sshKeys, packages, extraUserData, mac, address, storage, migration, ...(adopt ? { adopt } : {}) });
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
  if (p.length > 0) throw new SpecError(p);
  return { hosts, image, vms, readiness };
}

function parseMigration(raw: unknown, at: string, p: string[]): MigrationSpec {
  if (raw === undefined) return { ...MIGRATION_DEFAULTS };
  if (!isObj(raw)) {
    p.push(`${at}: must be an object`);
    return { ...MIGRATION_DEFAULTS };
  }
  const known = new Set([...Object.keys(MIGRATION_DEFAULTS), "httpCheck"]);
  for (const k of Object.keys(raw)) if (!known.has(k)) p.push(`${at}.${k}: unknown option (known: ${[...known].join(", ")})`);
  const d = MIGRATION_DEFAULTS;
  const m: MigrationSpec = {
    mode: (str(raw.mode) ?? d.mode) as MigrationMode,
    bandwidthMiBs: num(raw.bandwidthMiBs) ?? d.bandwidthMiBs,
    maxDowntimeMs: num(raw.maxDowntimeMs) ?? d.maxDowntimeMs,
    autoConverge: bool(raw.autoConverge) ?? d.autoConverge,
    postcopy: bool(raw.postcopy) ?? d.postcopy,
    progressTimeoutSeconds: num(raw.progressTimeoutSeconds) ?? d.progressTimeoutSeconds,
    completionSecondsPerGiB: num(raw.completionSecondsPerGiB) ?? d.completionSecondsPerGiB,
    healthTimeoutSeconds: num(raw.healthTimeoutSeconds) ?? d.healthTimeoutSeconds,
  };
  if (!["live", "paused", "offline"].includes(m.mode)) p.push(`${at}.mode: "live", "paused" or "offline"`);
  const ints: [keyof MigrationSpec, number, number][] = [["bandwidthMiBs", 0, 1 << 20], ["maxDowntimeMs", 1, 600_000],
    ["progressTimeoutSeconds", 5, 86_400], ["completionSecondsPerGiB", 5, 86_400], ["healthTimeoutSeconds", 5, 3600]];
  for (const [k, lo, hi] of ints) {
    const x = m[k] as number;
    if (!Number.isInteger(x) || x < lo || x > hi) p.push(`${at}.${k}: an integer ${lo}..${hi}`);
  }
  for (const k of ["autoConverge", "postcopy"] as const)
    if (raw[k] !== undefined && bool(raw[k]) === undefined) p.push(`${at}.${k}: true or false`);
  if (m.postcopy && m.mode !== "live") p.push(`${at}.postcopy: only with mode "live"`);
  if (raw.httpCheck !== undefined) {
    const h = isObj(raw.httpCheck) ? raw.httpCheck : {};
    const port = num(h.port) ?? 80;
    const path = str(h.path) ?? "/";
    if (!Number.isInteger(port) || port < 1 || port > 65535) p.push(`${at}.httpCheck.port: 1..65535`);
    if (!/^\/[A-Za-z0-9._~/-]{0,200}$/.test(path)) p.push(`${at}.httpCheck.path: an absolute URL path of [A-Za-z0-9._~/-]`);
    m.httpCheck = { port, path };
  }
  return m;
}

function bool(v: unknown): boolean | undefined {
  return typeof v === "boolean" ? v : v === "true" ? true : v === "false" ? false : undefined;
}
function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}
function num(v: unknown): number | undefined {
  return typeof v === "number" ? v : typeof v === "string" && /^\d+$/.test(v) ? Number(v) : undefined;
}
function validIp(s: string): boolean {
  const m = IP_RE.exec(s);
  return !!m && m.slice(1, 5).every((o) => Number(o) <= 255);
}
function validCidr(s: string): boolean {
  const m = CIDR_RE.exec(s);
  return !!m && m.slice(1, 5).every((o) => Number(o) <= 255) && Number(m[5]) <= 32;
}
