// config/resolve.ts: what each VM needs, decided once (pool per host, which host uploads its base image, its static
// IP, its domain properties), exactly.
import { macFor, parseSpec } from "../../config/spec";
import { resolve } from "../../config/resolve";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBsDSiUG+pm/RKi1LSX+t9/dajLwyJtlG+n01nxm0rVf lab";
const spec = parseSpec({
  hosts: {
    "hv-b": { uri: "qemu+unix:///system?socket=/run/b", pool: "pb", sharedPool: "nfs" },
    "hv-a": { uri: "qemu+unix:///system?socket=/run/a", network: "lab", domainType: "qemu", sharedPool: "nfs" },
    "hv-c": { uri: "qemu+unix:///system?socket=/run/c", bridge: "br0" },
  },
  image: { volume: "base.qcow2", kernel: "/k", initrd: "/i", cmdline: "console=ttyS0" },
  readiness: { privateKeyPath: "/keys/id" },
  vms: [
    { name: "db", host: "hv-b", sshKeys: [KEY], storage: "shared", vcpus: 2, address: { cidr: "10.0.0.5/24" } },
    { name: "web", host: "hv-b", sshKeys: [KEY] },
    { name: "app", host: "hv-c", sshKeys: [KEY], memoryMiB: 512 },
  ],
});

test("a shared-storage VM uses the shared pool on every host sharing it, and its image is uploaded once, by the first such host by name", () => {
  const [db] = resolve(spec);
  expect(db.knownHosts).toEqual({ "hv-a": { uri: "qemu+unix:///system?socket=/run/a", pool: "nfs" }, "hv-b": { uri: "qemu+unix:///system?socket=/run/b", pool: "nfs" }, "hv-c": { uri: "qemu+unix:///system?socket=/run/c", pool: "default" } });
  expect(db.image).toEqual({ key: "shared-nfs", host: { ...spec.hosts["hv-a"], pool: "nfs" } });
  expect(db.staticIp).toBe("10.0.0.5");
  expect(db.domain).toEqual({ vcpus: 2, memoryMiB: 1024, mac: macFor("db"), domainType: "kvm", network: "default", bridge: undefined,
    kernel: "/k", initrd: "/i", cmdline: "console=ttyS0" });
});

test("a local-storage VM uses each host's own pool and its host's image; no static IP without an address", () => {
  const [, web, app] = resolve(spec);
  expect(web.knownHosts).toEqual({ "hv-a": { uri: "qemu+unix:///system?socket=/run/a", pool: "default" }, "hv-b": { uri: "qemu+unix:///system?socket=/run/b", pool: "pb" }, "hv-c": { uri: "qemu+unix:///system?socket=/run/c", pool: "default" } });
  expect(web.image).toEqual({ key: "hv-b", host: spec.hosts["hv-b"] });
  expect("staticIp" in web).toBe(false);
  expect(app.domain).toEqual({ vcpus: 1, memoryMiB: 512, mac: macFor("app"), domainType: "kvm", network: "default", bridge: "br0",
    kernel: "/k", initrd: "/i", cmdline: "console=ttyS0" });
});
