// Property-based tests (fast-check): the config parser and the parsers of what virsh prints, over generated input.
import fc from "fast-check";
import { parseSpec, SpecError, NAME_RE, LIMITS } from "../../config/spec";
import { parseLibvirtUri } from "../../config/uri";
import { parseDomifaddr, parseKeyValues } from "../../libvirt/domain";
import { parseJobInfo, parseQuantity } from "../../libvirt/migration";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBsDSiUG+pm/RKi1LSX+t9/dajLwyJtlG+n01nxm0rVf lab";
const base = (vm: Record<string, unknown>) => ({
  hosts: { "hv-a": { uri: "qemu+unix:///system?socket=/run/x/libvirt-sock", network: "lab", domainType: "qemu" } },
  image: { volume: "base.qcow2" },
  readiness: { privateKeyPath: "/keys/id" },
  vms: [{ name: "web-1", host: "hv-a", sshKeys: [KEY], ...vm }],
});
const parse = (raw: unknown) => {
  try {
    return parseSpec(raw as Parameters<typeof parseSpec>[0]);
  } catch (e) {
    if (e instanceof SpecError) return e;
    throw e; // anything else is a bug: the parser must answer every input with a spec or a list of problems
  }
};

test("any JSON as config yields a spec or a SpecError with at least one problem, never another exception", () => {
  fc.assert(fc.property(fc.record({ hosts: fc.jsonValue(), image: fc.jsonValue(), vms: fc.jsonValue(), readiness: fc.jsonValue() }, { requiredKeys: [] }), (raw) => {
    const r = parse(raw);
    if (r instanceof SpecError) expect(r.problems.length).toBeGreaterThan(0);
  }), { numRuns: 500 });
});

test("any JSON as one VM's options: accepted only with a valid name, sizes in range and the VM's own values kept", () => {
  fc.assert(fc.property(fc.dictionary(fc.constantFrom("name", "vcpus", "memoryMiB", "diskGiB", "user", "storage", "mac", "extra"), fc.jsonValue()), (vm) => {
    const r = parse(base(vm));
    if (r instanceof SpecError) return;
    const v = r.vms[0];
    expect(NAME_RE.test(v.name)).toBe(true);
    expect(Number.isInteger(v.vcpus) && v.vcpus >= 1 && v.vcpus <= LIMITS.maxVcpus).toBe(true);
    expect(v.memoryMiB >= LIMITS.minMemoryMiB && v.memoryMiB <= LIMITS.maxMemoryMiB).toBe(true);
    expect(["local", "shared"]).toContain(v.storage);
    expect("extra" in vm).toBe(false); // an unknown option is always refused
    if (typeof vm.memoryMiB === "number") expect(v.memoryMiB).toBe(vm.memoryMiB);
  }), { numRuns: 500 });
});

test("VM names: accepted exactly when they match the name rule", () => {
  fc.assert(fc.property(fc.oneof(fc.string(), fc.stringMatching(NAME_RE)), (name) => {
    const r = parse(base({ name }));
    const refused = r instanceof SpecError && r.problems.some((p) => p.endsWith(".name: must match ^[a-z0-9][a-z0-9-]{0,62}$ (lowercase letters, digits, '-'; at most 63)"));
    expect(refused).toBe(!NAME_RE.test(name));
  }), { numRuns: 1000 });
});

test("integer options given as text (pulumi config set --path) read as the same numbers", () => {
  fc.assert(fc.property(fc.integer({ min: LIMITS.minMemoryMiB, max: LIMITS.maxMemoryMiB }), fc.integer({ min: 1, max: LIMITS.maxVcpus }), (mem, cpus) => {
    const r = parse(base({ memoryMiB: String(mem), vcpus: String(cpus) }));
    expect(r instanceof SpecError ? r.problems : [r.vms[0].memoryMiB, r.vms[0].vcpus]).toEqual([mem, cpus]);
  }));
});

test("libvirt URIs: any string is parsed or refused with a reason, and nothing refused outright ever gets through", () => {
  fc.assert(fc.property(fc.oneof(fc.string(), fc.webUrl().map((u) => u.replace(/^https?/, "qemu+ssh")),
    fc.tuple(fc.constantFrom("qemu+ssh://root@h/system?", "qemu+tls://h/system?", "qemu:///system?"), fc.constantFrom("command", "netcat", "no_verify", "socket", "proxy", "keyfile"), fc.string())
      .map(([u, k, v]) => `${u}${k}=${encodeURIComponent(v)}`)), (uri) => {
    const r = parseLibvirtUri(uri);
    if (typeof r === "string") return;
    for (const k of ["command", "netcat", "no_verify", "proxy"]) expect(k in r.params).toBe(false);
    if (r.transport !== "unix") expect("socket" in r.params).toBe(false);
    expect(uri).not.toMatch(/[\s\\%]/);
  }), { numRuns: 2000 });
});

test("virsh output parsers never throw, whatever a host prints", () => {
  fc.assert(fc.property(fc.string(), fc.string(), (out, mac) => {
    parseJobInfo(out);
    parseKeyValues(out);
    parseQuantity(out);
    expect(parseDomifaddr(out, mac).every((ip) => !ip.startsWith("127."))).toBe(true);
  }), { numRuns: 1000 });
});

test("domjobinfo: generated quantities read back as the bytes and milliseconds libvirt printed", () => {
  const unit = fc.constantFrom(["B", 1], ["KiB", 1024], ["MiB", 1024 ** 2], ["GiB", 1024 ** 3]) as fc.Arbitrary<[string, number]>;
  fc.assert(fc.property(fc.integer({ min: 0, max: 10_000_000 }), fc.integer({ min: 0, max: 999 }), unit, fc.nat(), (whole, frac, [u, mult], ms) => {
    const n = `${whole}.${String(frac).padStart(3, "0")}`;
    const j = parseJobInfo(`Job type:         Unbounded\nTime elapsed:     ${ms}         ms\nData remaining:   ${n} ${u}\n`);
    expect([j.active, j.elapsedMs, j.remainingBytes]).toEqual([true, ms, Math.round(Number(n) * mult)]);
  }));
});

test("domifaddr: every IPv4 address printed for the MAC (also on continuation lines) and none of another NIC's", () => {
  const ip = fc.tuple(fc.integer({ min: 1, max: 126 }), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join("."));
  fc.assert(fc.property(fc.array(ip, { minLength: 1, maxLength: 4 }), fc.array(ip, { maxLength: 3 }), (mine, theirs) => {
    const rows = [" Name       MAC address          Protocol     Address", "-------------------------------------------------------------------------------",
      ...mine.map((a, i) => (i === 0 ? ` vnet0      52:54:00:aa:bb:cc    ipv4         ${a}/24` : ` -          -                    ipv4         ${a}/24`)),
      ...theirs.map((a) => ` vnet1      52:54:00:00:00:01    ipv4         ${a}/24`)];
    expect(parseDomifaddr(rows.join("\n"), "52:54:00:AA:BB:CC")).toEqual(mine);
  }));
});
