// `vm-infra plan|apply|refresh` (issue 11) on the real engine, the lab and a team backend: the whole suite keeps its
// stack in a real PostgreSQL (Pulumi's postgres:// backend, started here on loopback and removed afterwards). One VM:
// the plan of its create (JSON exact, Markdown by snapshot), --expect-no-changes, the apply, a second apply at the same
// time refused by the lock without changing anything, no-change, in-place update and replacement plans, refresh, and
// destroy on that backend. Moves through the CLI (plan JSON, apply records, a rolled-back failure, SIGTERM) are in
// migration.test.ts, where VMs are already moving.
import { readdirSync } from "node:fs";
import { poll } from "../../host/poll";
import * as path from "node:path";
import { run } from "../../host/runner";
import { ensureLab, writeLabStack } from "../../lab/stack";
import { Image } from "../../lab/image";
import { pendingCreates } from "../../cli/main";
import { killPulumi, whileHeld } from "../support/faults";
import { pulumi, stateOutputs, stopVmInfra, vmInfra } from "../support/pulumiCli";
import { GUEST, inventory, libvirtdPid, virsh, whereIs } from "../support/lab";
import { startPostgres, type Postgres } from "../support/postgres";
import type { Result } from "../../cli/result";

jest.setTimeout(30 * 60_000);

const root = path.join(__dirname, "..", "..");
const h = { dir: root, stack: "e2e-gitops" };
let pg: Postgres;
let image: Image;
let publicKey: string;
let before: string[];
const savedBackend = process.env.PULUMI_BACKEND_URL;

const configure = (vm: Record<string, unknown>) =>
  writeLabStack(root, h.stack, [{ name: "ops-a", host: "hv-a", ...GUEST, ...vm }], image, publicKey);

/** The CLI as a pipeline runs it, on the PostgreSQL backend given in its environment. */
const cli = (args: string[], opts: { onStdout?: (s: string) => void } = {}) => vmInfra(h, args, { env: { PULUMI_BACKEND_URL: pg.url }, ...opts });
const brief = (r: Result) => r.steps.map((s) => `${s.op} ${s.type} ${s.name}${s.changedKeys.length ? ` [${s.changedKeys.join(",")}]` : ""}`).sort();

beforeAll(async () => {
  ({ image, publicKey } = await ensureLab());
  before = await inventory();
  pg = await startPostgres();
  process.env.PULUMI_BACKEND_URL = pg.url; // the suite's own pulumi calls (stack init, config) go there too
  await run("pulumi", ["stack", "init", h.stack, "--cwd", root, "--non-interactive"], { timeoutMs: 60_000 });
  await configure({});
});

afterAll(async () => {
  await pulumi(h, ["destroy", "--yes", "--skip-preview"]).catch(() => undefined);
  await pulumi(h, ["stack", "rm", "--yes", "--force"]).catch(() => undefined);
  if (savedBackend === undefined) delete process.env.PULUMI_BACKEND_URL; else process.env.PULUMI_BACKEND_URL = savedBackend;
  await pg?.stop();
});

test("plan of a create under --expect-no-changes: exit 7, the JSON lists every step, the comment has its marker and tables, nothing runs", async () => {
  const r = await cli(["plan", "--expect-no-changes"]);
  expect(r.exitCode).toBe(7);
  const j = r.json!;
  expect({ ...j, startedAt: "T", durationSeconds: 0 }).toEqual({
    schemaVersion: 1, command: "plan", stack: "e2e-gitops", result: "changes", exitCode: 7, startedAt: "T", durationSeconds: 0,
    changeSummary: { create: 8 }, steps: expect.any(Array), migrations: [], policies: [], warnings: [], errors: [],
  });
  expect(brief(j)).toEqual(["create BaseImage base-hv-a", "create BaseImageVolume base-hv-a-volume", "create HostKey ops-a-hostkey", "create Placement ops-a-placement",
    "create Ready ops-a-ready", "create SeedIso ops-a-cidata", "create Vm ops-a"]);
  expect(r.md!.slice(0, r.md!.indexOf("<details>"))).toMatchSnapshot();
  expect(await inventory()).toEqual(before);
});

// a pipeline's job killed (SIGKILL: the CLI and the pulumi run under it) while the apply creates the VM: the engine
// keeps its pending creates; after pulumi cancel (the dead run's lock), plan says which, and the next apply drops them
// and runs those creates again
let pendingLeft: string[] = [];
let doneBeforeKill = 0;
let leftByKill: string[] = [];
test("an apply killed while it creates the VM: plan names the creates it left unfinished, and changes nothing", async () => {
  const first = cli(["apply"]).catch((e: Error) => e);
  // the moment the placement's overlay appears in hv-a's pool (seen in the daemon's own mount namespace), the daemon
  // is held, the job killed, the daemon let go: the overlay is made, the rest of the create is not
  const pool = `/proc/${libvirtdPid("hv-a")}/root/var/lib/libvirt/images`;
  const overlayThere = () => readdirSync(pool).some((f) => /^ops-a-[0-9a-f]{8}\.qcow2$/.test(f));
  await poll(async () => (overlayThere() ? { value: true } : undefined), { timeoutMs: 300_000, intervalMs: 5, what: "ops-a's overlay on hv-a" });
  await whileHeld("hv-a", async () => {
    await stopVmInfra(h, "apply", "KILL");
    await killPulumi(h.stack);
  });
  expect(await first).toBeInstanceOf(Error);
  leftByKill = (await virsh("hv-a").listVolumes("default")).filter((v) => v.startsWith("ops-a-"));
  expect(leftByKill).toEqual([expect.stringMatching(/^ops-a-[0-9a-f]{8}\.qcow2$/)]);
  await pulumi(h, ["cancel", "--yes"], 60_000, [0, 1, 255]);
  const d = JSON.parse((await pulumi(h, ["stack", "export"])).stdout).deployment;
  pendingLeft = pendingCreates(d);
  expect(pendingLeft).toContain("ops-a-placement");
  doneBeforeKill = (d.resources as { type: string }[]).filter((r) => !r.type.startsWith("pulumi:providers:")).length; // the stack's own resource too
  const inv = await inventory();
  const p = await cli(["plan"]);
  expect([p.exitCode, p.json!.result, p.json!.warnings]).toEqual([0, "changes", [`the state holds ${pendingLeft.length} create(s) a killed run left unfinished (${pendingLeft.join(", ")}): ` +
    "apply drops them from the state and runs those creates again"]]);
  expect(await inventory()).toEqual(inv); // the plan changed nothing
});

test("apply creates the VM; a second apply at the same time is refused by the stack lock and changes nothing", async () => {
  let seen = "";
  let started!: () => void;
  const updating = new Promise<void>((resolve) => (started = resolve));
  const first = cli(["apply"], { onStdout: (s) => { seen += s; if (seen.includes("Updating (")) started(); } });
  await updating;
  const second = await cli(["apply"]);
  expect([second.exitCode, second.json!.command, second.json!.result]).toEqual([1, "apply", "failed"]);
  expect(second.json!.errors.join("\n")).toMatch(/^stack e2e-gitops is locked by another update( \(.*\))?: nothing was done; run again when it has finished/);
  const a = await first;
  expect([a.exitCode, a.json!.result, a.json!.errors]).toEqual([0, "succeeded", []]);
  expect(a.json!.warnings).toEqual([`the state holds ${pendingLeft.length} create(s) a killed run left unfinished (${pendingLeft.join(", ")}): ` +
    "dropped from the state; their creates run again in this apply"]);
  expect(a.json!.changeSummary).toEqual({ create: 8 - doneBeforeKill, same: doneBeforeKill });
  expect(pendingCreates(JSON.parse((await pulumi(h, ["stack", "export"])).stdout).deployment)).toEqual([]);
  // the killed create's overlay: named in the apply's output and left; the VM has its own; removed here (the destroy
  // below must find nothing)
  const p = await stateOutputs(h, "ops-a-placement");
  const hv = virsh("hv-a");
  expect((await hv.listVolumes("default")).filter((v) => v.startsWith("ops-a-")).sort()).toEqual([...leftByKill, p.overlayVolume, p.isoVolume].sort());
  expect(a.stdout).toContain(`ops-a: pool default on hv-a holds 1 volume(s) named for ops-a that are not this create's: ${leftByKill[0]}; `);
  for (const v of leftByKill) await hv.exec(["vol-delete", "--pool", "default", "--", v]);
  expect((a.json!.outputs!.vms as Record<string, { host: string; status: string }>)["ops-a"]).toMatchObject({ host: "hv-a", status: "ready" });
  expect(await whereIs("ops-a")).toEqual({ "hv-a": "running" });
  const again = await cli(["plan", "--expect-no-changes"]);
  expect([again.exitCode, again.json!.result, again.json!.steps]).toEqual([0, "no-changes", []]);
});

test("plans of an in-place update and of a replacement say what changes and why", async () => {
  await configure({ memoryMiB: 1024 });
  const u = (await cli(["plan"])).json!;
  expect(u.steps.find((s) => s.name === "ops-a-placement")).toEqual({ op: "update", type: "Placement", name: "ops-a-placement", vm: "ops-a", changedKeys: ["memoryMiB"] });
  expect(u.steps.every((s) => s.op !== "replace")).toBe(true);
  await configure({ diskGiB: 5 });
  const r = await cli(["plan"]);
  expect(r.json!.steps.find((s) => s.name === "ops-a-placement")).toEqual({ op: "replace", type: "Placement", name: "ops-a-placement", vm: "ops-a",
    changedKeys: ["diskGiB"], replaceKeys: ["diskGiB"], why: "the disk's size cannot change in place: a new overlay on the base image" });
  expect(r.md).toContain("| ops-a | Placement | **replace** | diskGiB | the disk's size cannot change in place: a new overlay on the base image |");
  await configure({});
});

test("refresh and outputs on the PostgreSQL backend; destroy leaves nothing on any host", async () => {
  const r = await cli(["refresh"]);
  expect([r.exitCode, r.json!.result]).toEqual([0, "succeeded"]);
  const o = await cli(["outputs"]);
  expect(JSON.parse(o.stdout).vms["ops-a"].host).toBe("hv-a");
  await pulumi(h, ["destroy", "--yes", "--skip-preview"]);
  expect(await inventory()).toEqual(before);
  // the backend URL (with its password) never became a path: scripts/with-env.sh once made it a directory here
  expect(readdirSync(root).filter((f) => f.startsWith("postgres") || f.includes(pg.url.split("@")[0].split(":").pop()!))).toEqual([]);
});

test("bad usage exits 2 with the reason", async () => {
  const r = await run(path.join(root, "bin", "vm-infra"), ["plan", "--stak", "x"], { timeoutMs: 60_000, okCodes: [2] });
  expect(r.stderr.trim()).toBe('error: vm-infra plan: unknown option "--stak" (vm-infra plan --help)');
});
