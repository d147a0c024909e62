// Fleet rules (issue 12): waves (migration.after), drain placement, the move limiter, the refusal to move a drained VM
// back by itself, and what an apply reports for each planned move. Pure code, exact values.
import { drainPlan, waves } from "../../config/fleet";
import { LIMIT_DEFAULTS, parseSpec, SpecError, type VmSpec } from "../../config/spec";
import { MoveLimiter } from "../../providers/migration/limits";
import { checkUndrain, type PlacementInputs } from "../../providers/placement/rules";
import { moveOutcomes, withWaves, type PlannedMigration } from "../../cli/result";
import { markdown } from "../../cli/markdown";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBsDSiUG+pm/RKi1LSX+t9/dajLwyJtlG+n01nxm0rVf lab";
const host = (o: Record<string, unknown> = {}) => ({ uri: "qemu:///system", network: "lab", domainType: "qemu", ...o });
const raw = (hosts: Record<string, unknown>, vms: Record<string, unknown>[], extra: Record<string, unknown> = {}) => ({
  hosts, image: { volume: "base.qcow2" }, readiness: { privateKeyPath: "/keys/id" }, vms: vms.map((v) => ({ sshKeys: [KEY], ...v })), ...extra,
});
const problems = (r: ReturnType<typeof raw>) => {
  try { parseSpec(r); return []; } catch (e) { if (e instanceof SpecError) return e.problems; throw e; }
};

test("after: unknown names, a VM waiting for itself and cycles are refused before anything runs", () => {
  const hosts = { "hv-a": host() };
  expect(problems(raw(hosts, [{ name: "db", host: "hv-a", migration: { after: ["dbx"] } }, { name: "app", host: "hv-a", migration: { after: ["app"] } }])))
    .toEqual(['vms[0] ("db").migration.after: unknown VM "dbx"; known: db, app', 'vms[1] ("app").migration.after: a VM cannot wait for itself']);
  expect(problems(raw(hosts, [{ name: "a", host: "hv-a", migration: { after: ["c"] } }, { name: "b", host: "hv-a", migration: { after: ["a"] } },
    { name: "c", host: "hv-a", migration: { after: ["b"] } }])))
    .toEqual(["vms: migration.after makes a cycle (a -> c -> b -> a): no VM of it could ever move first"]);
  expect(problems(raw(hosts, [{ name: "a", host: "hv-a", migration: { after: "b" } }]))).toEqual(['vms[0] ("a").migration.after: a list of VM names']);
});

test("waves: each VM is built after those it waits for, otherwise in declared order", () => {
  const vm = (name: string, after?: string[]) => ({ name, migration: { after } }) as unknown as VmSpec;
  expect(waves([vm("app-1", ["db"]), vm("web"), vm("db"), vm("app-2", ["db", "app-1"])]).map((w) => `${w.vm.name}:${w.wave}`))
    .toEqual(["db:1", "app-1:2", "web:1", "app-2:3"]);
});

test("drain: every VM declared on the draining host goes to the least loaded host that can take it; a second run chooses the same", () => {
  const r = raw({ "hv-a": host({ drain: true }), "hv-b": host(), "hv-c": host() }, [
    { name: "big", host: "hv-a", memoryMiB: 2048 }, { name: "s1", host: "hv-a", memoryMiB: 512 }, { name: "s2", host: "hv-a", memoryMiB: 512 },
    { name: "stay", host: "hv-b", memoryMiB: 1024 },
  ]);
  const s = parseSpec(r);
  expect(s.drain).toEqual([{ vm: "big", from: "hv-a", to: "hv-c" }, { vm: "s1", from: "hv-a", to: "hv-b" }, { vm: "s2", from: "hv-a", to: "hv-b" }]);
  expect(s.vms.map((v) => [v.name, v.host, v.drainedFrom])).toEqual([["big", "hv-c", "hv-a"], ["s1", "hv-b", "hv-a"], ["s2", "hv-b", "hv-a"], ["stay", "hv-b", undefined]]);
  expect(parseSpec(r).drain).toEqual(s.drain);
});

test("drain respects capacity, anti-affinity, shared pools and the domain's host properties, and says why nothing fits", () => {
  const hosts = {
    "hv-a": host({ drain: true, sharedPool: "nfs" }),
    "hv-b": host({ capacity: { memoryMiB: 1536, vcpus: 8 }, sharedPool: "nfs" }),
    "hv-c": host({ domainType: "kvm" }),
    "hv-d": host(),
  };
  const s = parseSpec(raw(hosts, [{ name: "db-1", host: "hv-a", memoryMiB: 1024, group: "db" }, { name: "web", host: "hv-a", memoryMiB: 1024 },
    { name: "db-2", host: "hv-d", group: "db" }]));
  // db-1 (first by name at equal size) takes hv-b; web no longer fits there and goes to hv-d (hv-c is kvm)
  expect(s.drain).toEqual([{ vm: "db-1", from: "hv-a", to: "hv-b" }, { vm: "web", from: "hv-a", to: "hv-d" }]);
  expect(problems(raw(hosts, [{ name: "db-1", host: "hv-a", memoryMiB: 2048, group: "db", storage: "shared" }, { name: "db-2", host: "hv-d", group: "db" }])))
    .toEqual(['hosts."hv-a".drain: no host can take vm db-1 (2048 MiB, 1 vCPU, group db): hv-b: 1536 MiB of its 1536 MiB capacity free; ' +
      "hv-c: another domainType (kvm instead of qemu); hv-d: does not share pool nfs. Nothing was moved; add capacity or a host, or drain later"]);
  expect(problems(raw({ "hv-a": host({ drain: true }), "hv-b": host({ drain: true }) }, [{ name: "w", host: "hv-a", vcpus: 2 }])))
    .toEqual(['hosts."hv-a".drain: no host can take vm w (1024 MiB, 2 vCPUs): hv-b: draining too. Nothing was moved; add capacity or a host, or drain later']);
  expect(problems(raw({ "hv-a": host({ drain: true }), "hv-b": host() }, [{ name: "w", host: "hv-a", group: "g" }, { name: "x", host: "hv-b", group: "g" }])))
    .toEqual(['hosts."hv-a".drain: no host can take vm w (1024 MiB, 1 vCPU, group g): hv-b: runs x of group g. Nothing was moved; add capacity or a host, or drain later']);
  expect(drainPlan({}, []).choices).toEqual([]);
});

test("migrationLimits: defaults with their anchors, a bad value refused", () => {
  const hosts = { "hv-a": host() };
  expect(parseSpec(raw(hosts, [])).limits).toEqual({ outgoingPerHost: 2, incomingPerHost: 2, perUpdate: 5 });
  expect(LIMIT_DEFAULTS).toEqual({ outgoingPerHost: 2, incomingPerHost: 2, perUpdate: 5 });
  expect(problems(raw(hosts, [], { migrationLimits: { outgoingPerHost: 0, perUpdat: 3 } })))
    .toEqual(["migrationLimits.outgoingPerHost: an integer 1..64", "migrationLimits.perUpdat: unknown option (known: outgoingPerHost, incomingPerHost, perUpdate)"]);
});

test("the limiter: at most 2 leaving a host, 2 arriving, 5 in the update; a waiting move says for what and starts when one ends", async () => {
  const l = new MoveLimiter();
  const log: string[] = [];
  const say = (s: string) => log.push(s);
  const started: string[] = [];
  const go = (vm: string, from: string, to: string) => l.acquire({ vm, from, to }, undefined, say).then((release) => { started.push(vm); return release; });
  const a = await go("a", "hv-a", "hv-b");
  const b = await go("b", "hv-a", "hv-c");
  const c = go("c", "hv-a", "hv-d");
  const d = await go("d", "hv-x", "hv-y"); // other hosts: not held up by c
  await new Promise((r) => setImmediate(r));
  expect(started).toEqual(["a", "b", "d"]);
  expect(log).toEqual(["c: waiting to move hv-a -> hv-d: 2 moves already leaving hv-a (a, b; at most 2: migrationLimits.outgoingPerHost)"]);
  a();
  a(); // a second release of the same move frees nothing more
  const cr = await c;
  expect(started).toEqual(["a", "b", "d", "c"]);
  expect(log[1]).toMatch(/^c: starting its move hv-a -> hv-d after waiting \d+\.\d s$/);
  expect(l.now.map((s) => s.vm).sort()).toEqual(["b", "c", "d"]);
  expect(l.arriving("hv-d", "x")).toEqual([{ vm: "c", memoryMiB: 0 }]);
  expect(l.arriving("hv-d", "c")).toEqual([]);
  expect(l.blocker({ vm: "e", from: "hv-q", to: "hv-b" }, { outgoingPerHost: 2, incomingPerHost: 1, perUpdate: 5 })).toBeUndefined();
  expect(l.blocker({ vm: "e", from: "hv-q", to: "hv-y" }, { outgoingPerHost: 2, incomingPerHost: 1, perUpdate: 5 }))
    .toBe("1 move already arriving on hv-y (d; at most 1: migrationLimits.incomingPerHost)");
  expect(l.blocker({ vm: "e", from: "hv-q", to: "hv-r" }, { outgoingPerHost: 2, incomingPerHost: 2, perUpdate: 3 }))
    .toBe("3 moves already running in this update (b, c, d; at most 3: migrationLimits.perUpdate)");
  b(); cr(); d();
  expect(l.now).toEqual([]);
});

test("a drained VM is not moved back by itself when the mark goes: refused with what to write", () => {
  const olds = { name: "app-1", hostName: "hv-b", drainedFrom: "hv-a" } as Partial<PlacementInputs>;
  const news = (o: Partial<PlacementInputs>) => ({ name: "app-1", hostName: "hv-a", ...o }) as PlacementInputs;
  expect(checkUndrain(olds, news({}))).toEqual([{ property: "hostName", reason: "app-1: runs on hv-b, where the drain of hv-a moved it; hosts.hv-a.drain " +
    "is no longer set, but vm-infra does not move drained VMs back by itself. Set app-1's host to hv-b (nothing moves); to move it back, set it to hv-a in a later update" }]);
  expect(checkUndrain(olds, news({ hostName: "hv-b" }))).toEqual([]); // written where it runs
  expect(checkUndrain(olds, news({ hostName: "hv-c" }))).toEqual([]); // an explicit move elsewhere
  expect(checkUndrain(olds, news({ hostName: "hv-b", drainedFrom: "hv-a" }))).toEqual([]); // still draining
  expect(checkUndrain({ name: "app-1", hostName: "hv-b" }, news({}))).toEqual([]); // an ordinary move
});

test("a move still waiting when the apply is cancelled never starts; the running ones are not touched", async () => {
  const l = new MoveLimiter();
  let cancelled = false;
  const a = await l.acquire({ vm: "a", from: "hv-a", to: "hv-b" }, undefined, () => undefined);
  const b = await l.acquire({ vm: "b", from: "hv-a", to: "hv-b" }, undefined, () => undefined);
  const c = l.acquire({ vm: "c", from: "hv-a", to: "hv-b" }, undefined, () => undefined, () => cancelled);
  cancelled = true;
  a();
  await expect(c).rejects.toThrow("c: not started: the apply was cancelled while its move hv-a -> hv-b waited for its turn; it runs on hv-a as before");
  expect(l.now.map((s) => s.vm)).toEqual(["b"]);
  b();
});

const planned = (vm: string, after?: string[]): PlannedMigration => ({ vm, from: "hv-a", to: "hv-b", mode: "live", storage: "shared", memoryMiB: 384,
  diskGiBAtMost: 0, estimateSeconds: 4, estimateBasis: "b", wave: 1, ...(after ? { after } : {}) });

test("an apply reports every planned move: moved, rolled back, or not started because what it waits for failed", () => {
  const ms = withWaves([planned("db"), planned("app-1", ["db"]), planned("app-2", ["app-1"]), planned("web"), planned("cache", ["other"])]);
  expect(ms.map((m) => `${m.vm}:${m.wave}`)).toEqual(["db:1", "app-1:2", "app-2:3", "web:1", "cache:1"]);
  const rec = (vm: string, outcome: string) => ({ vm, record: { outcome } });
  expect(moveOutcomes(ms, [rec("db", "rolled back"), rec("web", "moved")], ["db"], "failed").map((o) => [o.vm, o.outcome, o.reason])).toEqual([
    ["db", "rolled back", undefined], ["app-1", "not started", "not started: db failed"], ["app-2", "not started", "not started: app-1 failed"],
    ["web", "moved", undefined], ["cache", "not started", "not started: the update stopped after db failed"],
  ]);
  expect(moveOutcomes(ms.slice(0, 1), [], [], "cancelled")[0].reason).toBe("not started: the apply was cancelled");
  const md = markdown({ schemaVersion: 1, command: "apply", stack: "s", result: "rolled-back", exitCode: 10, startedAt: "T", durationSeconds: 1, changeSummary: {},
    steps: [], migrations: ms.slice(0, 2), policies: [], warnings: [], errors: [],
    moves: moveOutcomes(ms.slice(0, 2), [rec("db", "rolled back")], ["db"], "failed") });
  expect(md).toContain("| app-1 | live, shared storage | hv-a -> hv-b | 384 MiB memory, no disk | ~4 s (b) | not run (--check-hosts) | 2 (after db) |");
  expect(md).toContain("#### Moves not started\n\n| VM | from -> to | why |\n|---|---|---|\n| app-1 | hv-a -> hv-b | not started: db failed |");
});
