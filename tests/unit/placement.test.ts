// The placement provider against a recording fake runner: the exact virsh argv of create, a failed create's
// rollback, and delete; and that check/diff run no command at all (they run during preview).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { MIGRATION_DEFAULTS } from "../../config/spec";
import { CommandError, Runner } from "../../host/runner";
import { virshRunner } from "../../host/virsh";
import { PlacementInputs, PlacementOutputs, provider } from "../../providers/vmPlacement";

const dir = mkdtempSync(path.join(tmpdir(), "vmi-placement-"));
const isoFile = path.join(dir, "seed.iso");
writeFileSync(isoFile, Buffer.alloc(4096));
process.env.VM_INFRA_AUDIT_LOG = path.join(dir, "audit.log");
const real = virshRunner.current;
afterAll(() => {
  virshRunner.current = real;
  rmSync(dir, { recursive: true, force: true });
});

const inputs: PlacementInputs = {
  name: "web-1", hostName: "hv-a", uri: "qemu:///a", pool: "default", network: "lab", domainType: "qemu", vcpus: 1, memoryMiB: 1024,
  diskGiB: 4, baseVolume: "base.qcow2", mac: "52:54:00:00:00:01", isoFile, isoHash: "ab".repeat(32), storage: "local",
  migration: MIGRATION_DEFAULTS, user: "ops", privateKeyPath: "/k", knownHosts: { "hv-a": { uri: "qemu:///a", pool: "default" } },
};
const ISO = "web-1-cidata-abababababababab.iso";

/** A fake host: a domain state, existing volumes, and a verb that fails on purpose. */
function fake(state: { domain?: string; volumes: Set<string>; failOn?: string; available?: number }, calls: string[][]): Runner {
  const err = (m: string) => new CommandError(["virsh"], 1, null, false, m, "");
  return async (file, args) => {
    const a = args.slice(3); // -q -c <uri>
    calls.push(a.map((x) => (x.endsWith("/doc.xml") ? "<xml file>" : x)));
    const ok = (stdout = "") => ({ stdout, stderr: "", exitCode: 0 });
    if (a[0] === state.failOn) throw err(`error: ${a[0]} failed on purpose`);
    switch (a[0]) {
      case "pool-info": return ok(`Name: default\nState: running\nAvailable: ${state.available ?? 10 * 1024 ** 3}\n`);
      case "pool-refresh": return ok();
      case "vol-info": if (state.volumes.has(a[a.length - 1])) return ok("Name: x\n"); throw err("error: Storage volume not found: no storage vol with matching name");
      case "vol-create-as": state.volumes.add(a[a.indexOf("--name") + 1]); return ok();
      case "vol-upload": return ok();
      case "vol-path": return ok(`/pool/${a[a.length - 1]}\n`);
      case "vol-delete": state.volumes.delete(a[a.length - 1]); return ok();
      case "domstate": if (state.domain) return ok(`${state.domain}\n`); throw err("error: failed to get domain 'web-1'");
      case "define": state.domain = "shut off"; return ok();
      case "start": state.domain = "running"; return ok();
      case "shutdown": state.domain = "shut off"; return ok();
      case "undefine": state.domain = undefined; return ok();
      case "domuuid": return ok("6b4a0381-ee81-41b7-85c3-2b7d895bef02\n");
    }
    throw err(`error: unexpected ${file} ${a.join(" ")}`);
  };
}

test("create: volumes, then define and start, with exact argv", async () => {
  const calls: string[][] = [];
  virshRunner.current = fake({ volumes: new Set(["base.qcow2"]) }, calls);
  const r = await provider.create(inputs);
  expect(r.id).toBe("vm/web-1");
  expect(r.outs).toMatchObject({ overlayVolume: "web-1.qcow2", isoVolume: ISO, diskPath: "/pool/web-1.qcow2", isoPath: `/pool/${ISO}`, uuid: "6b4a0381-ee81-41b7-85c3-2b7d895bef02" });
  expect(calls).toEqual([
    ["pool-info", "--bytes", "--", "default"],
    ["vol-info", "--pool", "default", "--", "web-1.qcow2"],
    ["vol-create-as", "--pool", "default", "--name", "web-1.qcow2", "--capacity", "4G", "--format", "qcow2", "--backing-vol", "base.qcow2", "--backing-vol-format", "qcow2"],
    ["vol-info", "--pool", "default", "--", ISO],
    ["vol-create-as", "--pool", "default", "--name", ISO, "--capacity", "4096", "--format", "raw"],
    ["vol-upload", "--pool", "default", "--vol", ISO, "--file", isoFile],
    ["vol-path", "--pool", "default", "--", "web-1.qcow2"],
    ["vol-path", "--pool", "default", "--", ISO],
    ["domstate", "--", "web-1"],
    ["domstate", "--", "web-1"],
    ["define", "--file", "<xml file>"],
    ["start", "--", "web-1"],
    ["domuuid", "--", "web-1"],
  ]);
});

test("create that fails at start removes what it made, and says so", async () => {
  const calls: string[][] = [];
  const host = { volumes: new Set(["base.qcow2"]), failOn: "start" };
  virshRunner.current = fake(host, calls);
  await expect(provider.create(inputs)).rejects.toThrow(/create web-1 on hv-a: .*start failed on purpose \(rolled back: 2 volume\(s\), domain undefined\)/);
  expect([...host.volumes]).toEqual(["base.qcow2"]);
  expect(calls.filter((c) => ["undefine", "vol-delete"].includes(c[0]))).toEqual([
    ["undefine", "--nvram", "--", "web-1"],
    ["vol-delete", "--pool", "default", "--", ISO],
    ["vol-delete", "--pool", "default", "--", "web-1.qcow2"],
  ]);
});

test("a shared pool is refreshed first, and a refresh refused for running jobs is retried", async () => {
  const calls: string[][] = [];
  let refused = 0;
  const inner = fake({ volumes: new Set(["base.qcow2"]) }, calls);
  virshRunner.current = async (file, args, opts) => {
    if (args[3] === "pool-refresh" && refused++ < 2) {
      calls.push(args.slice(3));
      throw new CommandError(["virsh"], 1, null, false, "error: internal error: pool 'shared' has asynchronous jobs running.", "");
    }
    return inner(file, args, opts);
  };
  await provider.create({ ...inputs, storage: "shared", pool: "shared" });
  expect(calls.slice(0, 4).map((c) => c.join(" "))).toEqual([
    "pool-info --bytes -- shared", "pool-refresh -- shared", "pool-refresh -- shared", "pool-refresh -- shared",
  ]);
});

test("create in a pool without room fails before anything is made, saying how much is missing", async () => {
  const calls: string[][] = [];
  virshRunner.current = fake({ volumes: new Set(["base.qcow2"]), available: 100 * 1024 ** 2 }, calls);
  await expect(provider.create(inputs)).rejects.toThrow(/pool default on hv-a has 100 MiB available; a new VM needs at least 256 MiB/);
  expect(calls.map((c) => c[0])).toEqual(["pool-info"]);
});

test("delete: graceful shutdown, undefine with NVRAM, both volumes; a second delete finds nothing and succeeds", async () => {
  const calls: string[][] = [];
  const host = { domain: "running", volumes: new Set(["base.qcow2", "web-1.qcow2", ISO]) };
  virshRunner.current = fake(host, calls);
  const outs: PlacementOutputs = { ...inputs, overlayVolume: "web-1.qcow2", isoVolume: ISO, diskPath: "/pool/web-1.qcow2", isoPath: `/pool/${ISO}` };
  await provider.delete!("vm/web-1", outs);
  expect(calls.filter((c) => c[0] !== "domstate")).toEqual([
    ["shutdown", "--", "web-1"],
    ["undefine", "--nvram", "--", "web-1"],
    ["vol-delete", "--pool", "default", "--", "web-1.qcow2"],
    ["vol-delete", "--pool", "default", "--", ISO],
  ]);
  expect(host.domain).toBeUndefined();
  expect([...host.volumes]).toEqual(["base.qcow2"]);
  calls.length = 0;
  await provider.delete!("vm/web-1", outs); // already gone is success
  expect(calls.filter((c) => c[0] === "undefine" || c[0] === "shutdown")).toEqual([]);
});

test("update (memory): shutdown, redefine, start; outputs are plain data (no undefined: the engine rejects it)", async () => {
  const calls: string[][] = [];
  virshRunner.current = fake({ domain: "running", volumes: new Set(["base.qcow2", "web-1.qcow2", ISO]) }, calls);
  const olds: PlacementOutputs = { ...inputs, overlayVolume: "web-1.qcow2", isoVolume: ISO, diskPath: "/pool/web-1.qcow2", isoPath: `/pool/${ISO}`, uuid: "u-1", lastMigration: undefined };
  const r = await provider.update!("vm/web-1", olds, { ...inputs, memoryMiB: 2048 });
  const hasUndefined = (x: unknown): boolean => x === undefined || (typeof x === "object" && x !== null && Object.values(x).some(hasUndefined));
  expect(hasUndefined(r.outs)).toBe(false);
  expect(r.outs).toMatchObject({ memoryMiB: 2048, uuid: "u-1" });
  expect(calls.filter((c) => !["domstate", "pool-refresh", "vol-info", "vol-path"].includes(c[0]))).toEqual([
    ["shutdown", "--", "web-1"], ["domuuid", "--", "web-1"], ["define", "--file", "<xml file>"], ["start", "--", "web-1"],
  ]);
});

test("check and diff run no command (they run during preview, maybe with unknowns)", async () => {
  const calls: string[][] = [];
  virshRunner.current = fake({ volumes: new Set() }, calls);
  const olds: PlacementOutputs = { ...inputs, overlayVolume: "web-1.qcow2", isoVolume: ISO, diskPath: "/p", isoPath: "/p" };
  await provider.check!(olds, { ...inputs, hostName: "hv-b", uri: "qemu:///b" });
  const d = await provider.diff!("vm/web-1", olds, { ...inputs, hostName: "hv-b", uri: "qemu:///b" });
  expect(d).toMatchObject({ changes: true, replaces: [] });
  const mem = await provider.diff!("vm/web-1", olds, { ...inputs, memoryMiB: 2048 });
  expect(mem).toMatchObject({ changes: true, replaces: [] });
  expect((await provider.diff!("vm/web-1", olds, { ...inputs, diskGiB: 8 })).replaces).toEqual(["diskGiB"]);
  expect(calls).toEqual([]);
});
