// `vm-infra`: the entry point a pipeline calls (plan on a pull request, apply on merge), on Pulumi's Automation API
// over this project. No prompts, no TTY: the engine's progress goes to stdout as plain lines, vm-infra's verdict to
// stderr, the result to --json / --markdown files, and the exit code says what happened (cli/result.ts EXIT). SIGTERM or SIGINT asks the engine to stop: an
// operation in flight (a migration) completes or rolls back first, the stack lock is released, and the exit code is 8.
import { writeFileSync } from "node:fs";
import * as path from "node:path";
import { LocalWorkspace, StackNotFoundError, type EngineEvent, type Stack } from "@pulumi/pulumi/automation";
import { Collector, EXIT, shortType, type Result } from "./result";
import { markdown } from "./markdown";
import { Virsh } from "../host/virsh";
import { clearCancelled, markCancelled } from "../providers/migration/cancel";
import { planPreChecks } from "../providers/migration/preChecks";
import { moveRequest, type PlacementInputs, type PlacementOutputs } from "../providers/placement/rules";

const ROOT = path.join(__dirname, "..", ".."); // dist/cli/main.js -> the project
const DEFAULT_PACK = path.join(ROOT, "policy");

interface Options {
  command: "plan" | "apply" | "refresh" | "outputs";
  stack: string;
  json?: string;
  markdown?: string;
  refresh: boolean;
  checkHosts: boolean;
  expectNoChanges: boolean;
  policyPacks: string[];
  policyPackConfigs: string[];
}

const COMMON = `  --stack S                 the stack (required)
  --json FILE               write the result (schema: README, GitOps) to FILE
  --markdown FILE           write a PR comment (Markdown, at most 64,000 characters) to FILE`;
const POLICY = `  --policy-pack DIR         a policy pack to enforce (repeatable); default: this project's policy/
  --policy-pack-config F    its settings (repeatable, in the order of the packs)
  --no-policy               enforce no policy pack`;
export const HELP: Record<string, string> = {
  main: `vm-infra: plan and apply vm-infra stacks unattended (a GitOps pipeline's entry point)

usage: vm-infra <command> --stack S [options]

commands:
  plan      what an apply would change (runs nothing on any host), with the planned migrations and policy results
  apply     preview (policies refuse here, before anything runs), then apply
  refresh   read the hosts and record what is there
  outputs   the stack's outputs as JSON (secrets shown as "[secret]")

exit codes: 0 done / nothing to do, 1 error, 2 bad config or usage, 7 changes present under --expect-no-changes,
8 cancelled, 10 a change failed and was rolled back, 11 refused by a mandatory policy, 12 a planned move would fail
its pre-checks (plan --check-hosts)

vm-infra <command> --help for a command's options`,
  plan: `usage: vm-infra plan --stack S [--refresh] [--check-hosts] [--expect-no-changes] [--json FILE] [--markdown FILE] [policy options]

${COMMON}
  --refresh                 read the hosts first (the project's default: Pulumi.yaml refresh: always)
  --check-hosts             run each planned move's pre-checks against the real hosts (read-only); exit 12 if one would fail
  --expect-no-changes       exit 7 when the plan has changes
${POLICY}`,
  apply: `usage: vm-infra apply --stack S [--json FILE] [--markdown FILE] [policy options]

${COMMON}
${POLICY}`,
  refresh: `usage: vm-infra refresh --stack S [--json FILE]

${COMMON}`,
  outputs: `usage: vm-infra outputs --stack S

  --stack S                 the stack (required)`,
};

export class UsageError extends Error {}

export function parseArgs(argv: string[]): Options | { help: string } {
  const [command, ...rest] = argv;
  if (!command || command === "--help" || command === "-h" || command === "help") return { help: HELP.main };
  if (!["plan", "apply", "refresh", "outputs"].includes(command)) throw new UsageError(`unknown command ${JSON.stringify(command)}: plan, apply, refresh or outputs`);
  const o: Options = { command: command as Options["command"], stack: "", refresh: false, checkHosts: false, expectNoChanges: false, policyPacks: [], policyPackConfigs: [] };
  let noPolicy = false;
  const flags: Record<string, string[]> = {
    plan: ["--stack", "--json", "--markdown", "--refresh", "--check-hosts", "--expect-no-changes", "--policy-pack", "--policy-pack-config", "--no-policy"],
    apply: ["--stack", "--json", "--markdown", "--policy-pack", "--policy-pack-config", "--no-policy"],
    refresh: ["--stack", "--json", "--markdown"],
    outputs: ["--stack"],
  };
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (a === "--help" || a === "-h") return { help: HELP[command] };
    if (!flags[command].includes(a)) throw new UsageError(`vm-infra ${command}: unknown option ${JSON.stringify(a)} (vm-infra ${command} --help)`);
    const value = () => {
      const v = rest[++i];
      if (v === undefined || v.startsWith("--")) throw new UsageError(`vm-infra ${command}: ${a} needs a value`);
      return v;
    };
    if (a === "--stack") o.stack = value();
    else if (a === "--json") o.json = value();
    else if (a === "--markdown") o.markdown = value();
    else if (a === "--refresh") o.refresh = true;
    else if (a === "--check-hosts") o.checkHosts = true;
    else if (a === "--expect-no-changes") o.expectNoChanges = true;
    else if (a === "--policy-pack") o.policyPacks.push(path.resolve(value()));
    else if (a === "--policy-pack-config") o.policyPackConfigs.push(path.resolve(value()));
    else if (a === "--no-policy") noPolicy = true;
  }
  if (!o.stack) throw new UsageError(`vm-infra ${command}: --stack is required`);
  if (!/^[A-Za-z0-9_.\-/]{1,200}$/.test(o.stack)) throw new UsageError(`vm-infra ${command}: ${JSON.stringify(o.stack)} is not a stack name`);
  if (noPolicy && (o.policyPacks.length || o.policyPackConfigs.length)) throw new UsageError(`vm-infra ${command}: --no-policy with --policy-pack`);
  if (!noPolicy && o.policyPacks.length === 0 && (command === "plan" || command === "apply")) o.policyPacks.push(DEFAULT_PACK);
  return o;
}

const log = (s: string) => process.stderr.write(`${s}\n`);

/** A planned move's pre-checks against the hosts of its state and its config (see planPreChecks). */
function planChecks(): (olds: Record<string, unknown>, news: Record<string, unknown>, baseUploadedFirst: boolean) => Promise<string[]> {
  const check = planPreChecks((uri) => new Virsh(uri));
  return (olds, news, baseUploadedFirst) => check(moveRequest(olds as unknown as PlacementOutputs, news as unknown as PlacementInputs), baseUploadedFirst);
}

function write(o: Options, r: Result, raw: string) {
  if (o.json) writeFileSync(o.json, `${JSON.stringify(r, null, 2)}\n`);
  if (o.markdown) writeFileSync(o.markdown, markdown(r, raw));
  log(`vm-infra ${o.command} ${o.stack}: ${r.result} (exit ${r.exitCode})${r.errors.length ? `: ${r.errors[r.errors.length - 1]}` : ""}`);
}

const masked = (outs: Record<string, { value: unknown; secret: boolean }>) =>
  Object.fromEntries(Object.entries(outs).map(([k, v]) => [k, v.secret ? "[secret]" : v.value]));

/**
 * The stack outputs with each VM's host taken from its placement in the state. Pulumi writes stack outputs only when
 * an update completes: after a failed or cancelled one they still name the host of the last completed update, while
 * the placement's state (written by the provider, even for a failed move) says where the VM runs now.
 */
type StateResource = { type: string; outputs?: Record<string, unknown> };
const stateResources = async (stack: Stack): Promise<StateResource[]> => (await stack.exportStack()).deployment?.resources ?? [];

/** Names of the resources a killed run was creating: the engine keeps such pending creates through any number of updates. */
export function pendingCreates(deployment: { pending_operations?: { type?: string; resource?: { urn?: string } }[] } | undefined): string[] {
  return (deployment?.pending_operations ?? []).filter((op) => op.type === "creating" && op.resource?.urn).map((op) => op.resource!.urn!.split("::").pop()!).sort();
}

async function outputsOf(stack: Stack, resources: StateResource[], warn: (s: string) => void): Promise<Record<string, unknown>> {
  const outs = masked(await stack.outputs());
  const vms = outs.vms as Record<string, Record<string, unknown>> | undefined;
  for (const r of resources) {
    const name = r.outputs?.name as string | undefined;
    const host = r.outputs?.hostName as string | undefined;
    if (shortType(r.type) !== "Placement" || !name || !host || !vms?.[name] || vms[name].host === host) continue;
    warn(`vm ${name}: the stack outputs say ${String(vms[name].host)} (written by the last update that completed); the state says ${host}, ` +
      "which this result reports; the next apply that completes writes the outputs again");
    vms[name] = { ...vms[name], host };
  }
  return outs;
}

async function operate(o: Options, stack: Stack, signal: AbortSignal): Promise<number> {
  let raw = "";
  // the engine's progress goes to stdout as plain lines (no TTY needed); vm-infra's own lines and errors to stderr
  const onOutput = (s: string) => { raw += s; process.stdout.write(s); };
  const common = (c: Collector) => ({ onOutput, onEvent: (e: EngineEvent) => c.add(e), color: "never" as const, signal });
  const policy = { policyPacks: o.policyPacks, policyPackConfigs: o.policyPackConfigs };
  // an operation that fails before the engine runs (the stack locked by another update, a backend that does not answer)
  // has no error event: its error is the CLI's own text
  const ended = async (c: Collector, p: Promise<unknown>): Promise<"ok" | "failed" | "cancelled"> => {
    try { await p; return "ok"; } catch (e) {
      if (signal.aborted) return "cancelled";
      c.failedBeforeEngine(e instanceof Error ? e.message : String(e));
      return "failed";
    }
  };
  if (o.command === "refresh") {
    const c = new Collector("refresh", o.stack);
    const how = await ended(c, stack.refresh({ ...common(c) }));
    const r = c.result("refresh", how);
    write(o, r, raw);
    return r.exitCode;
  }
  const plan = new Collector(o.command, o.stack);
  // a killed run's pending creates: the plan says so; the apply drops them first (every vm-infra create can run again:
  // a placement's names what a killed one left and refuses a domain it made, see README "Ownership")
  const pending = pendingCreates((await stack.exportStack().catch(() => undefined))?.deployment);
  const pendingLine = (done: string) => `the state holds ${pending.length} create(s) a killed run left unfinished (${pending.join(", ")}): ${done}`;
  if (pending.length && o.command === "plan") plan.warn(pendingLine("apply drops them from the state and runs those creates again"));
  let cleared: string | undefined;
  if (pending.length && o.command === "apply") {
    const c = new Collector("refresh", o.stack);
    const how = await ended(c, stack.refresh({ ...common(c), clearPendingCreates: true }));
    if (how !== "ok") {
      const r = c.result("refresh", how);
      r.errors.push(pendingLine(`dropping them from the state failed, so nothing was applied`));
      write(o, { ...r, command: "apply" }, raw);
      return r.exitCode;
    }
    cleared = pendingLine("dropped from the state; their creates run again in this apply");
  }
  const previewed = await ended(plan, stack.preview({ ...common(plan), ...policy, refresh: o.refresh || undefined, expectNoChanges: false }));
  if (o.checkHosts && previewed === "ok") await plan.checkHosts(planChecks());
  const pr = plan.result("plan", previewed, { expectNoChanges: o.expectNoChanges });
  if (o.command === "plan" || pr.exitCode !== EXIT.ok) {
    write(o, { ...pr, command: o.command }, raw);
    return pr.exitCode;
  }
  const apply = new Collector("apply", o.stack);
  if (cleared) apply.warn(cleared);
  // failure isolation: a failed change stops only what depends on it (migration.after waits, a VM's own parts);
  // the other moves of the update complete and are recorded
  const how = await ended(apply, stack.up({ ...common(apply), ...policy, continueOnError: true }));
  // one export of the state after the update: where each VM runs, and the moves this apply ran
  const resources = await stateResources(stack).catch(() => undefined);
  const outputs = resources && await outputsOf(stack, resources, (w) => apply.warn(w)).catch(() => undefined);
  if (resources) apply.recordsFrom(resources);
  const r = apply.result("apply", how, { outputs, planned: pr.migrations });
  write(o, r, raw);
  return r.exitCode;
}

export async function main(argv: string[]): Promise<number> {
  let o: Options | { help: string };
  try {
    o = parseArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) { log(`error: ${e.message}`); return EXIT.usage; }
    throw e;
  }
  if ("help" in o) { process.stdout.write(`${o.help}\n`); return EXIT.ok; }
  let stack: Stack;
  try {
    stack = await LocalWorkspace.selectStack({ stackName: o.stack, workDir: ROOT });
  } catch (e) {
    if (e instanceof StackNotFoundError) {
      log(`error: vm-infra ${o.command}: stack ${o.stack} of project ${ROOT} is not in the backend (PULUMI_BACKEND_URL); create it with pulumi stack init`);
      return EXIT.usage;
    }
    log(`error: vm-infra ${o.command}: cannot open stack ${o.stack}: ${(e instanceof Error ? e.message : String(e)).split("\n").find((l) => l.startsWith("error:")) ?? "the backend did not answer"}`);
    return EXIT.error;
  }
  if (o.command === "outputs") {
    process.stdout.write(`${JSON.stringify(await outputsOf(stack, await stateResources(stack), (w) => log(`warning: ${w}`)), null, 2)}\n`);
    return EXIT.ok;
  }
  const abort = new AbortController();
  const stop = (sig: string) => () => {
    if (abort.signal.aborted) return;
    log(`vm-infra: ${sig}: asking pulumi to stop; an operation in flight (a migration) completes or rolls back first, moves still waiting for ` +
      "their turn do not start, then the stack is unlocked");
    markCancelled(o.stack);
    abort.abort();
  };
  process.on("SIGTERM", stop("SIGTERM"));
  process.on("SIGINT", stop("SIGINT"));
  clearCancelled(o.stack);
  try {
    return await operate(o, stack, abort.signal);
  } finally {
    clearCancelled(o.stack);
  }
}

if (require.main === module) main(process.argv.slice(2)).then((code) => process.exit(code), (e) => {
  log(`error: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(EXIT.error);
});
