// `vm-infra plan|apply`: the result built from engine events, the PR comment, the arguments. Events are the shapes
// the Automation API hands over (sdk/nodejs/automation/events.ts); the real engine drives them in tests/e2e/gitops.test.ts.
import type { EngineEvent } from "@pulumi/pulumi/automation";
import { Collector, EXIT, changedKeys, plannedMigration } from "../../cli/result";
import { MAX_COMMENT, markdown, marker } from "../../cli/markdown";
import { UsageError, parseArgs, pendingCreates } from "../../cli/main";

const T = "pulumi-nodejs:dynamic/vm-infra:";
const urn = (type: string, name: string) => `urn:pulumi:ci::vm-infra::vm-infra:index:Vm$${type}::${name}`;
const ev = (x: Partial<EngineEvent>): EngineEvent => ({ sequence: 0, timestamp: 0, ...x });
const pre = (op: string, type: string, name: string, olds?: Record<string, unknown>, news?: Record<string, unknown>, keys?: string[]) =>
  ev({ resourcePreEvent: { metadata: { op: op as never, urn: urn(type, name), type, provider: "",
    ...(olds ? { old: { inputs: olds, outputs: {} } as never } : {}), ...(news ? { new: { inputs: news, outputs: {} } as never } : {}), ...(keys ? { keys } : {}) } } });
const placement = (o: Record<string, unknown>) => ({ name: "web-1", hostName: "hv-a", memoryMiB: 768, diskGiB: 4, storage: "local",
  migration: { mode: "live", bandwidthMiBs: 0 }, __provider: "p", userData: "[secret]", ...o });

test("a move is reported with what moves and an estimate on its stated basis; the secret input is compared, never copied", () => {
  const c = new Collector("plan", "ci", new Date(0));
  c.add(pre("same", `${T}SeedIso`, "web-1-cidata", {}, {}));
  c.add(pre("update", `${T}Placement`, "web-1-placement", placement({}), placement({ hostName: "hv-b", moveFrom: "hv-a", __provider: "q" })));
  c.add(ev({ summaryEvent: { maybeCorrupt: false, durationSeconds: 3, resourceChanges: { update: 1, same: 6 }, policyPacks: {} } }));
  const r = c.result("plan", "ok", { now: new Date(3500) });
  expect(r).toEqual({
    schemaVersion: 1, command: "plan", stack: "ci", result: "changes", exitCode: 0, startedAt: "1970-01-01T00:00:00.000Z", durationSeconds: 3.5,
    changeSummary: { update: 1, same: 6 },
    steps: [{ op: "update", type: "Placement", name: "web-1-placement", vm: "web-1", changedKeys: ["hostName"], why: "migrates hv-a -> hv-b (live), no replacement" }],
    migrations: [{ vm: "web-1", from: "hv-a", to: "hv-b", mode: "live", storage: "local", memoryMiB: 768, diskGiBAtMost: 4, estimateSeconds: 45,
      estimateBasis: "768 MiB memory + at most 4 GiB disk at no cap: an assumed 110 MiB/s (1 GbE); a guest that dirties memory fast takes longer", wave: 1 }],
    policies: [], warnings: [], errors: [],
  });
  expect(JSON.stringify(r)).not.toContain("[secret]");
});

test("a capped move on shared storage moves memory only; no change of host is no migration", () => {
  expect(plannedMigration(placement({ storage: "shared" }), placement({ hostName: "hv-b", storage: "shared", migration: { mode: "paused", bandwidthMiBs: 64 } })))
    .toMatchObject({ mode: "paused", diskGiBAtMost: 0, estimateSeconds: 12, estimateBasis: "768 MiB memory at its bandwidth cap, 64 MiB/s; a guest that dirties memory fast takes longer" });
  expect(plannedMigration(placement({}), placement({ memoryMiB: 1024 }))).toBeUndefined();
  expect(changedKeys({ a: 1, b: [1], __provider: "x", moveFrom: "hv-a" }, { a: 1, b: [2], c: 3, __provider: "y" })).toEqual(["b", "c"]);
});

test("a replacement says which keys force it and why", () => {
  const c = new Collector("plan", "ci");
  c.add(pre("create-replacement", `${T}Placement`, "web-1-placement", placement({}), placement({ diskGiB: 8 }), ["diskGiB"]));
  c.add(pre("delete-replaced", `${T}Placement`, "web-1-placement", placement({}), placement({ diskGiB: 8 }), ["diskGiB"]));
  expect(c.result("plan", "ok").steps).toEqual([{ op: "replace", type: "Placement", name: "web-1-placement", vm: "web-1", changedKeys: ["diskGiB"],
    replaceKeys: ["diskGiB"], why: "the disk's size cannot change in place: a new overlay on the base image" }]);
});

test.each([
  ["no changes", [] as EngineEvent[], "plan", "ok", false, "no-changes", EXIT.ok],
  ["changes under --expect-no-changes", [pre("create", `${T}Placement`, "web-1-placement", undefined, placement({}))], "plan", "ok", true, "changes", EXIT.changesPresent],
  ["a mandatory policy", [ev({ policyEvent: { message: "no", color: "", policyName: "blast-radius", policyPackName: "vm-infra", policyPackVersion: "0.1.0",
    policyPackVersionTag: "", enforcementLevel: "mandatory" } })], "plan", "failed", false, "policy-violation", EXIT.policy],
  ["a config error", [ev({ diagnosticEvent: { message: "invalid vm-infra config:\n  - vms[0].name: ...", color: "", severity: "error" } })], "plan", "failed", false, "config-error", EXIT.usage],
  ["cancelled", [] as EngineEvent[], "apply", "cancelled", false, "cancelled", EXIT.cancelled],
  ["a failed apply", [] as EngineEvent[], "apply", "failed", false, "failed", EXIT.error],
  ["a rolled-back move", [] as EngineEvent[], "apply", "failed", false, "rolled-back", EXIT.rolledBack],
] as const)("outcome: %s", (what, events, kind, ended, expectNoChanges, result, exitCode) => {
  const c = new Collector(kind, "ci", new Date(1000));
  for (const e of events) c.add(e);
  if (what === "a rolled-back move") c.recordsFrom([{ type: `${T}Placement`, outputs: { name: "web-1", lastMigration: { outcome: "rolled back", startedAt: new Date(2000).toISOString() } } },
    { type: `${T}Placement`, outputs: { name: "db-1", lastMigration: { outcome: "moved", startedAt: new Date(0).toISOString() } } }]);
  if (what === "a rolled-back move") expect(c.records.map((r) => r.vm)).toEqual(["web-1"]); // only the moves of this run
  expect(c.result(kind, ended, { expectNoChanges })).toMatchObject({ result, exitCode });
});

test("the PR comment: marker, counts, VM changes, moves, policies; within GitHub's limit with the raw output cut first", () => {
  const c = new Collector("plan", "ci", new Date(0));
  c.add(pre("update", `${T}Placement`, "web-1-placement", placement({}), placement({ hostName: "hv-b" })));
  c.add(ev({ policyEvent: { resourceUrn: urn(`${T}Placement`, "web-1-placement"), message: "vm web-1: too big | really", color: "", policyName: "vm-size-ceiling",
    policyPackName: "vm-infra", policyPackVersion: "0.1.0", policyPackVersionTag: "", enforcementLevel: "warning" } }));
  c.add(ev({ summaryEvent: { maybeCorrupt: false, durationSeconds: 1, resourceChanges: { update: 1, same: 3 }, policyPacks: {} } }));
  const r = c.result("plan", "ok", { now: new Date(1000) });
  const md = markdown(r, "Previewing update (ci):\n```\n");
  expect(md).toMatchSnapshot();
  expect(md.startsWith(marker("ci"))).toBe(true);
  const big = markdown(r, "x".repeat(200_000));
  expect(big.length).toBeLessThanOrEqual(MAX_COMMENT);
  expect(big).toContain("| web-1 | live, local storage | hv-a -> hv-b |");
  expect(big).toMatch(/\[first \d+ characters cut\]/);
});

test("arguments: help, defaults, and clear usage errors", () => {
  expect(parseArgs([])).toHaveProperty("help");
  expect(parseArgs(["plan", "--help"])).toHaveProperty("help");
  const p = parseArgs(["plan", "--stack", "ci", "--expect-no-changes", "--json", "r.json"]);
  expect(p).toMatchObject({ command: "plan", stack: "ci", expectNoChanges: true, refresh: false });
  expect((p as { policyPacks: string[] }).policyPacks).toHaveLength(1); // the project's own pack by default
  expect(parseArgs(["apply", "--stack", "ci", "--no-policy"])).toMatchObject({ policyPacks: [] });
  for (const [argv, message] of [
    [["deploy"], 'unknown command "deploy": plan, apply, refresh or outputs'],
    [["plan"], "vm-infra plan: --stack is required"],
    [["plan", "--stack"], "vm-infra plan: --stack needs a value"],
    [["apply", "--stack", "ci", "--expect-no-changes"], 'vm-infra apply: unknown option "--expect-no-changes" (vm-infra apply --help)'],
    [["plan", "--stack", "a b"], 'vm-infra plan: "a b" is not a stack name'],
  ] as const) {
    expect(() => parseArgs([...argv])).toThrow(UsageError);
    expect(() => parseArgs([...argv])).toThrow(message);
  }
});

test("an operation refused by the stack lock says who holds it, never the backend's URL or password", () => {
  const c = new Collector("apply", "prod");
  c.failedBeforeEngine("code: 255\n stdout: \n stderr: error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) to end " +
    "or delete the lock file with `pulumi cancel`.\n  postgres://vmi:s3cret@127.0.0.1:5432/pulumi/.pulumi/locks/organization/vm-infra/prod/1.json: " +
    "created by root@ci-7 (pid 4242) at 2026-11-30T22:00:00Z\n");
  expect(c.result("apply", "failed")).toMatchObject({ result: "failed", exitCode: 1, errors: ["stack prod is locked by another update (created by root@ci-7 " +
    "(pid 4242) at 2026-11-30T22:00:00Z): nothing was done; run again when it has finished (a lock left by a killed run is removed with pulumi cancel)"] });
  const d = new Collector("plan", "prod");
  d.failedBeforeEngine("code: 255\nstderr: error: could not open postgres://vmi:s3cret@db:5432/pulumi: connection refused");
  expect(d.result("plan", "failed").errors).toEqual(["error: could not open postgres://vmi:***@db:5432/pulumi: connection refused"]);
});

test("--check-hosts: each planned move's pre-checks; one that would fail makes the plan exit 12 and says why", async () => {
  const c = new Collector("plan", "ci");
  c.add(pre("update", `${T}Placement`, "web-1-placement", placement({}), placement({ hostName: "hv-b" })));
  const asked: unknown[] = [];
  c.add(pre("create", `${T}BaseImageVolume`, "base-hv-b-volume", undefined, {}));
  await c.checkHosts(async (olds, news, upload) => { asked.push([olds, news.hostName, upload]); return ["room: pool default on hv-b has 10 MiB available"]; });
  // the old outputs (none in this event), the new inputs, and: this update uploads the base image to hv-b first
  expect(asked).toEqual([[{}, "hv-b", true]]);
  const r = c.result("plan", "ok");
  expect([r.result, r.exitCode, r.migrations[0].preChecks]).toEqual(["would-fail", EXIT.wouldFail, { ok: false, problems: ["room: pool default on hv-b has 10 MiB available"] }]);
  expect(markdown(r)).toContain("| **would fail**: room: pool default on hv-b has 10 MiB available |");
});

test("the creates a killed run left: only pending creates, by resource name, sorted", () => {
  const op = (type: string, name: string) => ({ type, resource: { urn: `urn:pulumi:s::vm-infra::vm-infra:index:Vm$pulumi-nodejs:dynamic:Resource::${name}` } });
  expect(pendingCreates({ pending_operations: [op("creating", "web-1-placement"), op("updating", "db-placement"), op("creating", "web-1-cidata"), op("deleting", "x")] }))
    .toEqual(["web-1-cidata", "web-1-placement"]);
  expect(pendingCreates({})).toEqual([]);
  expect(pendingCreates(undefined)).toEqual([]);
});
