// Run it again and it converges (issue 14), and a replacement never deletes its replacement (issue 15), on the real
// engine and lab with one VM: each case removes or replaces one part the way an operator (or an accident) would, then
// runs a plain `pulumi up` (Pulumi.yaml refreshes first), and ends with the VM running, reachable over SSH, every part
// where the domain points, and a second up that changes nothing.
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { poll } from "../../host/poll";
import { run } from "../../host/runner";
import { parseDomainXml, parseVolumeXml } from "../../libvirt/domain";
import { labDown } from "../../lab/hosts";
import { Image } from "../../lab/image";
import { ensureLab, writeLabStack } from "../../lab/stack";
import { killPulumi, whileHeld } from "../support/faults";
import { extended, outputs, pulumi, up, upExpectingFailure, urnName } from "../support/pulumiCli";
import { GUEST, guestSsh, pinnedKey, virsh } from "../support/lab";

jest.setTimeout(60 * 60_000);

const root = path.join(__dirname, "..", "..");
const h = { dir: root, stack: "e2e-cv" };
const VM = "cv-1";
let image: Image;
let publicKey: string;
const hv = () => virsh("hv-a");

type Res = { urn: string; type: string; outputs: Record<string, unknown> };
async function resources(): Promise<Res[]> {
  const { stdout } = await pulumi(h, ["stack", "export"]);
  return JSON.parse(stdout).deployment.resources as Res[];
}
const res = async (suffix: string) => {
  const r = (await resources()).find((x) => x.urn.endsWith(`::${suffix}`));
  if (!r) throw new Error(`${suffix} not in state`);
  return r;
};
const placement = async () => (await res(`${VM}-placement`)).outputs;
const vmsOut = async () => (await outputs(h)).vms as Record<string, { address: string; hostKey: string }>;
const ssh = async (line: string) => {
  const vms = await vmsOut();
  return guestSsh("ops", vms[VM].address, "hv-a", pinnedKey(vms, VM), [line]);
};

/** The VM runs; its disks are where the domain points, the overlay's backing file is in the pool; SSH works. */
async function expectHealthy(): Promise<void> {
  const v = hv();
  expect(await v.domainState(VM)).toBe("running");
  const live = parseDomainXml(await v.exec(["dumpxml", "--", VM]));
  const p = await placement();
  expect(live.diskPaths).toEqual([await v.volumePath("default", p.overlayVolume as string), await v.volumePath("default", p.isoVolume as string)]);
  const backing = parseVolumeXml(await v.exec(["vol-dumpxml", "--pool", "default", "--", p.overlayVolume as string])).backingPath;
  expect(backing).toBe(await v.volumePath("default", p.baseVolume as string));
  expect((await ssh("hostname")).stdout.trim()).toBe(VM);
}

/** Reboots the guest from inside and waits until SSH answers again (the disk and seed must be readable from scratch). */
async function rebootAndSsh(): Promise<void> {
  const before = (await ssh("cat /proc/sys/kernel/random/boot_id")).stdout.trim();
  await ssh("sudo systemctl reboot || true").catch(() => undefined);
  const end = Date.now() + 300_000;
  for (;;) {
    const now = await ssh("cat /proc/sys/kernel/random/boot_id").then((r) => r.stdout.trim(), () => "");
    if (now && now !== before) return;
    if (Date.now() > end) throw new Error(`${VM} did not come back over SSH after a reboot`);
    await new Promise((r) => setTimeout(r, 3000));
  }
}

const noChanges = () => up(h, ["--expect-no-changes"]);

beforeAll(async () => {
  ({ image, publicKey } = await ensureLab());
  for (const args of [["cancel", "--yes"], ["destroy", "--yes", "--skip-preview"], ["stack", "rm", "--yes", "--force"]])
    await pulumi(h, args, 600_000, [0, 1, 255]).catch(() => undefined);
  await run("pulumi", ["stack", "init", h.stack, "--cwd", root, "--non-interactive"], { timeoutMs: 60_000 });
  await writeLabStack(root, h.stack, [{ name: VM, host: "hv-a", ...GUEST }], image, publicKey);
  await up(h);
  await ssh("echo kept > /home/ops/marker && sync");
});

afterAll(async () => {
  await ensureLab().catch(() => undefined);
  await pulumi(h, ["destroy", "--yes", "--skip-preview"]).catch(() => undefined);
  await pulumi(h, ["stack", "rm", "--yes", "--force"]).catch(() => undefined);
});

test("the domain undefined by hand: up defines it again on the same disk", async () => {
  await hv().exec(["destroy", "--", VM]);
  await hv().exec(["undefine", "--", VM]);
  await up(h);
  await expectHealthy();
  expect((await ssh("cat /home/ops/marker")).stdout.trim()).toBe("kept");
  await noChanges();
});

test("the ISO volume deleted from the pool: up uploads it again, the VM keeps running", async () => {
  const iso = (await placement()).isoVolume as string;
  const pid = (await run("pgrep", ["-f", `guest=${VM},`], { timeoutMs: 10_000 })).stdout.trim();
  await hv().exec(["vol-delete", "--pool", "default", "--", iso]);
  await up(h);
  expect(await hv().volumeExists("default", iso)).toBe(true);
  expect((await run("pgrep", ["-f", `guest=${VM},`], { timeoutMs: 10_000 })).stdout.trim()).toBe(pid); // the same qemu: no restart
  await expectHealthy();
  await noChanges();
});

test("the local ISO file deleted: up builds it again, in this stack's own directory", async () => {
  const r = await res(`${VM}-cidata`);
  const file = r.outputs.path as string;
  expect(path.dirname(file)).toBe(path.join(root, ".vm-infra", "iso", h.stack));
  rmSync(file);
  await up(h);
  const again = (await res(`${VM}-cidata`)).outputs.path as string;
  expect(existsSync(again)).toBe(true);
  await expectHealthy();
  await noChanges();
});

test("the base image deleted from the pool under a running VM: up uploads it again, where the overlay's backing file points", async () => {
  const base = (await placement()).baseVolume as string;
  await hv().exec(["vol-delete", "--pool", "default", "--", base]);
  await up(h);
  expect(await hv().volumeExists("default", base)).toBe(true);
  await expectHealthy(); // checks the overlay's backing file is that volume's path (the replace cases below reboot on it)
  await noChanges();
});

test("a running VM's disk deleted: up refuses, says why and what to do; after a shutdown up gives it a new disk", async () => {
  const overlay = (await placement()).overlayVolume as string;
  await hv().exec(["vol-delete", "--pool", "default", "--", overlay]);
  const out = await upExpectingFailure(h);
  expect(out).toContain(`its disk ${overlay} was deleted from pool default while ${VM} is running: qemu holds the only copy of its data`);
  expect(await hv().domainState(VM)).toBe("running"); // nothing was stopped
  await hv().exec(["destroy", "--", VM]);
  await up(h);
  await expectHealthy();
  expect((await ssh("test -e /home/ops/marker && echo present || echo absent")).stdout.trim()).toBe("absent"); // a new, empty disk
  await noChanges();
  await ssh("echo kept > /home/ops/marker && sync");
});

// the three in one update (each is replaced; one reboot then proves the disks and the seed the VM boots from)
test("up --replace of the base image, the seed ISO and readiness keeps the VM, its disks and its seed where they are", async () => {
  const names = ["base-hv-a-volume", `${VM}-cidata`, `${VM}-ready`];
  const before = await Promise.all(names.map(res));
  const uuid = (await placement()).uuid;
  const r = await up(h, before.flatMap((x) => ["--replace", x.urn]));
  expect(r.stdout).toMatch(/\+-3 replaced/);
  expect((await placement()).uuid).toBe(uuid); // the same domain
  await expectHealthy();
  await rebootAndSsh();
  expect((await ssh("cat /home/ops/marker")).stdout.trim()).toBe("kept");
  await noChanges();
});

/** The engine's pending operations in the state ("creating <resource>"): what a killed run was doing. */
const pending = async () => ((JSON.parse((await pulumi(h, ["stack", "export"])).stdout).deployment.pending_operations ?? []) as { type: string; resource: { urn: string } }[])
  .map((o) => `${o.type} ${urnName(o.resource.urn)}`);

// an up killed inside a create, after its volumes are made and before its domain is: nothing records them (the state
// holds a pending create, not the volumes), so the next create names them and removes none
test("up --replace of the placement (old one removed first: the name is the domain's) killed in its create: the next up creates the VM and names what the killed one left", async () => {
  const p = await placement();
  const named = async () => (await hv().listVolumes("default")).filter((v) => v.startsWith(`${VM}-`)).sort();
  const before = await named();
  const log = path.join(root, ".vm-infra", `commands-${h.stack}.log`);
  writeFileSync(log, "");
  process.env.VM_INFRA_COMMAND_LOG = log;
  const first = up(h, ["--replace", (await res(`${VM}-placement`)).urn]).catch((e: Error) => e);
  delete process.env.VM_INFRA_COMMAND_LOG;
  // the create's seed upload starts (its overlay and seed volumes exist): hv-a's libvirtd is held there while the up is killed
  await poll(async () => (readFileSync(log, "utf8").includes('"virsh vol-upload"') ? { value: true } : undefined), { timeoutMs: 180_000, intervalMs: 10, what: "the create's seed upload" });
  await whileHeld("hv-a", () => killPulumi(h.stack));
  expect(await first).toBeInstanceOf(Error);
  expect(await pending()).toEqual([`creating ${VM}-placement`]);
  expect(await hv().domainState(VM)).toBeUndefined(); // the old one was removed; the new one never defined
  // the killed create's overlay and seed, of one instance; the replaced placement's volumes are gone
  const left = await named();
  const made = left.filter((v) => !before.includes(v));
  const instance = new RegExp(`^${VM}-([0-9a-f]{8})\\.qcow2$`).exec(made[1] ?? "")?.[1];
  expect(made).toEqual([expect.stringMatching(new RegExp(`^${VM}-${instance}-cidata-[0-9a-f]{12}\\.iso$`)), `${VM}-${instance}.qcow2`]);
  expect(left).not.toContain(p.overlayVolume);
  // the documented recovery: the dead run's lock, then its pending create (the engine keeps one through any number of
  // successful ups; it records nothing a refresh could import), then a plain up
  await pulumi(h, ["cancel", "--yes"], 60_000, [0, 1, 255]);
  await pulumi(h, ["refresh", "--clear-pending-creates", "--yes", "--skip-preview"]);
  expect(await pending()).toEqual([]);
  const r = await up(h);
  expect(r.stdout).toContain(`${VM}: pool default on hv-a holds ${left.length} volume(s) named for ${VM} that are not this create's: ${left.join(", ")}; left by a create of ` +
    `${VM} killed before the state recorded it. Left in place: remove them (virsh vol-delete --pool default NAME) once you know nothing needs them`);
  const q = await placement();
  expect(q.uuid).not.toBe(p.uuid);
  expect(left).not.toContain(q.overlayVolume);
  for (const v of left) expect(await hv().volumeExists("default", v)).toBe(true); // named, not removed
  await expectHealthy();
  for (const v of left) await hv().exec(["vol-delete", "--pool", "default", "--", v]);
  await noChanges();
});

// issue 8: a stack `dup` with the same config "created" its VM by adopting dev's, and its destroy deleted dev's VM;
// and a stack's base image was deleted under another stack's overlays
test("a second stack with the same VM is refused, and its destroy leaves the first stack's VM and the base image under it", async () => {
  const dup = { dir: root, stack: "e2e-cv-dup" };
  await pulumi(dup, ["stack", "rm", "--yes", "--force"], 60_000, [0, 255]).catch(() => undefined);
  await run("pulumi", ["stack", "init", dup.stack, "--cwd", root, "--non-interactive"], { timeoutMs: 60_000 });
  try {
    await writeLabStack(root, dup.stack, [{ name: VM, host: "hv-a", ...GUEST }], image, publicKey);
    const p = await placement();
    const out = await upExpectingFailure(dup);
    expect(out).toContain(`a domain named ${VM} already exists on hv-a (made by vm-infra project vm-infra, stack ${h.stack}, resource ${VM}-placement)`);
    const base = p.baseVolume as string;
    const d = await pulumi(dup, ["destroy", "--yes", "--skip-preview"]);
    expect(d.stdout).toContain(`base image ${base} on hv-a kept: 1 volume(s) in pool default stand on it (${p.overlayVolume})`);
    expect(await hv().volumeExists("default", base)).toBe(true);
    expect((await hv().exec(["domuuid", "--", VM])).trim()).toBe(p.uuid);
    await expectHealthy();
    await noChanges();
  } finally {
    await pulumi(dup, ["stack", "rm", "--yes", "--force"], 60_000, [0, 255]).catch(() => undefined);
  }
});

// issue 8: a second stack with the same VM silently adopted it (and its destroy deleted it); adoption is now explicit
test("a stack that lost its VM from the state is refused the name, then adopts it explicitly by UUID without a restart", async () => {
  const p = await placement();
  const qemu = async () => (await run("pgrep", ["-f", `guest=${VM},`], { timeoutMs: 10_000 })).stdout.trim();
  const pid = await qemu();
  await ssh("echo adopted-with-its-data > /home/ops/marker && sync");
  await pulumi(h, ["state", "delete", "--yes", "--target-dependents", "--", (await res(`${VM}-placement`)).urn]);
  const out = await upExpectingFailure(h);
  expect(out).toContain(`a domain named ${VM} already exists on hv-a (made by vm-infra project vm-infra, stack ${h.stack}, resource ${VM}-placement: ` +
    "this resource's own VM, which the state does not hold (a create killed before the state recorded it, or a `pulumi state delete`)); " +
    `vm-infra does not adopt an existing VM unless told to: remove it, choose another name, or, to manage that VM from this stack, set vms[].adopt ` +
    `to its UUID (${p.uuid})`);
  await writeLabStack(root, h.stack, [{ name: VM, host: "hv-a", ...GUEST, adopt: p.uuid }], image, publicKey);
  await up(h);
  const q = await placement();
  expect([q.uuid, q.overlayVolume, q.isoVolume, q.instance]).toEqual([p.uuid, p.overlayVolume, p.isoVolume, p.instance]);
  expect(await qemu()).toBe(pid); // taken over as it runs
  await expectHealthy();
  expect((await ssh("cat /home/ops/marker")).stdout.trim()).toBe("adopted-with-its-data");
  await noChanges();
});

// extended: every part it recreates is recreated alone by a test above
extended("the whole lab reset (down, up): a plain up brings the VM back", async () => {
  await labDown();
  await ensureLab();
  await up(h);
  await expectHealthy();
  await noChanges();
});
