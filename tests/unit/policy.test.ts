// The policy pack's rules (policy/rules.ts), and the provider's check that tells them a move from a stay.
import {
  POLICY_DEFAULTS, antiAffinity, blastRadius, copiedMoveBandwidth, downtimeCeiling, hostCapacity, postcopyForStateful, productionNeedsKvm,
  sizeCeiling, stackOfUrn, type PlacementView,
} from "../../policy/rules";
import { checkedInputs, type PlacementInputs } from "../../providers/placement/rules";

const vm = (name: string, o: Partial<PlacementView> = {}): PlacementView => ({
  name, hostName: "hv-a", vcpus: 1, memoryMiB: 1024, storage: "local", domainType: "kvm",
  migration: { mode: "live", bandwidthMiBs: 0, maxDowntimeMs: 300, postcopy: false },
  knownHosts: { "hv-a": {}, "hv-b": {} }, ...o,
});
const mig = (o: Partial<PlacementView["migration"]>) => ({ ...vm("x").migration, ...o });

describe("no post-copy for stateful VMs", () => {
  test("a VM tagged db with postcopy is refused, naming the VM, the tag and the fix", () => {
    expect(postcopyForStateful(vm("db-1", { tags: ["db", "eu"], migration: mig({ postcopy: true }) }), POLICY_DEFAULTS.statefulTags)).toEqual([
      "vm db-1: post-copy is not allowed for a stateful VM (tagged db): a network failure after the switch to post-copy leaves no complete copy " +
      "on either host. Set vms[db-1].migration.postcopy to false"]);
  });
  test("post-copy on an untagged VM, or a db VM without post-copy, passes", () => {
    expect(postcopyForStateful(vm("web-1", { migration: mig({ postcopy: true }) }), POLICY_DEFAULTS.statefulTags)).toEqual([]);
    expect(postcopyForStateful(vm("db-1", { tags: ["db"] }), POLICY_DEFAULTS.statefulTags)).toEqual([]);
    expect(postcopyForStateful(vm("db-1", { tags: ["db"], migration: mig({ postcopy: true }) }), ["pg"])).toEqual([]);
  });
});

describe("copied-storage moves carry a bandwidth cap", () => {
  test("a local-storage move without a cap is refused; with a cap, on shared storage or without a move it passes", () => {
    expect(copiedMoveBandwidth(vm("web-1", { hostName: "hv-b", moveFrom: "hv-a" }))).toEqual([
      "vm web-1: its move hv-a -> hv-b copies its disks with no bandwidth cap, which can fill the link the hosts share. " +
      "Set vms[web-1].migration.bandwidthMiBs (MiB/s)"]);
    expect(copiedMoveBandwidth(vm("web-1", { hostName: "hv-b", moveFrom: "hv-a", migration: mig({ bandwidthMiBs: 100 }) }))).toEqual([]);
    expect(copiedMoveBandwidth(vm("web-1", { hostName: "hv-b", moveFrom: "hv-a", storage: "shared" }))).toEqual([]);
    expect(copiedMoveBandwidth(vm("web-1"))).toEqual([]);
  });
});

test("downtime and size ceilings name the value and the ceiling", () => {
  expect(downtimeCeiling(vm("web-1", { migration: mig({ maxDowntimeMs: 501 }) }), 500)).toEqual([
    "vm web-1: migration.maxDowntimeMs 501 is above the ceiling of 500 ms. Lower vms[web-1].migration.maxDowntimeMs"]);
  expect(downtimeCeiling(vm("web-1", { migration: mig({ maxDowntimeMs: 500 }) }), 500)).toEqual([]);
  expect(sizeCeiling(vm("big", { memoryMiB: 4096, vcpus: 9 }), { maxMemoryMiB: 2048, maxVcpus: 8 })).toEqual([
    "vm big: memoryMiB 4096 is above the ceiling of 2048 MiB", "vm big: vcpus 9 is above the ceiling of 8"]);
  expect(sizeCeiling(vm("ok", { memoryMiB: 2048, vcpus: 8 }), { maxMemoryMiB: 2048, maxVcpus: 8 })).toEqual([]);
});

test("production stacks (by the default pattern) never run qemu; other stacks may", () => {
  const tcg = vm("web-1", { domainType: "qemu" });
  expect(productionNeedsKvm(tcg, "prod-eu", POLICY_DEFAULTS.productionStacks)).toEqual([
    "vm web-1: stack prod-eu is a production stack (matches ^prod(uction)?([-_.].*)?$) and host hv-a runs it with domainType qemu " +
    "(emulation, no KVM). Set hosts.hv-a.domainType to kvm"]);
  for (const s of ["production", "prod", "prod.eu"]) expect(productionNeedsKvm(tcg, s, POLICY_DEFAULTS.productionStacks)).toHaveLength(1);
  for (const s of ["dev", "preprod", "product-demo", "staging"]) expect(productionNeedsKvm(tcg, s, POLICY_DEFAULTS.productionStacks)).toEqual([]);
  expect(productionNeedsKvm(vm("web-1"), "prod", POLICY_DEFAULTS.productionStacks)).toEqual([]);
  expect(stackOfUrn("urn:pulumi:prod-eu::vm-infra::vm-infra:index:Vm$pulumi-nodejs:dynamic/vm-infra:Placement::web-1-placement")).toBe("prod-eu");
});

test("host capacity: the VMs placed on a host add up to at most its declared memory and vCPUs", () => {
  const hosts = { "hv-a": { capacity: { memoryMiB: 2048, vcpus: 2 } }, "hv-b": {} };
  const fleetOf = (...vms: PlacementView[]) => vms.map((v) => ({ ...v, knownHosts: hosts }));
  expect(hostCapacity(fleetOf(vm("b", { memoryMiB: 1024 }), vm("a", { memoryMiB: 1536, vcpus: 2 }), vm("c", { hostName: "hv-b", memoryMiB: 8192 })))).toEqual([
    "host hv-a: its VMs (a, b) need 2560 MiB of memory, above its capacity of 2048 MiB",
    "host hv-a: its VMs (a, b) need 3 vCPUs, above its capacity of 2"]);
  expect(hostCapacity(fleetOf(vm("a", { memoryMiB: 1024 }), vm("b", { memoryMiB: 1024, vcpus: 1 })))).toEqual([]);
});

test("anti-affinity: two VMs of one group on one host are refused, on different hosts they pass", () => {
  expect(antiAffinity([vm("web-2", { group: "web" }), vm("web-1", { group: "web" }), vm("db-1", { group: "db" })])).toEqual([
    "group web: web-1, web-2 would all run on hv-a; VMs of one group must be on different hosts"]);
  expect(antiAffinity([vm("web-1", { group: "web" }), vm("web-2", { group: "web", hostName: "hv-b" }), vm("x"), vm("y")])).toEqual([]);
});

test("blast radius: more moves than the limit in one update are refused, listing them", () => {
  const moving = (n: string) => vm(n, { hostName: "hv-b", moveFrom: "hv-a" });
  expect(blastRadius([moving("c"), moving("a"), vm("b"), moving("d")], 2)).toEqual([
    "this update moves 3 VMs (a hv-a -> hv-b, c hv-a -> hv-b, d hv-a -> hv-b), above the limit of 2 per update: split it into several updates"]);
  expect(blastRadius([moving("a"), moving("b"), vm("c")], 2)).toEqual([]);
  // a drain empties its host whatever it holds (the move limits pace it): its moves are not counted
  const drained = (n: string) => vm(n, { hostName: "hv-b", moveFrom: "hv-a", drainedFrom: "hv-a" });
  expect(blastRadius([drained("a"), drained("b"), drained("c"), moving("d")], 2)).toEqual([]);
});

describe("check tells the policies which placements move (moveFrom)", () => {
  const inputs = (hostName: string, extra: Partial<PlacementInputs> = {}) => ({ name: "web-1", hostName, ...extra }) as PlacementInputs;
  test("a change of host is marked with the host it leaves", () => {
    expect(checkedInputs(inputs("hv-a"), inputs("hv-b")).moveFrom).toBe("hv-a");
  });
  test("a create, a stay, or a moveFrom the program (or an earlier check) put there is not a move", () => {
    expect(checkedInputs({}, inputs("hv-b"))).toEqual(inputs("hv-b"));
    expect(checkedInputs(inputs("hv-b", { moveFrom: "hv-a" }), inputs("hv-b", { moveFrom: "hv-c" }))).toEqual(inputs("hv-b"));
  });
});
