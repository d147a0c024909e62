// The stack config's schema, one declaration per option: its type, its rule (with the message a user reads), its
// default and its description. Validation (config/spec.ts), the spec's TypeScript types, the README's option tables
// and Pulumi.yaml's config descriptions all come from here (scripts/configDocs.ts writes the last two; a unit test
// fails when they drift). Library: zod 4 (typed inference, so the types cannot drift from the rules; metadata for the
// docs; no dependencies of its own). Pure.
import { z } from "zod";
import { parseLibvirtUri } from "./uri";

export const NAME_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const LIMITS = { minMemoryMiB: 256, maxMemoryMiB: 1 << 20, minDiskGiB: 3, maxDiskGiB: 16384, maxVcpus: 256 };
const USER_RE = /^[a-z_][a-z0-9_-]{0,31}$/;
const MAC_RE = /^52:54:00(:[0-9a-f]{2}){3}$/;
const KEY_RE = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\n\r]*)?$/;
const VOLUME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const CIDR_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;
const IP_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Defaults of a VM's own options. Anchors: 1 vCPU / 1 GiB / 4 GiB is the smallest Debian cloud guest that boots and
 * runs cloud-init with room to install packages; "debian" is the Debian cloud image's default user.
 */
export const VM_DEFAULTS = { vcpus: 1, memoryMiB: 1024, diskGiB: 4, user: "debian", storage: "local" } as const;

/**
 * Anchors: QEMU's default max downtime is 300 ms; KubeVirt aborts a migration that made no progress for 150 s and
 * allows 150 s per GiB to complete (its completionTimeoutPerGiB); both off by default there for auto-converge and
 * post-copy, as here. Live is the default mode: the VM keeps running and the switchover costs the downtime only.
 */
export const MIGRATION_DEFAULTS = {
  mode: "live",
  bandwidthMiBs: 0,
  maxDowntimeMs: 300,
  autoConverge: false,
  postcopy: false,
  progressTimeoutSeconds: 150,
  completionSecondsPerGiB: 150,
  healthTimeoutSeconds: 120,
} as const;

// ------------------------------------------------------------------------------------------------ field rules
const rule = (m: string) => ({ error: m });
/** Pulumi's `config set --path` stores numbers and booleans as text: accept both spellings. */
const numeric = (v: unknown) => (typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v);
const boolText = (v: unknown) => (v === "true" ? true : v === "false" ? false : v);
const intIn = (lo: number, hi: number) => {
  const m = `an integer ${lo}..${hi}`;
  return z.preprocess(numeric, z.number(rule(m)).int(rule(m)).min(lo, rule(m)).max(hi, rule(m))).meta({ type: `integer ${lo}..${hi}` });
};
const bool = () => z.preprocess(boolText, z.boolean(rule("true or false"))).meta({ type: "true / false" });
const matching = (re: RegExp, m: string, type = `\`${re.source}\``) => z.string(rule(m)).regex(re, rule(m)).meta({ type });
const absPath = (m = "must be an absolute path") => z.string(rule(m)).startsWith("/", rule(m)).meta({ type: "absolute path" });
const validIp = (s: string) => { const m = IP_RE.exec(s); return !!m && m.slice(1, 5).every((o) => Number(o) <= 255); };
const validCidr = (s: string) => CIDR_RE.test(s) && validIp(s.split("/")[0]) && Number(s.split("/")[1]) <= 32;
const libvirtUri = (example: string) => z.string(rule(`a libvirt URI like ${example}`)).superRefine((v, ctx) => {
  const r = parseLibvirtUri(v);
  if (typeof r === "string") ctx.addIssue({ code: "custom", message: r });
}).meta({ type: "libvirt URI" });
/** An object whose unknown keys are refused by name (a typo is an error, not a silently ignored option). */
const options = <S extends z.ZodRawShape>(shape: S) =>
  z.strictObject(shape, { error: (iss) => (iss.code === "unrecognized_keys" ? `known: ${Object.keys(shape).join(", ")}` : "must be an object") });

// ------------------------------------------------------------------------------------------------ the schema
export const hostSchema = options({
  uri: libvirtUri("qemu+ssh://root@hv1/system").meta({ description: "libvirt URI of the host: qemu+ssh://user@host/system, qemu+libssh://...?known_hosts=F, qemu:///system or qemu+unix:///system?socket=PATH. Parameters that run programs or skip verification are refused." }),
  pool: matching(VOLUME_RE, "not a valid libvirt object name", "libvirt name").default("default").meta({ description: "Storage pool that holds the base image, overlays and seed ISOs." }),
  network: matching(VOLUME_RE, "not a valid libvirt object name", "libvirt name").optional().meta({ default: '"default"', description: "libvirt network the VMs' NICs attach to; or give bridge." }),
  bridge: matching(/^[A-Za-z0-9_.-]{1,15}$/, "a Linux interface name (at most 15 of [A-Za-z0-9_.-])", "interface name").optional().meta({ description: "A host bridge (e.g. br0) instead of a libvirt network." }),
  domainType: z.enum(["kvm", "qemu"], rule('must be "kvm" or "qemu"')).default("kvm").meta({ description: "kvm on real hosts; qemu (TCG) where KVM cannot run guests, like the lab." }),
  guestNetns: matching(NAME_RE, `must match ${NAME_RE.source}`).optional().meta({ description: "Reach guests from inside this network namespace (the local lab)." }),
  guestJump: bool().optional().meta({ default: "false", description: "Reach this host's guests through the host's own SSH (ProxyJump, host key checked), with the user, address, port, key and known_hosts of its qemu+ssh/qemu+libssh URI: for operators with no route to the guest network." }),
  migrationUri: libvirtUri("qemu+tls://hv2/system").optional().meta({ description: "Peer-to-peer migration: the URI the other hosts' libvirtd uses to reach this one. Without it vm-infra drives a direct migration over its own connections." }),
  sharedPool: matching(VOLUME_RE, "is not a valid pool name", "libvirt name").optional().meta({ description: "A pool all hosts naming it share (NFS, cluster filesystem): VMs with storage \"shared\" keep their disks there and move without copying them." }),
  capacity: options({
    memoryMiB: intIn(LIMITS.minMemoryMiB, LIMITS.maxMemoryMiB * 64),
    vcpus: intIn(1, LIMITS.maxVcpus * 64),
  }).optional().meta({ type: "{memoryMiB, vcpus}", description: "What the VMs placed on this host may add up to (the policy pack's host-capacity rule and drain check it)." }),
  drain: bool().optional().meta({ default: "false", description: "Maintenance: the next up moves every VM declared here to the other hosts (see Fleet changes); VMs created meanwhile go elsewhere too." }),
});

export const imageSchema = options({
  volume: matching(VOLUME_RE, "is not a valid volume name", "libvirt name").meta({ description: "Volume name of the base image in each host's pool." }),
  source: absPath().optional().meta({ description: "Local qcow2 uploaded to each host's pool once (checked by qemu-img at preview); omit when the volume is there." }),
  sha256: matching(/^[0-9a-f]{64}$/, "the source's sha256 (64 hex digits)", "64 hex digits").optional().meta({ description: "sha256 of source, checked before upload; required with source." }),
  kernel: absPath().optional().meta({ description: "Direct kernel boot: kernel path on the hosts (with initrd)." }),
  initrd: absPath().optional().meta({ description: "Direct kernel boot: initrd path on the hosts." }),
  cmdline: z.string().max(4096).meta({ type: "string" }).optional().meta({ description: "Direct kernel boot: kernel command line." }),
});

export const readinessSchema = options({
  privateKeyPath: absPath("an absolute path to the SSH private key is required").meta({ description: "Private key for the readiness SSH login (must match one of the VM's keys)." }),
  timeoutSeconds: intIn(10, 7200).default(600).meta({ description: "Upper bound for address + SSH + cloud-init done, seconds." }),
});

export const migrationSchema = options({
  mode: z.enum(["live", "paused", "offline"], rule('"live", "paused" or "offline"')).default(MIGRATION_DEFAULTS.mode).meta({ description: "live: the VM keeps running; paused: suspended during the copy; offline: shut down, copied, started." }),
  bandwidthMiBs: intIn(0, 1 << 20).default(MIGRATION_DEFAULTS.bandwidthMiBs).meta({ description: "MiB/s cap for the transfer; 0 = libvirt's default (no cap)." }),
  maxDowntimeMs: intIn(1, 600_000).default(MIGRATION_DEFAULTS.maxDowntimeMs).meta({ description: "Max switchover downtime (QEMU's default)." }),
  autoConverge: bool().default(MIGRATION_DEFAULTS.autoConverge).meta({ description: "Throttle the guest's CPUs when memory is dirtied faster than it is sent." }),
  postcopy: bool().default(MIGRATION_DEFAULTS.postcopy).meta({ description: "Opt-in: switch to post-copy after the first pass (a network failure then loses the VM); live only." }),
  progressTimeoutSeconds: intIn(5, 86_400).default(MIGRATION_DEFAULTS.progressTimeoutSeconds).meta({ description: "Abort when the remaining data has not shrunk for this long (KubeVirt's progressTimeout)." }),
  completionSecondsPerGiB: intIn(5, 86_400).default(MIGRATION_DEFAULTS.completionSecondsPerGiB).meta({ description: "Abort when the transfer takes longer than this per GiB of RAM, plus disk when copying (KubeVirt's completionTimeoutPerGiB)." }),
  healthTimeoutSeconds: intIn(5, 3600).default(MIGRATION_DEFAULTS.healthTimeoutSeconds).meta({ description: "Each post-move health check is retried until this deadline." }),
  httpCheck: options({
    port: intIn(1, 65535).default(80),
    path: matching(/^\/[A-Za-z0-9._~/-]{0,200}$/, "an absolute URL path of [A-Za-z0-9._~/-]", "URL path").default("/"),
  }).optional().meta({ description: "Application check after the move: GET http://<guest>:<port><path> answers 2xx ({port=80, path=\"/\"})." }),
  after: z.array(matching(NAME_RE, `a VM name (${NAME_RE.source})`), rule("a list of VM names")).optional()
    .meta({ type: "list of VM names", default: "none", description: "Waves: in an update that moves this VM, it moves only after these VMs' moves have finished and passed their health checks (it stays if one failed); at creation it waits for them to be ready." }),
});

/**
 * Anchors: at most 2 outgoing migrations per source host (KubeVirt parallelOutboundMigrationsPerNode, oVirt
 * max_outgoing_migrations), 2 incoming per target host (oVirt), 5 in one update (KubeVirt parallelMigrationsPerCluster).
 */
export const LIMIT_DEFAULTS = { outgoingPerHost: 2, incomingPerHost: 2, perUpdate: 5 } as const;
export const limitsSchema = options({
  outgoingPerHost: intIn(1, 64).default(LIMIT_DEFAULTS.outgoingPerHost).meta({ description: "Moves leaving one host at once (KubeVirt parallelOutboundMigrationsPerNode, oVirt max_outgoing_migrations)." }),
  incomingPerHost: intIn(1, 64).default(LIMIT_DEFAULTS.incomingPerHost).meta({ description: "Moves arriving on one host at once (oVirt)." }),
  perUpdate: intIn(1, 256).default(LIMIT_DEFAULTS.perUpdate).meta({ description: "Moves running at once in one update (KubeVirt parallelMigrationsPerCluster)." }),
});

export const addressSchema = options({
  cidr: z.string(rule("like 192.168.100.50/24")).refine(validCidr, rule("like 192.168.100.50/24")),
  gateway: z.string().refine(validIp, rule("an IPv4 address")).optional(),
  dns: z.array(z.string().refine(validIp, rule("not an IPv4 address"))).optional(),
});

export const DEFAULT_PLAYBOOK = "ansible/site.yml";
export const provisionSchema = options({
  playbook: matching(/^(?!\/)(?!.*(^|\/)\.\.(\/|$))[A-Za-z0-9._/-]+\.ya?ml$/, "a .yml/.yaml path inside the project (relative, no '..')", "path in the project")
    .default(DEFAULT_PLAYBOOK).meta({ description: "The playbook, relative to the project." }),
  vars: z.record(matching(/^[A-Za-z_][A-Za-z0-9_]*$/, "a variable name ([A-Za-z_][A-Za-z0-9_]*)"), z.json(),
    { error: (iss) => (iss.code === "invalid_key" ? "a variable name ([A-Za-z_][A-Za-z0-9_]*)" : "a map of variable name -> value") })
    .default({}).meta({ type: "map", description: "Extra vars (plain). Secret vars go in vm-infra:provisionSecrets.<vm> (a Pulumi secret)." }),
  tags: z.array(matching(/^[A-Za-z0-9_-]{1,64}$/, "a tag of [A-Za-z0-9_-]"), rule("a list of tags")).default([]).meta({ type: "list of tags", description: "Run only the tasks with these tags." }),
  timeoutSeconds: intIn(30, 86_400).default(1800).meta({ description: "Bound for the whole playbook run." }),
});

export const vmSchema = options({
  name: matching(NAME_RE, `must match ${NAME_RE.source} (lowercase letters, digits, '-'; at most 63)`).meta({ description: "The domain's name on its host; unique in the stack." }),
  host: z.string(rule("a host name from hosts is required")).meta({ type: "a key of hosts", description: "Host the VM runs on (a key of hosts); changing it moves the VM." }),
  vcpus: intIn(1, LIMITS.maxVcpus).default(VM_DEFAULTS.vcpus).meta({ description: "Virtual CPUs." }),
  memoryMiB: intIn(LIMITS.minMemoryMiB, LIMITS.maxMemoryMiB).default(VM_DEFAULTS.memoryMiB).meta({ description: "Memory, MiB." }),
  diskGiB: intIn(LIMITS.minDiskGiB, LIMITS.maxDiskGiB).default(VM_DEFAULTS.diskGiB).meta({ description: "Root disk (an overlay on the base image), GiB; a change replaces the VM." }),
  user: matching(USER_RE, `must match ${USER_RE.source}`).default(VM_DEFAULTS.user).meta({ description: "Login user cloud-init creates, with the SSH keys." }),
  sshKeys: z.array(z.string().transform((k) => k.trim()).pipe(matching(KEY_RE, 'not an OpenSSH public key ("ssh-ed25519 AAAA... comment")')), rule("a list of SSH public keys"))
    .meta({ type: "list of OpenSSH public keys" })
    .default([]).meta({ description: "SSH public keys of the user; default: the stack's vm-infra:sshKeys." }),
  packages: z.array(z.string().regex(/^[a-z0-9][a-z0-9+.-]{0,99}$/, rule("is not a Debian package name")), rule("a list of Debian package names"))
    .meta({ type: "list of Debian package names" }).default([])
    .meta({ description: "Debian packages cloud-init installs at first boot." }),
  extraUserData: z.string().meta({ type: "YAML mapping as text" }).optional().meta({ description: "Extra cloud-config (a YAML mapping as text), merged over the generated one." }),
  mac: z.preprocess((v) => (typeof v === "string" ? v.toLowerCase() : v), matching(MAC_RE, "must look like 52:54:00:xx:xx:xx", "52:54:00:xx:xx:xx")).optional()
    .meta({ default: "from the name", description: "NIC MAC; by default a stable locally administered address derived from the VM's name." }),
  address: z.preprocess((v) => (v === "dhcp" ? undefined : v), addressSchema.optional())
    .meta({ type: '"dhcp" or {cidr, gateway?, dns?}', default: '"dhcp"', description: "A static IPv4 address (cidr like 192.168.100.50/24) written into the guest's network config, or DHCP." }),
  storage: z.enum(["local", "shared"], rule('"local" or "shared"')).default(VM_DEFAULTS.storage).meta({ description: "Disks in the host's own pool (local: moves copy them) or its sharedPool (shared)." }),
  migration: migrationSchema.default(() => migrationSchema.parse({})).meta({ type: "object", description: "How a change of host moves the VM: the options below." }),
  provision: z.preprocess((v) => (v === true ? {} : v === false ? undefined : v), provisionSchema.optional())
    .meta({ type: "true or {playbook, vars, tags, timeoutSeconds}", default: "none", description: "Run an Ansible playbook in the guest after readiness (see Provisioning)." }),
  tags: z.array(matching(/^[a-z0-9][a-z0-9-]{0,62}$/, "a tag of [a-z0-9-]"), rule("a list of tags")).default([]).meta({ type: "list of tags", description: "Labels the policy pack reads (e.g. db: a stateful VM, never moved with post-copy)." }),
  group: matching(NAME_RE, `must match ${NAME_RE.source}`).optional().meta({ description: "Anti-affinity group: the policy pack refuses two VMs of one group on the same host." }),
  adopt: matching(UUID_RE, "the UUID of the domain to adopt (virsh domuuid <name>)", "UUID").optional()
    .meta({ description: "Take over an existing vm-infra-made domain of this name (its UUID); without it such a domain is refused." }),
});

export type Raw = Record<string, unknown>;
