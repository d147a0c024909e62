// The Vm component under Pulumi's mocks: which resources it registers, with exactly which inputs, and how they are
// wired (the placement takes its ISO path from the ISO resource's output: it cannot start before the ISO exists).
import * as pulumi from "@pulumi/pulumi";
import { MIGRATION_DEFAULTS, parseSpec } from "../../config/spec";
import { resolve } from "../../config/resolve";
import { specialSecretSig, specialSigKey } from "@pulumi/pulumi/runtime/rpc";
import { cloudInitDocs } from "../../cloud-init/documents";

type Registered = { type: string; name: string; inputs: Record<string, unknown> };
const registered: Registered[] = [];

pulumi.runtime.setMocks({
  newResource: (args) => {
    registered.push({ type: args.type, name: args.name, inputs: args.inputs });
    const state: Record<string, unknown> = { ...args.inputs };
    if (args.type === "pulumi-nodejs:dynamic/vm-infra:SeedIso") state.path = "/iso/web-1-built.iso";
    if (args.type === "pulumi-nodejs:dynamic/vm-infra:Placement")
      Object.assign(state, { isoVolume: "web-1-cidata-x.iso", uuid: "u-1", lastMigration: undefined, powerState: "running", boots: 1 });
    if (args.type === "pulumi-nodejs:dynamic/vm-infra:Ready") state.address = "192.168.100.50";
    if (args.type === "pulumi-nodejs:dynamic/vm-infra:BaseImageVolume") state.volume = args.inputs.volume;
    if (args.type === "pulumi-nodejs:dynamic/vm-infra:HostKey") Object.assign(state, HOST_KEY);
    return { id: `${args.name}-id`, state };
  },
  call: () => ({}),
}, "vm-infra", "unit", false);

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBsDSiUG+pm/RKi1LSX+t9/dajLwyJtlG+n01nxm0rVf lab";
const HOST_KEY = { publicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOq1kYvR3Gc3mO8ZbqPgmYc3xQYqkQq6yH6o3J0Zb1Cd",
  privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n" };
const spec = parseSpec({
  hosts: { "hv-a": { uri: "qemu+unix:///system?socket=/run/a", network: "lab", domainType: "qemu", guestNetns: "ns-a" }, "hv-b": { uri: "qemu+unix:///system?socket=/run/b", sharedPool: "shared" } },
  image: { volume: "base.qcow2" },
  readiness: { privateKeyPath: "/keys/id" },
  vms: [{ name: "web-1", host: "hv-a", sshKeys: [KEY], memoryMiB: 2048 }],
});

const out = <T>(o: pulumi.Output<T>) => new Promise<T>((r) => o.apply(r));

test("a Vm registers the seed ISO, the placement unit and readiness, wired in that order", async () => {
  const { BaseImage } = await import("../../components/BaseImage");
  const { Vm } = await import("../../components/Vm");
  const vm = spec.vms[0];
  const base = new BaseImage("base-hv-a", { host: spec.hosts["hv-a"], image: spec.image });
  const c = new Vm("web-1", { resolved: resolve(spec)[0], image: spec.image, baseImage: base, readiness: spec.readiness, isoDir: "/iso" });
  expect(await out(c.address)).toBe("192.168.100.50");
  expect(await out(c.sshCommand)).toBe("ip netns exec ns-a ssh -o HostKeyAlias=web-1 -i /keys/id debian@192.168.100.50");
  expect(await out(c.hostKey)).toBe(HOST_KEY.publicKey);
  expect(await out(c.knownHosts)).toBe(`web-1 ${HOST_KEY.publicKey}`);
  expect(c.instanceId).toBe("iid-vm-infra-web-1");

  const byName = Object.fromEntries(registered.map((r) => [r.name, r]));
  expect(registered.map((r) => `${r.type} ${r.name}`).sort()).toEqual([
    "pulumi-nodejs:dynamic/vm-infra:BaseImageVolume base-hv-a-volume",
    "pulumi-nodejs:dynamic/vm-infra:HostKey web-1-hostkey",
    "pulumi-nodejs:dynamic/vm-infra:Placement web-1-placement",
    "pulumi-nodejs:dynamic/vm-infra:Ready web-1-ready",
    "pulumi-nodejs:dynamic/vm-infra:SeedIso web-1-cidata",
    "vm-infra:index:BaseImage base-hv-a",
    "vm-infra:index:Vm web-1",
  ]);
  const docs = cloudInitDocs(vm, HOST_KEY);
  expect(byName["web-1-hostkey"].inputs).toEqual({ __provider: byName["web-1-hostkey"].inputs.__provider, publicKey: undefined, privateKey: undefined, vm: "web-1" });
  const iso = byName["web-1-cidata"].inputs;
  const secret = (value: string) => ({ [specialSigKey]: specialSecretSig, value });
  // the documents (user-data carries keys) are Pulumi secrets; the rest names the file
  expect(iso).toEqual({
    __provider: iso.__provider, path: undefined, instance: undefined, sha256: undefined,
    dir: "/iso", vm: "web-1", hash: docs.hash, userData: secret(docs.userData), metaData: secret(docs.metaData), networkConfig: secret(docs.networkConfig),
  });
  const p = byName["web-1-placement"].inputs;
  // outputs the provider fills in are registered as undefined: exactly the inputs the component gives, nothing else
  const unset = Object.fromEntries(["overlayVolume", "isoVolume", "diskPath", "isoPath", "uuid", "lastMigration", "leftovers", "instance", "powerState",
    "boots", "missing"].map((k) => [k, undefined]));
  expect(p).toEqual({
    __provider: p.__provider, ...unset,
    name: "web-1", hostName: "hv-a", uri: "qemu+unix:///system?socket=/run/a", pool: "default", network: "lab", bridge: undefined, domainType: "qemu", vcpus: 1, memoryMiB: 2048,
    mac: vm.mac, kernel: undefined, initrd: undefined, cmdline: undefined,
    diskGiB: 4, baseVolume: "base.qcow2", isoFile: "/iso/web-1-built.iso", isoHash: docs.seedHash, storage: "local", migration: MIGRATION_DEFAULTS,
    migrationUri: undefined, guestNetns: "ns-a", user: "debian", privateKeyPath: "/keys/id", hostKey: HOST_KEY.publicKey, staticAddress: undefined,
    knownHosts: { "hv-a": { uri: "qemu+unix:///system?socket=/run/a", pool: "default" }, "hv-b": { uri: "qemu+unix:///system?socket=/run/b", pool: "default" } },
    owner: { project: "vm-infra", stack: "unit", resource: "web-1-placement" },
  });
  const ready = byName["web-1-ready"].inputs;
  expect(ready).toEqual({ __provider: ready.__provider, address: undefined, readySeconds: undefined, status: undefined, verifiedHostKey: undefined,
    hostKey: HOST_KEY.publicKey, hostKeyPrivate: secret(HOST_KEY.privateKey),
    name: "web-1", uri: "qemu+unix:///system?socket=/run/a", mac: vm.mac, user: "debian", privateKeyPath: "/keys/id", netns: "ns-a", staticAddress: undefined,
    timeoutSeconds: 600, powerState: "running", generation: "hv-a/web-1-cidata-x.iso/u-1/1/2048/1" });
});

test("a Vm with provision registers the playbook run after readiness, its secret vars as a Pulumi secret", async () => {
  registered.length = 0;
  const { BaseImage } = await import("../../components/BaseImage");
  const { Vm } = await import("../../components/Vm");
  const base = new BaseImage("base-hv-a-2", { host: spec.hosts["hv-a"], image: spec.image });
  const c = new Vm("web-1", {
    resolved: resolve(spec)[0], image: spec.image, baseImage: base, readiness: spec.readiness, isoDir: "/iso",
    provision: { playbook: "/p/ansible/site.yml", playbookHash: "h1", vars: { app_config: "x" }, tags: ["web"], timeoutSeconds: 600, secretVars: { app_secret: "s3cret" } },
  });
  await out(c.provisioned);
  const p = registered.find((r) => r.name === "web-1-provision");
  const secret = (value: unknown) => ({ [specialSigKey]: specialSecretSig, value });
  expect(p?.type).toBe("pulumi-nodejs:dynamic/vm-infra:Provision");
  expect(p?.inputs).toEqual({
    __provider: p?.inputs.__provider, result: undefined, name: "web-1", hostName: "hv-a", vmId: "u-1", address: "192.168.100.50", status: undefined, user: "debian",
    privateKeyPath: "/keys/id", hostKey: HOST_KEY.publicKey, netns: "ns-a", playbook: "/p/ansible/site.yml", playbookHash: "h1", vars: { app_config: "x" },
    secretVars: secret({ app_secret: "s3cret" }), tags: ["web"], timeoutSeconds: 600,
  });
});
