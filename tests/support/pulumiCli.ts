// Drives the real Pulumi CLI for end-to-end tests (argv only, through the project's runner). The environment
// (PATH, backend, passphrase, offline flags) comes from scripts/with-env.sh, which the test command runs under.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { run, RunResult } from "../../host/runner";
import type { Result } from "../../cli/result";

export interface StackHandle {
  dir: string;
  stack: string;
  /** Run pulumi inside this network namespace (the lab's operator namespace for the remote topology). */
  netns?: string;
}

const LONG = 30 * 60_000;

export async function pulumi(h: StackHandle, args: string[], timeoutMs = LONG, okCodes = [0]): Promise<RunResult> {
  // common flags go before a "--" (after it everything is a positional value)
  const cut = args.indexOf("--") === -1 ? args.length : args.indexOf("--");
  const common = ["--cwd", h.dir, "--stack", h.stack, "--non-interactive"];
  const argv = [...args.slice(0, cut), ...common, ...args.slice(cut)];
  return h.netns ? run("ip", ["netns", "exec", h.netns, "pulumi", ...argv], { timeoutMs, okCodes }) : run("pulumi", argv, { timeoutMs, okCodes });
}

/** An `up` whose failure is the expected outcome: its whole output (the diagnostics are not at the tail). */
export async function upExpectingFailure(h: StackHandle): Promise<string> {
  const r = await pulumi(h, ["up", "--yes", "--skip-preview"], LONG, [0, 1, 255]);
  if (r.exitCode === 0) throw new Error(`up was expected to fail but succeeded:\n${r.stdout.slice(-3000)}`);
  return `${r.stdout}\n${r.stderr}`;
}

export async function initStack(h: StackHandle, config: Record<string, string>, secrets: Record<string, string> = {}) {
  await run("pulumi", ["stack", "rm", "--yes", "--force", "--cwd", h.dir, "--stack", h.stack, "--non-interactive"], {
    timeoutMs: 60_000,
    okCodes: [0, 255],
  }).catch(() => undefined);
  await run("pulumi", ["stack", "init", h.stack, "--cwd", h.dir, "--non-interactive"], { timeoutMs: 60_000 });
  for (const [k, v] of Object.entries(config)) await pulumi(h, ["config", "set", k, "--", v]);
  for (const [k, v] of Object.entries(secrets)) await pulumi(h, ["config", "set", "--secret", k, "--", v]);
}

export interface PreviewStep {
  op: string;
  urn: string;
  diffReasons?: string[];
  replaceReasons?: string[];
}

/** The plan's steps, without the refresh steps that `options: refresh: always` puts before them. */
export async function previewSteps(h: StackHandle): Promise<PreviewStep[]> {
  const { stdout } = await pulumi(h, ["preview", "--json"]);
  return (JSON.parse(stdout) as { steps: PreviewStep[] }).steps.filter((s) => s.op !== "refresh");
}

export async function up(h: StackHandle, extra: string[] = []): Promise<RunResult> {
  return pulumi(h, ["up", "--yes", "--skip-preview", ...extra]);
}

export async function outputs(h: StackHandle, showSecrets = false): Promise<Record<string, unknown>> {
  const { stdout } = await pulumi(h, ["stack", "output", "--json", ...(showSecrets ? ["--show-secrets"] : [])]);
  return JSON.parse(stdout) as Record<string, unknown>;
}

export const urnName = (urn: string) => urn.split("::").pop() ?? urn;

/** A resource's outputs as the state records them (not the stack outputs: those are the program's view). */
export async function stateOutputs(h: StackHandle, resourceName: string): Promise<Record<string, unknown>> {
  const { stdout } = await pulumi(h, ["stack", "export"]);
  const res = (JSON.parse(stdout).deployment.resources as { urn: string; outputs: Record<string, unknown> }[])
    .find((r) => urnName(r.urn) === resourceName);
  if (!res) throw new Error(`${resourceName} not in state`);
  return res.outputs;
}

/**
 * Tests that only `npm run test:extended` runs (VM_INFRA_E2E_EXTENDED=1): each repeats what another test of the
 * default run already proves, at the cost of a guest boot or a migration that CI's 45-minute budget cannot afford.
 */
export const extended = process.env.VM_INFRA_E2E_EXTENDED ? test : test.skip;

/**
 * The lab topology a suite runs on. The VM and migration suites default to remote (issue 10: the path real users take;
 * pulumi in the operator namespace, both hosts over qemu+libssh2 with verified host keys, guests through their
 * hypervisor; 1.3 to 1.4 times their local time, every virsh call over SSH being a new connection); the others run on
 * the local one. VM_INFRA_TOPOLOGY=local|remote overrides the default (`npm run test:local` runs those two locally).
 */
export function topology(suiteDefault: "local" | "remote"): "local" | "remote" {
  const v = process.env.VM_INFRA_TOPOLOGY;
  return v === "local" || v === "remote" ? v : suiteDefault;
}


/**
 * `vm-infra <command> ... --stack S` as a pipeline runs it (bin/vm-infra, inside the handle's namespace when it has
 * one), with --json (and --markdown) written to a temporary directory and read back. `env` reaches the CLI (a team
 * backend's URL, for example); `onStdout` sees the engine's progress as it comes.
 */
export async function vmInfra(h: StackHandle, args: string[], opts: { env?: Record<string, string>; onStdout?: (s: string) => void } = {}):
  Promise<RunResult & { json?: Result; md?: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), "vmi-cli-"));
  const json = path.join(dir, "result.json");
  const md = path.join(dir, "comment.md");
  const files = args[0] === "outputs" ? [] : ["--json", json, ...(args[0] === "refresh" ? [] : ["--markdown", md])];
  const bin = path.join(h.dir, "bin", "vm-infra");
  const argv = [...args, ...files, "--stack", h.stack];
  const o = { timeoutMs: LONG, okCodes: [0, 1, 2, 7, 8, 10, 11, 12], ...opts };
  const r = h.netns ? await run("ip", ["netns", "exec", h.netns, bin, ...argv], o) : await run(bin, argv, o);
  const read = (f: string) => (existsSync(f) ? readFileSync(f, "utf8") : undefined);
  const j = read(json);
  const m = read(md);
  rmSync(dir, { recursive: true, force: true });
  return { ...r, ...(j ? { json: JSON.parse(j) as Result } : {}), ...(m !== undefined ? { md: m } : {}) };
}

/**
 * Sends SIGTERM (or SIGKILL) to the running `vm-infra <command>` of this stack (the CLI's own process, as a CI runner
 * stops a job, or kills it on a timeout).
 */
export async function stopVmInfra(h: StackHandle, command: string, signal: "TERM" | "KILL" = "TERM"): Promise<void> {
  const { stdout } = await run("pgrep", ["-f", `dist/cli/main.js ${command} .*--stack ${h.stack}$`], { timeoutMs: 10_000 });
  for (const pid of stdout.split("\n").filter((l) => /^\d+$/.test(l.trim()))) await run("kill", [`-${signal}`, pid.trim()], { timeoutMs: 10_000 });
}
