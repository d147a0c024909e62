// The policy pack (policy/, issue 12) on the real engine: `pulumi preview --policy-pack policy` over stacks that break
// each rule. No VM is booted: a refusal happens before anything runs, which is what is asserted (the hosts' volumes
// and domains are the same before and after). The rules that judge moves (bandwidth cap, blast radius) need VMs in the
// state and are proven in migration.test.ts's preview test.
import * as path from "node:path";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { run } from "../../host/runner";
import { ensureLab, labHostsConfig, writeLabStack } from "../../lab/stack";
import { Image } from "../../lab/image";
import { pulumi } from "../support/pulumiCli";
import { inventory } from "../support/lab";

jest.setTimeout(20 * 60_000);

const root = path.join(__dirname, "..", "..");
const dev = { dir: root, stack: "e2e-policy" };
const prod = { dir: root, stack: "prod-policy" };
let image: Image;
let publicKey: string;
let before: string[];
const cfgDir = mkdtempSync(path.join(tmpdir(), "vmi-policy-"));

const vm = (name: string, o: Record<string, unknown> = {}) => ({ name, host: "hv-a", memoryMiB: 768, diskGiB: 4, user: "ops", ...o });

/** A preview with the pack (and a --policy-pack-config when given): its exit code and all it printed. */
async function preview(h: typeof dev, vms: unknown[], hosts?: Record<string, unknown>, packConfig?: Record<string, unknown>) {
  await writeLabStack(root, h.stack, vms, image, publicKey, hosts ? { "vm-infra:hosts": hosts } : {});
  const extra: string[] = [];
  if (packConfig) {
    const f = path.join(cfgDir, `${h.stack}.json`);
    writeFileSync(f, JSON.stringify(packConfig));
    extra.push("--policy-pack-config", f);
  }
  const r = await pulumi(h, ["preview", "--policy-pack", path.join(root, "policy"), ...extra], 10 * 60_000, [0, 255, 1]);
  return { code: r.exitCode, text: `${r.stdout}\n${r.stderr}` };
}

beforeAll(async () => {
  ({ image, publicKey } = await ensureLab());
  before = await inventory();
  for (const h of [dev, prod]) {
    await run("pulumi", ["stack", "rm", "--yes", "--force", "--cwd", root, "--stack", h.stack, "--non-interactive"], { timeoutMs: 60_000, okCodes: [0, 6, 255] });
    await run("pulumi", ["stack", "init", h.stack, "--cwd", root, "--non-interactive"], { timeoutMs: 60_000 });
  }
});

afterAll(async () => {
  for (const h of [dev, prod]) await pulumi(h, ["stack", "rm", "--yes", "--force"]).catch(() => undefined);
});

afterEach(async () => {
  expect(await inventory()).toEqual(before); // a preview runs nothing on any host
});

test("a compliant stack previews with no policy violation", async () => {
  const r = await preview(dev, [vm("pol-a", { tags: ["db"], group: "web" }), vm("pol-b", { host: "hv-b", group: "web" })]);
  expect(r.code).toBe(0);
  expect(r.text).not.toMatch(/\[(mandatory|advisory)\]/);
  expect(r.text).toContain("vm-infra@v0.1.0");
});

test("every refusal in one preview: post-copy for a db VM, a downtime above the ceiling, a host over capacity, one group on one host", async () => {
  const hosts = labHostsConfig() as Record<string, Record<string, unknown>>;
  hosts["hv-a"] = { ...hosts["hv-a"], capacity: { memoryMiB: 1024, vcpus: 4 } };
  const r = await preview(dev, [
    vm("pol-db", { tags: ["db"], migration: { postcopy: true }, group: "web" }),
    vm("pol-slow", { migration: { maxDowntimeMs: 2000 }, group: "web" }),
  ], hosts);
  expect(r.code).not.toBe(0);
  expect(r.text).toContain("[mandatory]  no-postcopy-for-stateful");
  expect(r.text).toContain("vm pol-db: post-copy is not allowed for a stateful VM (tagged db): a network failure after the switch to " +
    "post-copy leaves no complete copy on either host. Set vms[pol-db].migration.postcopy to false");
  expect(r.text).toContain("[mandatory]  max-downtime-ceiling");
  expect(r.text).toContain("vm pol-slow: migration.maxDowntimeMs 2000 is above the ceiling of 500 ms. Lower vms[pol-slow].migration.maxDowntimeMs");
  expect(r.text).toContain("[mandatory]  host-capacity");
  expect(r.text).toContain("host hv-a: its VMs (pol-db, pol-slow) need 1536 MiB of memory, above its capacity of 1024 MiB");
  expect(r.text).toContain("[mandatory]  anti-affinity");
  expect(r.text).toContain("group web: pol-db, pol-slow would all run on hv-a; VMs of one group must be on different hosts");
  expect(r.text).not.toContain("vm-size-ceiling");
});

test("an up with a violation stops at its preview: nothing is made on any host", async () => {
  await writeLabStack(root, dev.stack, [vm("pol-db", { tags: ["db"], migration: { postcopy: true } })], image, publicKey);
  const r = await pulumi(dev, ["up", "--yes", "--policy-pack", path.join(root, "policy")], 10 * 60_000, [0, 1, 255]);
  expect(r.exitCode).not.toBe(0);
  expect(`${r.stdout}\n${r.stderr}`).toContain("vm pol-db: post-copy is not allowed for a stateful VM");
  const { stdout } = await pulumi(dev, ["stack", "export"]);
  expect(JSON.parse(stdout).deployment.resources ?? []).toEqual([]);
});

test("an advisory rule warns and lets the preview pass; settings come from --policy-pack-config", async () => {
  const r = await preview(dev, [vm("pol-big", { memoryMiB: 1024, vcpus: 2 })], undefined, { "vm-size-ceiling": { maxMemoryMiB: 512, maxVcpus: 1 } });
  expect(r.code).toBe(0);
  expect(r.text).toContain("[advisory]  vm-size-ceiling");
  expect(r.text).toContain("vm pol-big: memoryMiB 1024 is above the ceiling of 512 MiB");
  expect(r.text).toContain("vm pol-big: vcpus 2 is above the ceiling of 1");
  // and a level can be raised: the same rule made mandatory refuses
  const m = await preview(dev, [vm("pol-big", { memoryMiB: 1024 })], undefined, { "vm-size-ceiling": { enforcementLevel: "mandatory", maxMemoryMiB: 512 } });
  expect(m.code).not.toBe(0);
  expect(m.text).toContain("[mandatory]  vm-size-ceiling");
});

test("a production stack (by its name) on domainType qemu is refused (the same VM in a dev stack passed above)", async () => {
  const r = await preview(prod, [vm("pol-a")]);
  expect(r.code).not.toBe(0);
  expect(r.text).toContain("[mandatory]  production-runs-kvm");
  expect(r.text).toContain("vm pol-a: stack prod-policy is a production stack (matches ^prod(uction)?([-_.].*)?$) and host hv-a runs it with " +
    "domainType qemu (emulation, no KVM). Set hosts.hv-a.domainType to kvm");
});
