import { MIGRATION_DEFAULTS, macFor, parseSpec, SpecError } from "../../config/spec";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBsDSiUG+pm/RKi1LSX+t9/dajLwyJtlG+n01nxm0rVf lab";
const base = () => ({
  hosts: { "hv-a": { uri: "qemu+unix:///system?socket=/run/x/libvirt-sock", network: "lab", domainType: "qemu" } },
  image: { volume: "base.qcow2" },
  readiness: { privateKeyPath: "/keys/id" },
  vms: [{ name: "web-1", host: "hv-a", sshKeys: [KEY] }],
});

const problems = (raw: unknown): string[] => {
  try {
    parseSpec(raw as Parameters<typeof parseSpec>[0]);
    return [];
  } catch (e) {
    if (e instanceof SpecError) return e.problems;
    throw e;
  }
};

test("a valid config gets documented defaults", () => {
  const s = parseSpec(base());
  expect(s.vms[0]).toEqual({
    name: "web-1", host: "hv-a", vcpus: 1, memoryMiB: 1024, diskGiB: 4, user: "debian", sshKeys: [KEY], packages: [],
    extraUserData: undefined, mac: macFor("web-1"), address: undefined, storage: "local", migration: MIGRATION_DEFAULTS, tags: [],
  });
  // the anchors the README states: QEMU's 300 ms max downtime, KubeVirt's 150 s per GiB and 150 s without progress
  expect(MIGRATION_DEFAULTS).toMatchObject({ mode: "live", maxDowntimeMs: 300, completionSecondsPerGiB: 150, progressTimeoutSeconds: 150, postcopy: false });
  expect(s.hosts["hv-a"].pool).toBe("default");
  expect(s.readiness.timeoutSeconds).toBe(600);
  expect(macFor("web-1")).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
});

// 32 hostile or malformed VM names: every one is rejected before anything is created
const HOSTILE_NAMES = [
  "", "-lead", "UPPER", "has space", "../etc/passwd", "a/b", "a\\b", "$(reboot)", "`id`", "a;rm -rf /", "a'b", 'a"b',
  "a\nb", "a\tb", "a\0b", "ünicode", "émoji😀", "a".repeat(64), "a$b", "a|b", "a&b", "a>b", "a<b", "a*b", "a?b",
  "a{b}", "a[b]", "--help", ".hidden", "a.b", "a_b", "%2e%2e",
];

test.each(HOSTILE_NAMES)("VM name %j is rejected with a message naming the rule", (name) => {
  const raw = base();
  raw.vms[0].name = name;
  expect(problems(raw)).toContain(`vms[0] (${JSON.stringify(name)}).name: must match ^[a-z0-9][a-z0-9-]{0,62}$ (lowercase letters, digits, '-'; at most 63)`);
});


test.each([
  ["unknown host", (r: ReturnType<typeof base>) => (r.vms[0].host = "hv-z"), ["vms[0] (\"web-1\").host: unknown host \"hv-z\"; known: hv-a"]],
  ["memory below minimum", (r: ReturnType<typeof base>) => Object.assign(r.vms[0], { memoryMiB: 64 }), ["vms[0] (\"web-1\").memoryMiB: an integer 256..1048576"]],
  ["disk below minimum", (r: ReturnType<typeof base>) => Object.assign(r.vms[0], { diskGiB: 1 }), ["vms[0] (\"web-1\").diskGiB: an integer 3..16384"]],
  ["no keys", (r: ReturnType<typeof base>) => (r.vms[0].sshKeys = []), ["vms[0] (\"web-1\").sshKeys: at least one SSH public key is required (here or in vm-infra:sshKeys)"]],
  ["not a key", (r: ReturnType<typeof base>) => (r.vms[0].sshKeys = ["ssh-ed25519 AAAA$(id)"]), ["vms[0] (\"web-1\").sshKeys[0]: not an OpenSSH public key (\"ssh-ed25519 AAAA... comment\")"]],
  ["key with newline", (r: ReturnType<typeof base>) => (r.vms[0].sshKeys = [KEY + "\nssh-rsa AAAA"]), ["vms[0] (\"web-1\").sshKeys[0]: not an OpenSSH public key (\"ssh-ed25519 AAAA... comment\")"]],
  ["duplicate names", (r: ReturnType<typeof base>) => r.vms.push({ ...r.vms[0] }), ["vms: duplicate name \"web-1\"", "vms: duplicate mac \"52:54:00:03:37:1c\""]],
  ["duplicate MACs", (r: ReturnType<typeof base>) => r.vms.push({ ...r.vms[0], name: "web-2", mac: macFor("web-1") } as never), ["vms: duplicate mac \"52:54:00:03:37:1c\""]],
  ["bad MAC", (r: ReturnType<typeof base>) => Object.assign(r.vms[0], { mac: "ff:ff:ff:ff:ff:ff" }), ["vms[0] (\"web-1\").mac: must look like 52:54:00:xx:xx:xx"]],
  ["duplicate addresses", (r: ReturnType<typeof base>) => {
    Object.assign(r.vms[0], { address: { cidr: "10.0.0.5/24" } });
    r.vms.push({ ...r.vms[0], name: "web-2", mac: undefined } as never);
  }, ["vms: duplicate address \"10.0.0.5\""]],
  ["bad CIDR", (r: ReturnType<typeof base>) => Object.assign(r.vms[0], { address: { cidr: "300.1.1.1/24" } }), ["vms[0] (\"web-1\").address.cidr: like 192.168.100.50/24"]],
  ["bad package", (r: ReturnType<typeof base>) => Object.assign(r.vms[0], { packages: ["vim; reboot"] }), ["vms[0] (\"web-1\").packages[0]: is not a Debian package name"]],
  ["bad user", (r: ReturnType<typeof base>) => Object.assign(r.vms[0], { user: "root;id" }), ["vms[0] (\"web-1\").user: must match ^[a-z_][a-z0-9_-]{0,31}$"]],
  ["bad URI", (r: ReturnType<typeof base>) => (r.hosts["hv-a"].uri = "-c /etc/passwd"), ["hosts.\"hv-a\".uri: a libvirt URI like qemu+ssh://root@hv1/system, qemu:///system or qemu+unix:///system?socket=/path"]],
  ["typo in a VM option", (r: ReturnType<typeof base>) => Object.assign(r.vms[0], { memoryMib: 2048 }), ['vms[0] ("web-1").memoryMib: unknown option (known: name, host, vcpus, memoryMiB, diskGiB, user, sshKeys, packages, extraUserData, mac, address, storage, migration, provision, tags, group, adopt)']],
  ["tags and groups are names", (r: ReturnType<typeof base>) => Object.assign(r.vms[0], { tags: ["db", "Bad Tag"], group: "a b" }),
    ['vms[0] ("web-1").tags[1]: a tag of [a-z0-9-]', 'vms[0] ("web-1").group: must match ^[a-z0-9][a-z0-9-]{0,62}$']],
  ["host capacity is whole numbers", (r: ReturnType<typeof base>) => Object.assign(r.hosts["hv-a"], { capacity: { memoryMiB: "lots", vcpus: 0 } }),
    ['hosts."hv-a".capacity.memoryMiB: an integer 256..67108864', 'hosts."hv-a".capacity.vcpus: an integer 1..16384']],
  ["bad pool", (r: ReturnType<typeof base>) => Object.assign(r.hosts["hv-a"], { pool: "../x" }), ["hosts.\"hv-a\".pool: not a valid libvirt object name"]],
  ["bad domain type", (r: ReturnType<typeof base>) => Object.assign(r.hosts["hv-a"], { domainType: "xen" }), ["hosts.\"hv-a\".domainType: must be \"kvm\" or \"qemu\""]],
  ["missing image", (r: ReturnType<typeof base>) => (r.image = undefined as never), ["image: {volume, source?, sha256?} is required"]],
  ["relative image source", (r: ReturnType<typeof base>) => Object.assign(r.image, { source: "base.qcow2" }), ["image.source: must be an absolute path"]],
  ["source without sha256", (r: ReturnType<typeof base>) => Object.assign(r.image, { source: "/b.qcow2" }), ["image.sha256: the source's sha256 (64 hex digits) is required with image.source"]],
  ["relative private key", (r: ReturnType<typeof base>) => (r.readiness.privateKeyPath = "id"), ["readiness.privateKeyPath: an absolute path to the SSH private key is required"]],
])("%s is rejected with exactly its problems", (_what, mutate, expected) => {
  const raw = base();
  mutate(raw);
  expect(problems(raw)).toEqual(expected);
});

test.each([
  [{ mode: "teleport" }, "vms[0] (\"web-1\").migration.mode: \"live\", \"paused\" or \"offline\""],
  [{ bandwidthMiBs: -1 }, "vms[0] (\"web-1\").migration.bandwidthMiBs: an integer 0..1048576"],
  [{ maxDowntimeMs: 0 }, "vms[0] (\"web-1\").migration.maxDowntimeMs: an integer 1..600000"],
  [{ postcopy: "yes" }, "vms[0] (\"web-1\").migration.postcopy: true or false"],
  [{ mode: "offline", postcopy: true }, "vms[0] (\"web-1\").migration.postcopy: only with mode \"live\""],
  [{ httpCheck: { port: 70000 } }, "vms[0] (\"web-1\").migration.httpCheck.port: an integer 1..65535"],
  [{ httpCheck: { port: 80, path: "/$(reboot)" } }, "vms[0] (\"web-1\").migration.httpCheck.path: an absolute URL path of [A-Za-z0-9._~/-]"],
  [{ speed: 3 }, "vms[0] (\"web-1\").migration.speed: unknown option (known: mode, bandwidthMiBs, maxDowntimeMs, autoConverge, postcopy, progressTimeoutSeconds, completionSecondsPerGiB, healthTimeoutSeconds, httpCheck, after)"],
  ["fast", "vms[0] (\"web-1\").migration: must be an object"],
])("migration option %j is rejected before anything runs", (migration, rule) => {
  const raw = base();
  (raw.vms[0] as Record<string, unknown>).migration = migration;
  expect(problems(raw)).toEqual([rule]);
});

test("shared storage needs a sharedPool on the VM's host; hosts validate migrationUri", () => {
  const raw = base();
  (raw.vms[0] as Record<string, unknown>).storage = "shared";
  expect(problems(raw)).toEqual(['vms[0] ("web-1").storage: "shared" needs hosts.hv-a.sharedPool']);
  const bad = base();
  (bad.hosts["hv-a"] as Record<string, unknown>).migrationUri = "http://evil";
  expect(problems(bad)).toEqual(['hosts."hv-a".migrationUri: a libvirt URI like qemu+ssh://root@hv1/system, qemu:///system or qemu+unix:///system?socket=/path']);
});

test("a host attaches VMs to a libvirt network or a host bridge, never both; bridge names are interface names", () => {
  const ok = base();
  ok.hosts["hv-a"] = { uri: "qemu:///system", bridge: "br0" } as never;
  expect(parseSpec(ok).hosts["hv-a"].bridge).toBe("br0");
  const both = base();
  (both.hosts["hv-a"] as Record<string, unknown>).bridge = "br0";
  expect(problems(both).join("\n")).toMatch(/give network or bridge, not both/);
  const bad = base();
  bad.hosts["hv-a"] = { uri: "qemu:///system", bridge: "br0; reboot" } as never;
  expect(problems(bad).join("\n")).toMatch(/bridge: a Linux interface name/);
});
