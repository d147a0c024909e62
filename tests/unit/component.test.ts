// The Vm component under Pulumi's mocks: which resources it registers, with exactly which inputs, and how they are
// wired (the placement takes its ISO path from the command's output: it cannot start before the ISO exists).
import * as pulumi from "@pulumi/pulumi";
import { MIGRATION_DEFAULTS, parseSpec } from "../../config/spec";
import { BUILD_ISO_SCRIPT } from "../../cloud-init/buildIso";
import { cloudInitDocs } from "../../cloud-init/documents";

type Registered = { type: string; name: string; inputs: Record<string, unknown> };
const registered: Registered[] = [];

pulumi.runtime.setMocks({
  newResource: (args) => {
    registered.push({ type: args.type, name: args.name, inputs: args.inputs });
    const state: Record<string, unknown> = { ...args.inputs };
    if (args.type === "command:local:Command") state.stdout = "/iso/web-1-built.iso";
    if (args.type === "pulumi-nodejs:dynamic:Resource" && args.name.endsWith("-placement")) Object.assign(state, { isoVolume: "web-1-cidata-x.iso", uuid: "u-1", lastMigration: undefined });
    if (args.type === "pulumi-nodejs:dynamic:Resource" && args.name.endsWith("-ready")) state.address = "192.168.100.50";
    if (args.type === "pulumi-nodejs:dynamic:Resource" && args.name.endsWith("-volume")) state.volume = args.inputs.volume;
    return { id: `${args.name}-id`, state };
  },
  call: () => ({}),
}, "vm-infra", "unit", false);

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBsDSiUG+pm/RKi1LSX+t9/dajLwyJtlG+n01nxm0rVf lab";
const spec = parseSpec({
  hosts: { "hv-a": { uri: "qemu:///a", network: "lab", domainType: "qemu", guestNetns: "ns-a" }, "hv-b": { uri: "qemu:///b", sharedPool: "shared" } },
  image: { volume: "base.qcow2" },
  readiness: { privateKeyPath: "/keys/id" },
  vms: [{ name: "web-1", host: "hv-a", sshKeys: [KEY], memoryMiB: 2048 }],
});

const out = <T>(o: pulumi.Output<T>) => new Promise<T>((r) => o.apply(r));

test("a Vm registers the ISO command, the placement unit and readiness, wired in that order", async () => {
  const { BaseImage } = await import("../../components/BaseImage");
  const { Vm } = await import("../../components/Vm");
  const vm = spec.vms[0];
  const base = new BaseImage("base-hv-a", { host: spec.hosts["hv-a"], image: spec.image });
  const c = new Vm("web-1", { vm, host: spec.hosts["hv-a"], hosts: spec.hosts, image: spec.image, baseImage: base, readiness: spec.readiness, isoDir: "/iso" });
  expect(await out(c.address)).toBe("192.168.100.50");
  expect(await out(c.sshCommand)).toBe("ip netns exec ns-a ssh -i /keys/id debian@192.168.100.50");
  expect(c.instanceId).toBe("iid-vm-infra-web-1");

  const byName = Object.fromEntries(registered.map((r) => [r.name, r]));
  expect(registered.map((r) => `${r.type} ${r.name}`).sort()).toEqual([
    "command:local:Command web-1-cidata",
    "pulumi-nodejs:dynamic:Resource base-hv-a-volume",
    "pulumi-nodejs:dynamic:Resource web-1-placement",
    "pulumi-nodejs:dynamic:Resource web-1-ready",
    "vm-infra:index:BaseImage base-hv-a",
    "vm-infra:index:Vm web-1",
  ]);
  const docs = cloudInitDocs(vm);
  const cmd = byName["web-1-cidata"].inputs;
  expect(cmd.create).toBe(BUILD_ISO_SCRIPT); // constant: no value is interpolated into the script
  expect(cmd.triggers).toEqual([docs.hash]);
  // the whole environment (user-data carries keys) is registered as one Pulumi secret
  expect(cmd.environment).toEqual({
    "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
    value: {
      VMI_ISO_DIR: "/iso", VMI_ISO_NAME: `web-1-${docs.hash.slice(0, 16)}.iso`, VMI_USER_DATA: docs.userData, VMI_META_DATA: docs.metaData,
      VMI_NETWORK_CONFIG: docs.networkConfig,
    },
  });
  const p = byName["web-1-placement"].inputs;
  expect(p).toMatchObject({
    name: "web-1", hostName: "hv-a", uri: "qemu:///a", pool: "default", network: "lab", domainType: "qemu", vcpus: 1, memoryMiB: 2048,
    diskGiB: 4, baseVolume: "base.qcow2", isoFile: "/iso/web-1-built.iso", isoHash: docs.hash, storage: "local", migration: MIGRATION_DEFAULTS,
    knownHosts: { "hv-a": { uri: "qemu:///a", pool: "default" }, "hv-b": { uri: "qemu:///b", pool: "default" } },
  });
  expect(byName["web-1-ready"].inputs).toMatchObject({ name: "web-1", uri: "qemu:///a", user: "debian", netns: "ns-a", generation: "hv-a/web-1-cidata-x.iso/u-1/2048/1" });
});
