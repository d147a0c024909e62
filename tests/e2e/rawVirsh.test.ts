// The lab on its own, no Pulumi (issue 3): a domain defined by hand with virsh on the lab image and a NoCloud ISO,
// reached over SSH as the cloud-init user with a fresh ed25519 key, cloud-init done, then live-migrated hv-a -> hv-b
// (shared pool, peer-to-peer over the lab's migration link) and reached over SSH again from hv-b's namespace.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { run } from "../../host/runner";
import { sshRun } from "../../host/ssh";
import { Virsh } from "../../host/virsh";
import { HOSTS, migrationUri, uri } from "../../lab/layout";
import { Base, RawVm, ensureBase, rawBoot, rawRemove } from "../../lab/raw";
import { ensureLab, labImageConfig } from "../../lab/stack";
import { whereIs } from "../support/lab";

jest.setTimeout(30 * 60_000);

const [A, B] = HOSTS;
const keyDir = mkdtempSync(path.join(tmpdir(), "vmi-raw-key-"));
const key = path.join(keyDir, "id_ed25519");
let base: Base;
let uploaded = false;
let vm: RawVm | undefined;

beforeAll(async () => {
  const { image } = await ensureLab();
  base = labImageConfig(image) as Base;
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "raw-virsh-test", "-f", key], { timeoutMs: 30_000 });
  uploaded = await ensureBase(new Virsh(uri(A)), "shared", base);
});

afterAll(async () => {
  if (vm) {
    const where = Object.keys(await whereIs(vm.name));
    for (const h of HOSTS.filter((x) => where.includes(x.name))) await rawRemove(new Virsh(uri(h)), vm);
    if (where.length === 0) await rawRemove(new Virsh(uri(A)), vm);
  }
  if (uploaded) await new Virsh(uri(A)).deleteVolume("shared", base.volume);
  rmSync(keyDir, { recursive: true, force: true });
});

test("define with a NoCloud ISO, SSH with a fresh key, cloud-init done", async () => {
  const r = await rawBoot(new Virsh(uri(A)), {
    name: "raw-1", pool: "shared", base, publicKey: readFileSync(`${key}.pub`, "utf8").trim(), keyPath: key, route: { netns: A.netns }, user: "labuser",
  });
  vm = r.vm;
  expect(r.cloudInit).toMatch(/status: done/);
  const who = await sshRun({ user: "labuser", address: vm.address, privateKeyPath: key, netns: A.netns, hostKey: vm.hostKey }, ["id -un; hostname"], 30_000);
  expect(who.stdout.trim().split("\n")).toEqual(["labuser", "raw-1"]);
  console.log(`raw-virsh: define -> SSH ${(r.sshMs / 1000).toFixed(1)} s, define -> cloud-init done ${(r.doneMs / 1000).toFixed(1)} s`);
});

test("live-migrate hv-a -> hv-b with virsh, then SSH again from hv-b", async () => {
  expect(vm).toBeDefined();
  await sshRun({ user: "labuser", address: vm!.address, privateKeyPath: key, netns: A.netns, hostKey: vm!.hostKey }, ["echo before-move > /tmp/m && sync"], 30_000);
  await new Virsh(uri(A)).exec(["migrate", "--live", "--p2p", "--persistent", "--undefinesource", "--unsafe", "--", "raw-1", migrationUri(B)], 300_000);
  expect(await whereIs("raw-1")).toEqual({ "hv-b": "running" });
  const after = await sshRun({ user: "labuser", address: vm!.address, privateKeyPath: key, netns: B.netns, hostKey: vm!.hostKey }, ["cat /tmp/m; hostname"], 30_000);
  expect(after.stdout.trim().split("\n")).toEqual(["before-move", "raw-1"]);
});
