import YAML from "yaml";
import { cloudInitDocs, instanceId } from "../../cloud-init/documents";
import { domainXml, parseDomainXml, parseDomifaddr } from "../../libvirt/domain";
import { MIGRATION_DEFAULTS, macFor, VmSpec } from "../../config/spec";
import { run } from "../../host/runner";

const vm: VmSpec = {
  name: "web-1", host: "hv-a", vcpus: 2, memoryMiB: 2048, diskGiB: 8, user: "ops",
  sshKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBsDSiUG+pm/RKi1LSX+t9/dajLwyJtlG+n01nxm0rVf lab"],
  packages: ["htop"], mac: macFor("web-1"), storage: "local", migration: MIGRATION_DEFAULTS, tags: [],
};

test("cloud-init documents (snapshot) and a stable instance-id", () => {
  const d = cloudInitDocs(vm);
  expect(d.userData).toMatchSnapshot();
  expect(d.metaData).toMatchSnapshot();
  expect(d.networkConfig).toMatchSnapshot();
  expect(YAML.parse(d.metaData)["instance-id"]).toBe(instanceId(vm));
  expect(cloudInitDocs({ ...vm, memoryMiB: 4096 }).hash).toBe(d.hash); // only document content names the ISO
  expect(cloudInitDocs({ ...vm, packages: [] }).hash).not.toBe(d.hash);
});

test("hostile text in extra user-data stays data", () => {
  const d = cloudInitDocs({ ...vm, extraUserData: "runcmd:\n  - [echo, \"$(id)\"]\nhostname: evil" });
  const parsed = YAML.parse(d.userData);
  expect(parsed.runcmd).toEqual([["echo", "$(id)"]]);
  expect(parsed.hostname).toBe("evil"); // extra user-data is merged over the generated keys on purpose
  expect(() => cloudInitDocs({ ...vm, extraUserData: "- a list" })).toThrow("must be a YAML mapping");
});

test("static address renders network-config v2 matched by MAC", () => {
  const n = YAML.parse(cloudInitDocs({ ...vm, address: { cidr: "192.168.100.50/24", gateway: "192.168.100.1", dns: ["192.168.100.1"] } }).networkConfig);
  expect(n).toEqual({ version: 2, ethernets: { eth0: { match: { macaddress: vm.mac }, "set-name": "eth0", dhcp4: false,
    addresses: ["192.168.100.50/24"], routes: [{ to: "default", via: "192.168.100.1" }], nameservers: { addresses: ["192.168.100.1"] } } } });
});

test("domain XML (snapshot) round-trips through the parser", () => {
  const xml = domainXml({ name: "web-1", domainType: "qemu", vcpus: 2, memoryMiB: 2048, diskPath: "/p/web-1.qcow2",
    isoPath: "/p/web-1.iso", network: "lab", mac: vm.mac, kernel: "/k/vmlinuz", initrd: "/k/initrd", cmdline: "root=/dev/vda" });
  expect(xml).toMatchSnapshot();
  expect(parseDomainXml(xml)).toEqual({ memoryMiB: 2048, vcpus: 2, mac: vm.mac, diskPaths: ["/p/web-1.qcow2", "/p/web-1.iso"] });
  expect(domainXml({ name: "x", domainType: "kvm", vcpus: 1, memoryMiB: 512, diskPath: "/a'<b>&", isoPath: "/i", network: "n", mac: vm.mac }))
    .toContain("/a&apos;&lt;b&gt;&amp;");
});

test("a host bridge instead of a libvirt network", () => {
  const xml = domainXml({ name: "x", domainType: "kvm", vcpus: 1, memoryMiB: 512, diskPath: "/d", isoPath: "/i", network: "default", bridge: "br0", mac: vm.mac });
  expect(xml).toContain(`<interface type="bridge">`);
  expect(xml).toContain(`<source bridge="br0"/>`);
  expect(xml).not.toContain("network=");
});

test("domifaddr parsing picks the VM's MAC", () => {
  const out = ` Name       MAC address          Protocol     Address
-------------------------------------------------------------------------------
 vnet0      52:54:00:ef:78:26    ipv4         192.168.100.66/24
 lo         00:00:00:00:00:00    ipv4         127.0.0.1/8`;
  expect(parseDomifaddr(out, "52:54:00:EF:78:26")).toEqual(["192.168.100.66"]);
  expect(parseDomifaddr(out, "52:54:00:00:00:01")).toEqual([]);
  // a stale lease and the new one: the continuation line belongs to the same MAC
  const two = ` Name       MAC address          Protocol     Address
-------------------------------------------------------------------------------
 vnet1      52:54:00:7f:cd:21    ipv4         192.168.100.166/24
 -          -                    ipv4         192.168.100.167/24
 vnet2      52:54:00:00:00:02    ipv4         192.168.100.20/24
 -          -                    ipv4         192.168.100.21/24
`;
  expect(parseDomifaddr(two, "52:54:00:7f:cd:21")).toEqual(["192.168.100.166", "192.168.100.167"]);
  expect(parseDomifaddr(two, "52:54:00:00:00:02")).toEqual(["192.168.100.20", "192.168.100.21"]);
});

// cloud-init reads its documents with PyYAML (YAML 1.1): read them back with it, not with the library that wrote them
const pyyaml = async (text: string) =>
  JSON.parse((await run("python3", ["-c", "import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))"], { timeoutMs: 30_000, input: text })).stdout);

test("a MAC of digits only reaches cloud-init as a string (YAML 1.1 read it as a base-60 integer: the guest never got its network)", async () => {
  const digits = { ...vm, name: "vm-101", mac: macFor("vm-101") };
  expect(digits.mac).toBe("52:54:00:00:23:08");
  const net = await pyyaml(cloudInitDocs(digits).networkConfig);
  expect(net.ethernets.eth0.match.macaddress).toBe("52:54:00:00:23:08");
  expect(net.ethernets.eth0.dhcp4).toBe(true);
  // the author's YAML means to cloud-init what it meant to them: `on` a boolean, a quoted "on" a string
  const u = await pyyaml(cloudInitDocs({ ...digits, extraUserData: "ssh_pwauth: on\nfqdn: \"on\"\nwrite_files:\n  - path: /etc/x\n    permissions: \"0644\"\n" }).userData);
  expect([u.ssh_pwauth, u.fqdn, u.write_files[0].permissions, u.hostname]).toEqual([true, "on", "0644", "vm-101"]);
}, 70_000); // two python3 runs, each allowed 30 s (python3 can be a pyenv shim, slow on a loaded machine): not jest's 5 s
