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
    extraUserData: undefined, mac: macFor("web-1"), address: undefined, storage: "local", migration: MIGRATION_DEFAULTS,
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
  const p = problems(raw);
  expect(p.some((m) => m.includes(".name: must match"))).toBe(true);
});

test("the hostile table has at least 30 values", () => expect(HOSTILE_NAMES.length).toBeGreaterThanOrEqual(30));

test.each([
  ["unknown host", (r: ReturnType<typeof base>) => (r.vms[0].host = "hv-z"), 'unknown host "hv-z"'],
  ["memory below minimum", (r: ReturnType<typeof base>) => Object.assign(r.vms[0], { memoryMiB: 64 }), "memoryMiB"],
  ["disk below minimum", (r: ReturnType<typeof base>) => Object.assign(r.vms[0], { diskGiB: 1 }), "diskGiB"],
  ["no keys", (r: ReturnType<typeof base>) => (r.vms[0].sshKeys = []), "at least one SSH public key"],
  ["not a key", (r: ReturnType<typeof base>) => (r.vms[0].sshKeys = ["ssh-ed25519 AAAA$(id)"]), "not an OpenSSH public key"],
  ["key with newline", (r: ReturnType<typeof base>) => (r.vms[0].sshKeys = [KEY + "\nssh-rsa AAAA"]), "not an OpenSSH public key"],
  ["duplicate names", (r: ReturnType<typeof base>) => r.vms.push({ ...r.vms[0] }), 'duplicate name "web-1"'],
  ["duplicate MACs", (r: ReturnType<typeof base>) => r.vms.push({ ...r.vms[0], name: "web-2", mac: macFor("web-1") } as never), "duplicate mac"],
  ["bad MAC", (r: ReturnType<typeof base>) => Object.assign(r.vms[0], { mac: "ff:ff:ff:ff:ff:ff" }), ".mac"],
  ["duplicate addresses", (r: ReturnType<typeof base>) => {
    Object.assign(r.vms[0], { address: { cidr: "10.0.0.5/24" } });
    r.vms.push({ ...r.vms[0], name: "web-2", mac: undefined } as never);
  }, 'duplicate address "10.0.0.5"'],
  ["bad CIDR", (r: ReturnType<typeof base>) => Object.assign(r.vms[0], { address: { cidr: "300.1.1.1/24" } }), "address.cidr"],
  ["bad package", (r: ReturnType<typeof base>) => Object.assign(r.vms[0], { packages: ["vim; reboot"] }), "not a Debian package name"],
  ["bad user", (r: ReturnType<typeof base>) => Object.assign(r.vms[0], { user: "root;id" }), ".user"],
  ["bad URI", (r: ReturnType<typeof base>) => (r.hosts["hv-a"].uri = "-c /etc/passwd"), ".uri"],
  ["bad pool", (r: ReturnType<typeof base>) => Object.assign(r.hosts["hv-a"], { pool: "../x" }), ".pool"],
  ["bad domain type", (r: ReturnType<typeof base>) => Object.assign(r.hosts["hv-a"], { domainType: "xen" }), "domainType"],
  ["missing image", (r: ReturnType<typeof base>) => (r.image = undefined as never), "image"],
  ["relative image source", (r: ReturnType<typeof base>) => Object.assign(r.image, { source: "base.qcow2" }), "absolute path"],
  ["source without sha256", (r: ReturnType<typeof base>) => Object.assign(r.image, { source: "/b.qcow2" }), "image.sha256"],
  ["relative private key", (r: ReturnType<typeof base>) => (r.readiness.privateKeyPath = "id"), "privateKeyPath"],
])("%s is rejected", (_what, mutate, expected) => {
  const raw = base();
  mutate(raw);
  expect(problems(raw).join("\n")).toContain(expected);
});

test.each([
  [{ mode: "teleport" }, /migration.mode: "live", "paused" or "offline"/],
  [{ bandwidthMiBs: -1 }, /migration.bandwidthMiBs: an integer 0\.\./],
  [{ maxDowntimeMs: 0 }, /migration.maxDowntimeMs/],
  [{ postcopy: "yes" }, /migration.postcopy: true or false/],
  [{ mode: "offline", postcopy: true }, /postcopy: only with mode "live"/],
  [{ httpCheck: { port: 70000 } }, /httpCheck.port: 1..65535/],
  [{ httpCheck: { port: 80, path: "/$(reboot)" } }, /httpCheck.path/],
  [{ speed: 3 }, /migration.speed: unknown option/],
  ["fast", /migration: must be an object/],
])("migration option %j is rejected before anything runs", (migration, rule) => {
  const raw = base();
  (raw.vms[0] as Record<string, unknown>).migration = migration;
  expect(problems(raw).join("\n")).toMatch(rule);
});

test("shared storage needs a sharedPool on the VM's host; hosts validate migrationUri", () => {
  const raw = base();
  (raw.vms[0] as Record<string, unknown>).storage = "shared";
  (raw.hosts["hv-a"] as Record<string, unknown>).migrationUri = "http://evil";
  const p = problems(raw).join("\n");
  expect(p).toMatch(/storage: "shared" needs hosts.hv-a.sharedPool/);
  expect(p).toMatch(/migrationUri: a libvirt URI/);
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
