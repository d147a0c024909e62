// Pure migration logic and the migration steps against a recording fake runner (exact argv, canned virsh answers).
// The real behaviour is proven in tests/e2e/migration.test.ts; these pin the argv and the decisions.
import { MIGRATION_DEFAULTS, MigrationSpec } from "../../config/spec";
import { CommandError, Runner } from "../../host/runner";
import { Virsh } from "../../host/virsh";
import { completionTimeoutMs, migrateArgs, parseJobInfo, parseQuantity, planLine, rewriteDiskPaths } from "../../libvirt/migration";
import { PoolPromises } from "../../providers/migration/limits";
import { planPreChecks, preChecks } from "../../providers/migration/preChecks";
import { rollback } from "../../providers/migration/rollback";
import { transfer } from "../../providers/migration/transfer";
import { MigrationError, MoveRequest } from "../../providers/migration/types";
import { moveVm } from "../../providers/migration/move";
import { checkMove, moveRequest, moves, placementDiff, PlacementInputs } from "../../providers/vmPlacement";

const mig = (o: Partial<MigrationSpec> = {}): MigrationSpec => ({ ...MIGRATION_DEFAULTS, ...o });

test("virsh migrate argv for each mode and storage", () => {
  const base = { name: "web-1", destUri: "qemu+tcp://10.0.0.2/system", p2p: true };
  expect(migrateArgs({ ...base, storage: "copy", migration: mig() })).toEqual([
    "migrate", "--persistent", "--undefinesource", "--abort-on-error", "--live", "--p2p", "--copy-storage-inc", "--migrate-disks", "vda",
    "--", "web-1", "qemu+tcp://10.0.0.2/system",
  ]);
  expect(migrateArgs({ ...base, storage: "shared", migration: mig({ mode: "paused", bandwidthMiBs: 50 }) })).toEqual([
    "migrate", "--persistent", "--undefinesource", "--abort-on-error", "--p2p", "--unsafe", "--bandwidth", "50", "--", "web-1", "qemu+tcp://10.0.0.2/system",
  ]);
  const live = migrateArgs({ ...base, p2p: false, storage: "shared", migration: mig({ autoConverge: true, postcopy: true }), xmlFile: "/tmp/x/dom.xml" });
  expect(live).toEqual([
    "migrate", "--persistent", "--undefinesource", "--abort-on-error", "--live", "--unsafe", "--auto-converge", "--postcopy",
    "--postcopy-after-precopy", "--xml", "/tmp/x/dom.xml", "--persistent-xml", "/tmp/x/dom.xml", "--", "web-1", "qemu+tcp://10.0.0.2/system",
  ]);
  // a hostile-looking name is still one argv element after "--"
  expect(migrateArgs({ ...base, name: "--help", storage: "shared", migration: mig() }).slice(-3)).toEqual(["--", "--help", base.destUri]);
});

test("plan line and completion deadline (150 s per GiB of RAM, plus disk when copied)", () => {
  const shape = { name: "web-1", fromHost: "hv-a", toHost: "hv-b", storage: "copy" as const, migration: mig(), memoryMiB: 2048, diskGiB: 10 };
  expect(planLine(shape)).toBe("web-1: migrate live hv-a -> hv-b: 2048 MiB memory, overlay copied (at most 10 GiB)");
  expect(planLine({ ...shape, storage: "shared", migration: mig({ mode: "offline" }) })).toBe(
    "web-1: migrate offline hv-a -> hv-b: no memory (shut down first), disk stays on shared storage");
  expect(completionTimeoutMs(shape)).toBe(12 * 150_000);
  expect(completionTimeoutMs({ ...shape, storage: "shared" })).toBe(2 * 150_000);
});

test("domjobinfo parsing", () => {
  const out = `Job type:         Unbounded
Operation:        Outgoing migration
Time elapsed:     3578         ms
Data processed:   91.985 MiB
Data remaining:   969.754 MiB
Data total:       1.047 GiB
File remaining:   0.000 B
Expected downtime: 300          ms`;
  expect(parseJobInfo(out)).toEqual({
    active: true, elapsedMs: 3578, processedBytes: Math.round(91.985 * 1024 ** 2), remainingBytes: Math.round(969.754 * 1024 ** 2),
    totalBytes: Math.round(1.047 * 1024 ** 3), downtimeMs: undefined, fileRemainingBytes: 0,
  });
  expect(parseJobInfo("Job type:         None        \n").active).toBe(false);
  // a cancelled or failed job still winding down is a job: nothing may start on that domain until it is gone
  expect(["Unbounded", "Bounded", "Cancelled", "Failed", "None", "Completed"].map((t) => parseJobInfo(`Job type: ${t}\nOperation: Outgoing migration\n`).active))
    .toEqual([true, true, true, true, false, false]);
  expect(parseJobInfo("Job type: Completed\nTotal downtime:   183          ms\n").downtimeMs).toBe(183);
  expect(parseQuantity("12 furlongs")).toBeUndefined();
});

test("disk paths are rewritten exactly, and only in file attributes", () => {
  const xml = `<disk><source file='/a/web-1.qcow2'/></disk><disk><source file="/a/web-1.qcow2.bak"/></disk><name>/a/web-1.qcow2</name>`;
  expect(rewriteDiskPaths(xml, { "/a/web-1.qcow2": "/b/web-1.qcow2" })).toBe(
    `<disk><source file='/b/web-1.qcow2'/></disk><disk><source file="/a/web-1.qcow2.bak"/></disk><name>/a/web-1.qcow2</name>`);
});

const inputs = (o: Partial<PlacementInputs> = {}): PlacementInputs => ({
  name: "web-1", hostName: "hv-a", uri: "qemu:///a", pool: "default", network: "lab", domainType: "qemu", vcpus: 1, memoryMiB: 1024,
  diskGiB: 4, baseVolume: "base.qcow2", mac: "52:54:00:00:00:01", isoFile: "/iso/x.iso", isoHash: "ab".repeat(32), storage: "local",
  migration: mig(), user: "ops", privateKeyPath: "/k", knownHosts: {}, ...o,
});

test("a host change (even with a new pool name) is an update, never a replacement; a pool change on one host replaces", () => {
  const moved = placementDiff(inputs(), inputs({ hostName: "hv-b", uri: "qemu:///b", pool: "images" }));
  expect(moved.changes).toBe(true);
  expect(moved.replaces).toEqual([]);
  expect(placementDiff(inputs(), inputs({ pool: "images" })).replaces).toEqual(["pool"]);
  expect(placementDiff(inputs(), inputs({ migration: mig({ bandwidthMiBs: 10 }) }))).toMatchObject({ changes: true, replaces: [] });
  expect(placementDiff(inputs(), inputs()).changes).toBe(false);
});

test("moving and redefining in one update is refused at check time", () => {
  expect(checkMove(inputs(), inputs({ hostName: "hv-b", uri: "qemu:///b" }))).toEqual([]);
  const f = checkMove(inputs(), inputs({ hostName: "hv-b", uri: "qemu:///b", memoryMiB: 2048 }));
  expect(f[0].reason).toMatch(/moving to hv-b and changing memoryMiB in one update is refused/);
  expect(checkMove({}, inputs())).toEqual([]); // create
});

// ------------------------------------------------------------------------------------------- fake-runner steps

type Answer = string | Error;
function fakeHost(answers: (args: string[]) => Answer | undefined, log: string[][]): Runner {
  return async (file, args) => {
    const a = [...args];
    log.push([file, ...a]);
    const rest = a.slice(3); // -q -c <uri>
    const r = answers(rest);
    if (r instanceof Error) throw r;
    if (r === undefined) throw new CommandError([file, ...a], 1, null, false, `error: unexpected call ${rest.join(" ")}`, "");
    return { stdout: r, stderr: "", exitCode: 0 };
  };
}
const notFound = (what: string) => new CommandError(["virsh"], 1, null, false, `error: failed to get domain '${what}'`, "");
const volNotFound = () => new CommandError(["virsh"], 1, null, false, "error: Storage volume not found: no storage vol with matching path", "");

const req = (o: Partial<MoveRequest> = {}): MoveRequest => ({
  name: "web-1", from: { hostName: "hv-a", uri: "qemu:///a", pool: "default" }, to: { hostName: "hv-b", uri: "qemu:///b", pool: "default" },
  storage: "copy", migration: mig(), domainType: "qemu", vcpus: 1, memoryMiB: 1024, diskGiB: 4, network: "lab", mac: "52:54:00:00:00:01",
  baseVolume: "base.qcow2", overlayVolume: "web-1.qcow2", isoVolume: "web-1-cidata-abababababababab.iso",
  guest: { user: "ops", privateKeyPath: "/k" }, ...o,
});

const source = (a: string[]): Answer | undefined => {
  if (a[0] === "domstate") return "running\n";
  if (a[0] === "dumpxml") return "<domain><cpu mode='custom'><model>qemu64</model></cpu></domain>";
  if (a[0] === "vol-info" && a.includes("web-1.qcow2")) return "Name: web-1.qcow2\nCapacity: 4294967296 bytes\nAllocation: 52428800 bytes\n";
  if (a[0] === "vol-info") return "Name: iso\nCapacity: 374784 bytes\nAllocation: 374784 bytes\n";
  return undefined;
};
const target = (availableBytes: number, freeKiB = 8_000_000) => (a: string[]): Answer | undefined => {
  if (a[0] === "uri") return "qemu:///b\n";
  if (a[0] === "domstate" || a[0] === "dumpxml") return notFound("web-1");
  if (a[0] === "hypervisor-cpu-compare") return "CPU described in f is identical to the CPU provided by hypervisor on the host\n";
  if (a[0] === "net-info") return "Name: lab\nActive: yes\n";
  if (a[0] === "nodememstats") return `total  : 16000000 KiB\nfree   : ${freeKiB} KiB\nbuffers: 0 KiB\ncached : 0 KiB\n`;
  if (a[0] === "vol-info" && a.includes("base.qcow2")) return "Name: base.qcow2\n";
  if (a[0] === "vol-info") return volNotFound();
  if (a[0] === "pool-info") return `Name: default\nState: running\nAvailable: ${availableBytes}\n`;
  return undefined;
};

test("pre-checks pass on a target with room, and run only read-only commands", async () => {
  const log: string[][] = [];
  const S = new Virsh("qemu:///a", fakeHost(source, log));
  const T = new Virsh("qemu:///b", fakeHost(target(10 * 1024 ** 3), log));
  await expect(preChecks(req(), S, T)).resolves.toEqual({ sourceState: "running" });
  const verbs = log.map((l) => l[4]);
  expect(verbs.every((v) => ["uri", "domstate", "dumpxml", "domjobinfo", "hypervisor-cpu-compare", "net-info", "nodememstats", "vol-info", "pool-info"].includes(v))).toBe(true);
});

test("pre-checks name every problem: a full pool, too little memory, a name already taken", async () => {
  const log: string[][] = [];
  const S = new Virsh("qemu:///a", fakeHost(source, log));
  const t = target(20 * 1024 ** 2, 100_000);
  const owned = "<domain><name>web-1</name><uuid>u-2</uuid><metadata><vmi:owner xmlns:vmi='https://github.com/vm-infra/xmlns/owner/1' " +
    "project='vm-infra' stack='dup' resource='web-1-placement' instance='0a1b2c3d'/></metadata></domain>";
  const T = new Virsh("qemu:///b", fakeHost((a) => (a[0] === "domstate" ? "shut off\n" : a[0] === "dumpxml" ? owned : t(a)), log));
  const err = await preChecks(req(), S, T).catch((e: Error) => e.message);
  expect(err).toMatch(/a domain named web-1 already exists on hv-b \(made by vm-infra project vm-infra, stack dup, resource web-1-placement\)/);
  expect(err).toMatch(/memory: hv-b has 97 MiB free, the VM needs 1024 MiB/);
  expect(err).toMatch(/room: pool default on hv-b has 20.0 MiB available, the copy needs 114.4 MiB/);
});

test("pre-checks count the memory promised to the moves arriving on the target in the same update", async () => {
  const S = new Virsh("qemu:///a", fakeHost(source, []));
  const T = new Virsh("qemu:///b", fakeHost(target(10 * 1024 ** 3, 2_000_000), [])); // 1953 MiB free
  await expect(preChecks(req(), S, T, { arriving: [{ vm: "db", memoryMiB: 512 }] })).resolves.toEqual({ sourceState: "running" });
  await expect(preChecks(req(), S, T, { arriving: [{ vm: "db", memoryMiB: 512 }, { vm: "app-1", memoryMiB: 512 }] }))
    .rejects.toThrow("memory: hv-b has 1953 MiB free, 1024 MiB of it promised to the moves arriving there now (db, app-1), the VM needs 1024 MiB");
});

// two copies into one pool that each fit alone: without the promise both pre-checks passed and together they filled it
test("pre-checks of copies into the same pool at once: the one that passes holds its size, the other is refused naming it; released, it passes", async () => {
  const room = new PoolPromises();
  const S = new Virsh("qemu:///a", fakeHost((a) => source(a.map((x) => (x === "web-2.qcow2" ? "web-1.qcow2" : x))), [])); // the same size
  const T = new Virsh("qemu:///b", fakeHost(target(150 * 2 ** 20), [])); // each copy needs 114.4 MiB with the margin, 50.4 MiB without
  const names = ["web-1", "web-2"];
  const settled = await Promise.allSettled(names.map((name) => preChecks(req({ name, overlayVolume: `${name}.qcow2` }), S, T, { room })));
  // which one gets there first is the scheduler's choice (CI's loaded machine ran them in either order): exactly one passes
  expect(settled.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
  const won = settled.findIndex((r) => r.status === "fulfilled");
  expect(String((settled[1 - won] as PromiseRejectedResult).reason.message)).toBe("room: pool default on hv-b has 150.0 MiB available, " +
    `50.4 MiB of it promised to the copies arriving there now (${names[won]}), the copy needs 114.4 MiB`);
  const [winner, loser] = [names[won], names[1 - won]];
  expect(room.promised("qemu:///b", "default", loser)).toEqual([{ vm: winner, bytes: 52428800 + 374784 }]);
  expect(room.promised("qemu:///b", "other", loser)).toEqual([]); // another pool of the same host is not affected
  (settled[won] as PromiseFulfilledResult<{ release?: () => void }>).value.release!();
  const again = await preChecks(req({ name: loser, overlayVolume: `${loser}.qcow2` }), S, T, { room });
  expect(room.promised("qemu:///b", "default", winner)).toEqual([{ vm: loser, bytes: 52428800 + 374784 }]);
  again.release!();
  expect(room.promised("qemu:///b", "default", "")).toEqual([]);
});

test("a move gives its pool room back when it ends, also when it fails and is rolled back", async () => {
  const room = new PoolPromises();
  const S = new Virsh("qemu:///a", fakeHost((a) => (a[0] === "domuuid" ? "u-1\n" : source(a)), []));
  const T = new Virsh("qemu:///b", fakeHost((a) => (a[0] === "vol-create-as" ? new CommandError(["virsh"], 1, null, false, "error: pool default is full", "") : target(50 * 2 ** 30)(a)), []));
  const hosts: Record<string, Virsh> = { "qemu:///a": S, "qemu:///b": T };
  const seen: number[] = [];
  const err = await moveVm(req({ uuid: "u-1" }), {
    log: (l) => { if (/pre-checks passed/.test(l)) seen.push(room.promised("qemu:///b", "default", "").length); },
    connect: (u) => hosts[u], room,
  }).catch((e: unknown) => e);
  expect((err as MigrationError).failure.record.failedStep).toBe("prepare target");
  expect(seen).toEqual([1]); // held while it ran
  expect(room.promised("qemu:///b", "default", "")).toEqual([]);
});

// plan --check-hosts asked each move alone: two copies that each fit were both "pass" in the plan, and the update then
// refused the second (the pool promises of the apply)
test("plan --check-hosts: each move that passes keeps its room and memory for the later ones; a base image uploaded first counts once per pool", async () => {
  const S = new Virsh("qemu:///a", fakeHost((a) => source(a.map((x) => (x === "web-2.qcow2" ? "web-1.qcow2" : x))), []));
  const two = ["web-1", "web-2"].map((name) => req({ name, overlayVolume: `${name}.qcow2` }));
  const hosts = (t: (a: string[]) => Answer | undefined) => {
    const T = new Virsh("qemu:///b", fakeHost(t, []));
    return (uri: string) => (uri === "qemu:///a" ? S : T);
  };
  // room: each copy needs 114.4 MiB with the margin (50.4 MiB without), the pool has 150 MiB
  const room = planPreChecks(hosts(target(150 * 2 ** 20)));
  expect(await room(two[0], false)).toEqual([]);
  expect(await room(two[1], false)).toEqual(["room: pool default on hv-b has 150.0 MiB available, 50.4 MiB of it promised to the copies arriving there now (web-1), the copy needs 114.4 MiB"]);
  // memory: 1953 MiB free on hv-b, each VM needs 1024 MiB
  const memory = planPreChecks(hosts(target(10 * 1024 ** 3, 2_000_000)));
  expect(await memory(two[0], false)).toEqual([]);
  expect(await memory(two[1], false)).toEqual(["memory: hv-b has 1953 MiB free, 1024 MiB of it promised to the moves arriving there now (web-1), the VM needs 1024 MiB"]);
  // the base image (366 KiB) is not on hv-b yet and the update uploads it first: counted for the first copy only. The
  // pool fits both copies, the base image and the margin, but not the base image twice
  const copy = 52428800 + 374784;
  const noBase = target(copy * 2 + 374784 + 64 * 2 ** 20 + 100_000);
  const base = planPreChecks(hosts((a) => (a[0] === "vol-info" && a.includes("base.qcow2") ? volNotFound() : noBase(a))));
  expect(await base(two[0], true)).toEqual([]);
  expect(await base(two[1], true)).toEqual([]);
});

test("pre-checks: a CPU the target cannot run is refused", async () => {
  const t = target(10 * 1024 ** 3);
  const S = new Virsh("qemu:///a", fakeHost(source, []));
  const T = new Virsh("qemu:///b", fakeHost((a) => (a[0] === "hypervisor-cpu-compare"
    ? "CPU described in f is incompatible with the CPU provided by hypervisor on the host\n" : t(a)), []));
  await expect(preChecks(req(), S, T)).rejects.toThrow(/CPU: hv-b cannot run this guest's CPU \(CPU described in f is incompatible/);
});

test("pre-checks: an unreachable target stops everything at the first question", async () => {
  const log: string[][] = [];
  const S = new Virsh("qemu:///a", fakeHost(source, log));
  const T = new Virsh("qemu:///b", fakeHost(() => new CommandError(["virsh"], 1, null, false, "error: failed to connect to the hypervisor", ""), log));
  await expect(preChecks(req(), S, T)).rejects.toThrow(/target hv-b is unreachable: .*failed to connect/);
  expect(log.filter((l) => l[3] === "qemu:///a")).toEqual([]);
});

const dom = (uuid = "u-1") => `<domain><name>web-1</name><uuid>${uuid}</uuid></domain>`;
/** A fake host whose domain state is `state()` (undefined: no domain, Error: the host does not answer). */
const hostWith = (state: () => string | undefined | Error, extra: (a: string[]) => Answer | undefined = () => undefined) => (a: string[]): Answer | undefined => {
  const st = state();
  if (a[0] === "dumpxml" || a[0] === "domstate") return st instanceof Error ? st : st === undefined ? notFound("web-1") : a[0] === "dumpxml" ? dom() : `${st}\n`;
  if (st instanceof Error) return st;
  return extra(a);
};
const down = () => new CommandError(["virsh"], 1, null, false, "error: failed to connect to the hypervisor: Connection refused", "");
const facts = (o: Partial<Parameters<typeof rollback>[3]> = {}) => ({ sourceState: "running", paused: false, stopped: false, offline: false, createdOnTarget: [] as string[], ...o });

test("rollback after an aborted transfer: the target's copied volumes go, the paused source resumes", async () => {
  const log: string[][] = [];
  const S = new Virsh("qemu:///a", fakeHost(hostWith(() => (log.some((l) => l[4] === "resume") ? "running" : "paused"), (a) => (a[0] === "resume" ? "" : undefined)), log));
  const deleted = new Set<string>();
  const T = new Virsh("qemu:///b", fakeHost(hostWith(() => undefined, (a) => {
    const vol = a[a.length - 1];
    if (a[0] === "vol-info") return deleted.has(vol) ? volNotFound() : "Name: x\n";
    if (a[0] === "vol-delete") {
      deleted.add(vol);
      return "";
    }
    return undefined;
  }), log));
  const did: string[] = [];
  const r = await rollback(req({ uuid: "u-1" }), S, T, facts({ paused: true, createdOnTarget: ["web-1.qcow2"] }), did, () => undefined);
  expect(r.at).toBe("from");
  expect(r.leftovers).toEqual([]);
  expect(did).toEqual(["deleted web-1.qcow2, web-1-cidata-abababababababab.iso on hv-b", "resumed on hv-a"]);
  expect(r.summary).toBe("Rollback: deleted web-1.qcow2, web-1-cidata-abababababababab.iso on hv-b; resumed on hv-a. The VM runs on hv-a as before.");
  expect(log.filter((l) => l[4] === "vol-delete").map((l) => l.slice(3))).toEqual([
    ["qemu:///b", "vol-delete", "--pool", "default", "--", "web-1.qcow2"],
    ["qemu:///b", "vol-delete", "--pool", "default", "--", "web-1-cidata-abababababababab.iso"],
  ]);
});

test("rollback after the switchover: the VM migrates back and nothing is left on the target", async () => {
  const log: string[][] = [];
  let back = false;
  const S = new Virsh("qemu:///a", fakeHost(hostWith(() => (back ? "running" : undefined)), log));
  const T = new Virsh("qemu:///b", fakeHost(hostWith(() => (back ? undefined : "running"), (a) => {
    if (a[0] !== "migrate") return undefined;
    back = true;
    return "";
  }), log));
  const did: string[] = [];
  const r = await rollback(req({ uuid: "u-1", storage: "shared", from: { hostName: "hv-a", uri: "qemu:///a", migrationUri: "qemu+tcp://10.0.0.1/system", pool: "shared" } }),
    S, T, facts(), did, () => undefined);
  expect(r.at).toBe("from");
  expect(did).toEqual(["migrated back hv-b -> hv-a"]);
  expect(log.find((l) => l[4] === "migrate")?.slice(3)).toEqual([
    "qemu:///b", "migrate", "--persistent", "--undefinesource", "--abort-on-error", "--live", "--p2p", "--unsafe", "--", "web-1", "qemu+tcp://10.0.0.1/system",
  ]);
});

// issue 8, finding 1: the source's libvirtd died during the health check of a live move with copied storage. The
// old rollback counted the unanswering source as "unknown" and stopped, undefined and deleted the only running copy.
test("rollback with the source silent and the VM running on the target: nothing is stopped, the state moves to the target", async () => {
  const log: string[][] = [];
  const S = new Virsh("qemu:///a", fakeHost(() => down(), log));
  const T = new Virsh("qemu:///b", fakeHost(hostWith(() => "running"), log));
  const did: string[] = [];
  const r = await rollback(req({ uuid: "u-1" }), S, T, facts({ createdOnTarget: ["web-1.qcow2", "web-1-cidata-abababababababab.iso"] }), did, () => undefined);
  expect(r.at).toBe("to");
  expect(r.decision.keep).toBe("target");
  // only questions were asked of the target: no destroy, shutdown, undefine or vol-delete anywhere
  expect([...new Set(log.filter((l) => l[3] === "qemu:///b").map((l) => l[4]))].sort()).toEqual(["domstate", "dumpxml"]);
  expect(log.filter((l) => l[3] === "qemu:///a").map((l) => l[4])).toEqual(["dumpxml", "dumpxml"]);
  expect(r.leftovers).toEqual([
    { hostName: "hv-a", uri: "qemu:///a", pool: "default", volume: "web-1.qcow2" },
    { hostName: "hv-a", uri: "qemu:///a", pool: "default", volume: "web-1-cidata-abababababababab.iso" },
    { hostName: "hv-a", uri: "qemu:///a", pool: "default", domain: "web-1" },
  ]);
  expect(r.summary).toBe("Rollback: nothing to undo. The VM runs on hv-b (running); the state now says hv-b. hv-a did not answer. " +
    "Left and recorded (the next up removes them once their host answers and the VM is verified elsewhere): web-1.qcow2, " +
    "web-1-cidata-abababababababab.iso, definition web-1 on hv-a.");
});

// issue 8, finding 2: the target's libvirtd died about a second into the transfer.
test("rollback with the target silent: the VM stays on the source, what the move made there is recorded, and the message says so", async () => {
  const log: string[][] = [];
  const S = new Virsh("qemu:///a", fakeHost(hostWith(() => "running"), log));
  const T = new Virsh("qemu:///b", fakeHost(() => down(), log));
  const did: string[] = [];
  const r = await rollback(req({ uuid: "u-1" }), S, T, facts({ createdOnTarget: ["web-1.qcow2", "web-1-cidata-abababababababab.iso"] }), did, () => undefined);
  expect(r.at).toBe("from");
  expect(log.some((l) => ["destroy", "undefine", "shutdown", "vol-delete", "resume", "start"].includes(l[4]))).toBe(false);
  expect(r.leftovers).toEqual([
    { hostName: "hv-b", uri: "qemu:///b", pool: "default", volume: "web-1.qcow2" },
    { hostName: "hv-b", uri: "qemu:///b", pool: "default", volume: "web-1-cidata-abababababababab.iso" },
  ]);
  expect(r.summary).toBe("Rollback: nothing to undo. The VM runs on hv-a as before. hv-b did not answer. Left and recorded (the next up " +
    "removes them once their host answers and the VM is verified elsewhere): web-1.qcow2, web-1-cidata-abababababababab.iso on hv-b.");
});

test("rollback with neither host answering changes nothing and says the state still names the source", async () => {
  const log: string[][] = [];
  const S = new Virsh("qemu:///a", fakeHost(() => down(), log));
  const T = new Virsh("qemu:///b", fakeHost(() => down(), log));
  const r = await rollback(req({ uuid: "u-1" }), S, T, facts(), [], () => undefined);
  expect(r.at).toBe("unknown");
  expect(log.every((l) => l[4] === "dumpxml")).toBe(true);
  expect(r.summary).toBe("Rollback: nothing to undo. Where the VM runs cannot be verified (hv-a: unknown, hv-b: unknown); vm-infra changed " +
    "nothing more; the state still says hv-a. hv-a and hv-b did not answer: run pulumi refresh when they answer.");
});

test("rollback never touches a domain of the same name with another UUID", async () => {
  const log: string[][] = [];
  const S = new Virsh("qemu:///a", fakeHost(hostWith(() => "running"), log));
  const T = new Virsh("qemu:///b", fakeHost((a) => (a[0] === "dumpxml" ? dom("someone-else") : a[0] === "domstate" ? "running\n" : undefined), log));
  const r = await rollback(req({ uuid: "u-1" }), S, T, facts(), [], () => undefined);
  expect(r.decision).toEqual({ keep: "none", actions: [], why: "a domain of that name with another UUID is on the target: not this VM, left alone" });
  expect(log.filter((l) => !["dumpxml", "domstate", "vol-info"].includes(l[4]))).toEqual([]); // questions only
  expect(r.at).toBe("from");
});

test("transfer: a job whose remaining data stops shrinking is aborted after the progress timeout", async () => {
  const log: string[][] = [];
  let release: () => void = () => undefined;
  const running = new Promise<void>((r) => (release = r));
  const S = new Virsh("qemu:///a", fakeHost((a) => {
    if (a[0] === "domjobinfo") return "Job type: Unbounded\nData processed: 10 MiB\nData remaining: 500 MiB\nData total: 1 GiB\n";
    if (a[0] === "migrate-setmaxdowntime") return "";
    if (a[0] === "domjobabort") {
      release();
      return "";
    }
    return undefined;
  }, log));
  // the fake migrate call blocks until aborted, then fails the way virsh does
  const slow: Virsh = Object.assign(Object.create(Virsh.prototype), S, {
    exec: async (args: readonly string[], t?: number) => {
      if (args[0] === "migrate") {
        await running;
        throw new CommandError(["virsh", ...args], 1, null, false, "error: operation aborted: migration out: canceled by client", "");
      }
      return S.exec(args, t);
    },
  });
  const lines: string[] = [];
  const t0 = Date.now();
  await expect(transfer(slow, ["migrate", "--", "web-1", "x"], req({ migration: mig({ progressTimeoutSeconds: 1 }) }), (l) => lines.push(l), 50))
    .rejects.toThrow(/aborted: no progress for 1 s/);
  expect(Date.now() - t0).toBeLessThan(10_000);
  expect(log.some((l) => l[4] === "domjobabort")).toBe(true);
  expect(log.find((l) => l[4] === "migrate-setmaxdowntime")?.slice(4)).toEqual(["migrate-setmaxdowntime", "--", "web-1", "300"]);
  expect(lines.some((l) => /migrating hv-a -> hv-b: 51%, 10.0 MiB sent, 500.0 MiB remaining/.test(l))).toBe(true);
});

test("pre-checks for shared storage refresh both hosts' view of the pool and compare volume paths", async () => {
  const log: string[][] = [];
  const paths = (host: string) => (a: string[]): Answer | undefined => {
    if (a[0] === "pool-refresh") return "";
    if (a[0] === "vol-path") return host === "b" && a.includes("web-1.qcow2") ? "/elsewhere/web-1.qcow2\n" : `/shared/${a[a.length - 1]}\n`;
    return undefined;
  };
  const S = new Virsh("qemu:///a", fakeHost((a) => paths("a")(a) ?? source(a), log));
  const t = target(0);
  const T = new Virsh("qemu:///b", fakeHost((a) => paths("b")(a) ?? t(a), log));
  const shared = req({ storage: "shared", from: { hostName: "hv-a", uri: "qemu:///a", pool: "shared" }, to: { hostName: "hv-b", uri: "qemu:///b", pool: "shared" } });
  await expect(preChecks(shared, S, T)).rejects.toThrow(/storage: web-1.qcow2 is \/elsewhere\/web-1.qcow2 on hv-b but \/shared\/web-1.qcow2 on hv-a: pool shared is not shared/);
  expect(log.filter((l) => l[4] === "pool-refresh").map((l) => l[3])).toEqual(["qemu:///a", "qemu:///b"]);
  // shared storage copies nothing: no room question is asked
  expect(log.some((l) => l[4] === "pool-info")).toBe(false);
});

// ------------------------------------------------------------------------------------- the move, orchestrated

const mutating = (log: string[][]) => log.map((l) => l[4]).filter((c) => !["domstate", "dumpxml", "uri", "hypervisor-cpu-compare", "net-info",
  "nodememstats", "vol-info", "pool-info", "domjobinfo", "vol-path", "domuuid", "pool-refresh", "vol-list", "vol-download"].includes(c));

test("a move refused by its pre-checks changes nothing anywhere and says the VM runs on the source as before", async () => {
  const log: string[][] = [];
  const hosts: Record<string, Virsh> = { "qemu:///a": new Virsh("qemu:///a", fakeHost(source, log)), "qemu:///b": new Virsh("qemu:///b", fakeHost(target(100 * 2 ** 20), log)) };
  const err = await moveVm(req(), { log: () => undefined, connect: (u) => hosts[u] }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(MigrationError);
  const f = (err as MigrationError).failure;
  expect([f.at, f.leftovers, f.record.failedStep, f.record.outcome, f.record.rollback]).toEqual(["from", [], "pre-check", "rolled back", ["nothing had changed"]]);
  expect((err as MigrationError).message).toBe("hv-a -> hv-b failed at pre-check: room: pool default on hv-b has 100.0 MiB available, " +
    "the copy needs 114.4 MiB. Rollback: nothing had changed. The VM runs on hv-a as before.");
  expect(mutating(log)).toEqual([]);
});

test("a move whose target fails while being prepared: the rollback asks both hosts, keeps the running source and removes nothing it did not make", async () => {
  const log: string[][] = [];
  const lines: string[] = [];
  const S = new Virsh("qemu:///a", fakeHost((a) => (a[0] === "domuuid" ? "u-1\n" : source(a)), log));
  // the target answers every question, then refuses to create the overlay
  const T = new Virsh("qemu:///b", fakeHost((a) => (a[0] === "vol-create-as" ? new CommandError(["virsh"], 1, null, false, "error: pool default is full", "") : target(50 * 2 ** 30)(a)), log));
  const hosts: Record<string, Virsh> = { "qemu:///a": S, "qemu:///b": T };
  const err = await moveVm(req({ uuid: "u-1" }), { log: (l) => lines.push(l), connect: (u) => hosts[u] }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(MigrationError);
  const f = (err as MigrationError).failure;
  expect([f.at, f.leftovers, f.record.failedStep, f.record.outcome]).toEqual(["from", [], "prepare target", "rolled back"]);
  expect(f.record.error).toBe("virsh: exited 1: error: pool default is full");
  // nothing ran on the source but questions; on the target only the refused create
  expect(mutating(log.filter((l) => l[3] === "qemu:///a"))).toEqual([]);
  expect(mutating(log.filter((l) => l[3] === "qemu:///b"))).toEqual(["vol-create-as"]);
  expect(lines[0]).toBe("web-1: pre-checks passed (hv-a: running); moving live, storage copy");
  expect(lines[1]).toMatch(/^web-1: prepare target failed: .*pool default is full; rolling back$/);
});

test("transfer: a migrate that does not end after the abort (its network gone) is stopped after the grace, and the step fails", async () => {
  const log: string[][] = [];
  const S = new Virsh("qemu:///a", fakeHost((a) => {
    if (a[0] === "domjobinfo") return "Job type: Unbounded\nData processed: 10 MiB\nData remaining: 500 MiB\nData total: 1 GiB\n";
    if (a[0] === "migrate-setmaxdowntime" || a[0] === "domjobabort") return "";
    return undefined;
  }, log));
  let stoppedBy: unknown;
  // the fake migrate never returns by itself: only its client being stopped ends it, as the runner does
  const stuck: Virsh = Object.assign(Object.create(Virsh.prototype), S, {
    exec: async (args: readonly string[], t?: number, input?: string, signal?: AbortSignal) => {
      if (args[0] !== "migrate") return S.exec(args, t, input);
      await new Promise<void>((res) => signal?.addEventListener("abort", () => res(), { once: true }));
      stoppedBy = signal?.reason;
      throw new CommandError(["virsh", ...args], null, "SIGTERM", false, "", "", `stopped: ${String(signal?.reason)}`);
    },
  });
  const lines: string[] = [];
  await expect(transfer(stuck, ["migrate", "--", "web-1", "x"], req({ migration: mig({ progressTimeoutSeconds: 1 }) }), (l) => lines.push(l), 50, 300))
    .rejects.toThrow(/^aborted: no progress for 1 s$/);
  expect(stoppedBy).toBe("the aborted migration did not end");
  expect(lines).toContain("web-1: libvirt did not end the aborted migration within 0 s (is the migration network down?); " +
    "vm-infra stops waiting for it: hv-a's libvirt still holds the cancelled job");
});

// issue 8, finding 2: an offline move shut the guest down, then the source's libvirtd died while the disk was copied.
// The rollback could not start it again; nothing recorded that vm-infra (not its owner) had stopped it, so the next
// up moved it offline as a stopped VM and left it shut off.
test("rollback after an offline move stopped the VM and its source went silent: the VM is left stopped, and says so", async () => {
  const log: string[][] = [];
  const S = new Virsh("qemu:///a", fakeHost(() => down(), log));
  const T = new Virsh("qemu:///b", fakeHost(hostWith(() => undefined, (a) => (a[0] === "vol-info" ? volNotFound() : undefined)), log));
  const r = await rollback(req({ uuid: "u-1" }), S, T, facts({ offline: true, stopped: true }), [], () => undefined);
  expect([r.at, r.leftStopped, r.decision.actions]).toEqual(["from", true, []]);
  expect(r.summary).toBe("Rollback: nothing to undo. The VM is on hv-a, shut down by this move and not started again (hv-a did not " +
    "answer); the state records that, and the next up starts it. hv-a did not answer.");
  // the same failure with the source answering: the rollback starts it again, and nothing is left stopped
  let started = false;
  const S2 = new Virsh("qemu:///a", fakeHost(hostWith(() => (started ? "running" : "shut off"), (a) => (a[0] === "start" ? ((started = true), "") : undefined)), log));
  const r2 = await rollback(req({ uuid: "u-1" }), S2, T, facts({ offline: true, stopped: true }), [], () => undefined);
  expect([r2.at, r2.leftStopped, r2.summary]).toEqual(["from", false, "Rollback: started again on hv-a. The VM runs on hv-a as before."]);
});

test("a move of a VM that an earlier failed move shut down treats it as running: a failure now starts it again on the source", async () => {
  const log: string[][] = [];
  const lines: string[] = [];
  let started = false;
  const S = new Virsh("qemu:///a", fakeHost((a) => {
    if (a[0] === "domstate") return started ? "running\n" : "shut off\n";
    if (a[0] === "dumpxml") return dom();
    if (a[0] === "start") return ((started = true), "");
    if (a[0] === "domuuid") return "u-1\n";
    return source(a);
  }, log));
  const T = new Virsh("qemu:///b", fakeHost((a) => (a[0] === "vol-create-as" ? new CommandError(["virsh"], 1, null, false, "error: pool default is full", "") : target(50 * 2 ** 30)(a)), log));
  const hosts: Record<string, Virsh> = { "qemu:///a": S, "qemu:///b": T };
  const err = await moveVm(req({ uuid: "u-1", startStopped: true }), { log: (l) => lines.push(l), connect: (u) => hosts[u] }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(MigrationError);
  const f = (err as MigrationError).failure;
  expect(lines[0]).toBe("web-1: pre-checks passed (hv-a: shut off, shut down by an earlier move that failed: it is started on hv-b); moving offline, storage copy");
  expect([f.at, f.leftStopped, f.record.failedStep, f.record.rollback]).toEqual(["from", false, "prepare target", ["started again on hv-a"]]);
  expect(mutating(log.filter((l) => l[3] === "qemu:///a"))).toEqual(["start", "metadata"]); // started, then its stop mark removed
  // without the record, a stopped VM is its owner's choice: it stays stopped
  started = false;
  log.length = 0;
  const err2 = await moveVm(req({ uuid: "u-1" }), { log: () => undefined, connect: (u) => hosts[u] }).catch((e: unknown) => e);
  expect([(err2 as MigrationError).failure.leftStopped, (err2 as MigrationError).record.rollback]).toEqual([false, []]);
  expect(mutating(log.filter((l) => l[3] === "qemu:///a"))).toEqual([]);
});

test("a VM left stopped by a failed move makes the next plan start it, and the next move carry that", () => {
  const stopped = { ...inputs(), overlayVolume: "web-1.qcow2", isoVolume: "i.iso", diskPath: "/d", isoPath: "/i", stoppedByMove: "hv-a -> hv-b at 2026-11-23T21:00:00.000Z" };
  expect(placementDiff(stopped, inputs()).changes).toBe(true);
  expect(placementDiff({ ...stopped, stoppedByMove: undefined }, inputs()).changes).toBe(false);
  expect(moveRequest(stopped, inputs({ hostName: "hv-b", uri: "qemu:///b" })).startStopped).toBe(true);
  expect(moveRequest({ ...stopped, stoppedByMove: undefined }, inputs({ hostName: "hv-b", uri: "qemu:///b" })).startStopped).toBe(false);
});

// issue 10: a host's URI changes when its operator changes the transport, key or known_hosts file; the VM stays where
// it is. Before, any URI change was a migration to "another" host, which the pre-check refused (the name is taken).
test("a new URI for the same host name is recorded, not a move; a new host name is a move", () => {
  const reach = inputs({ uri: "qemu+libssh://root@hv-a/system?known_hosts=/etc/vm-infra/known_hosts" });
  expect(moves(inputs(), reach)).toBe(false);
  expect(placementDiff(inputs(), reach)).toMatchObject({ changes: true, replaces: [] });
  expect(checkMove(inputs(), { ...reach, memoryMiB: 2048 })).toEqual([]); // not a move: a restart with the new URI is fine
  expect(moves(inputs(), inputs({ hostName: "hv-b" }))).toBe(true);
});
