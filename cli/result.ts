// The machine-readable result of `vm-infra plan|apply|refresh` (schema below, versioned), built from the engine's
// events as the Automation API hands them over. Pure: no I/O. Values are copied only from fields known to be plain
// (names, hosts, sizes, modes, migration records); inputs are compared but never copied, so a secret cannot reach the
// result: a changed key is reported by its name only.
import type { EngineEvent, OpType } from "@pulumi/pulumi/automation";
import { waves } from "../config/fleet";

export const SCHEMA_VERSION = 1;

/**
 * Exit codes: Pulumi's where they exist (pkg/cmd/pulumi/cmd/exit_codes.go), vm-infra's own above them.
 */
export const EXIT = {
  ok: 0,
  error: 1,
  usage: 2,
  changesPresent: 7,
  cancelled: 8,
  /** apply: a change failed and vm-infra rolled it back: the VM runs where it ran before. */
  rolledBack: 10,
  /** a mandatory policy refused the change (before anything ran when the preview refused it). */
  policy: 11,
  /** plan --check-hosts: a planned move would fail its pre-checks on the real hosts. */
  wouldFail: 12,
} as const;

export type Outcome = "no-changes" | "changes" | "would-fail" | "succeeded" | "failed" | "rolled-back" | "policy-violation" | "cancelled" | "usage-error" | "config-error";

export interface Step {
  op: string;
  /** vm-infra's short type: Placement, SeedIso, HostKey, Ready, Provision, BaseImageVolume, Vm, BaseImage. */
  type: string;
  name: string;
  /** The VM the step belongs to, when it does. */
  vm?: string;
  /** Input keys whose value changes (names only). */
  changedKeys: string[];
  /** For a replacement: the keys that force it, and why. */
  replaceKeys?: string[];
  why?: string;
}

export interface PlannedMigration {
  vm: string;
  from: string;
  to: string;
  mode: string;
  storage: string;
  memoryMiB: number;
  /** Disk data to copy, at most (a thin overlay moves only what it holds); 0 on shared storage. */
  diskGiBAtMost: number;
  estimateSeconds: number;
  estimateBasis: string;
  /** plan --check-hosts: the move's pre-checks, asked of the real hosts (read-only). */
  preChecks?: { ok: boolean; problems: string[] };
  /** Its wave in this update: 1, or one more than the latest planned move it waits for (migration.after). */
  wave: number;
  /** The VMs it waits for (migration.after), when it has any. */
  after?: string[];
  /** The draining host that causes the move, when a drain does. */
  drainedFrom?: string;
}

/** apply: what became of each planned move. */
export interface MoveOutcome {
  vm: string;
  from: string;
  to: string;
  /** The move's record outcome, or "not started" (reason says why). */
  outcome: "moved" | "rolled back" | "kept on target" | "unknown" | "not started";
  reason?: string;
}

export interface PolicyResult { pack: string; policy: string; level: "mandatory" | "advisory"; resource?: string; message: string }

export interface Result {
  schemaVersion: typeof SCHEMA_VERSION;
  command: string;
  stack: string;
  result: Outcome;
  exitCode: number;
  startedAt: string;
  durationSeconds: number;
  changeSummary: Record<string, number>;
  steps: Step[];
  migrations: PlannedMigration[];
  policies: PolicyResult[];
  warnings: string[];
  errors: string[];
  /** apply: the stack outputs (secrets shown as "[secret]"). */
  outputs?: Record<string, unknown>;
  /** apply: the record of every move that ran (downtime, bytes, health report, rollback steps). */
  migrationRecords?: { vm: string; record: Record<string, unknown> }[];
  /** apply: each planned move, moved, rolled back or not started (and why). */
  moves?: MoveOutcome[];
  /** apply, on failure: the step that failed (the first, when several did). */
  failedStep?: { op: string; type: string; name: string };
  /** apply: every step that failed, when more than one did (the others went on: failure isolation). */
  failedSteps?: { op: string; type: string; name: string }[];
}

/** What the rest of the world calls a link with no cap: 1 GbE's payload rate, about 110 MiB/s. */
export const ASSUMED_LINK_MiBs = 110;
const SUFFIXES = ["-placement", "-cidata", "-hostkey", "-ready", "-provision"];
const IGNORED_KEYS = new Set(["__provider", "moveFrom"]);
const QUIET_OPS = new Set<string>(["same", "refresh", "read", "discard"]);
/** The engine's own resources (the stack, the default provider): not changes anyone reviews. */
const ENGINE_TYPES = /^pulumi:(pulumi:Stack|providers:)/;
/** Why a key replaces a VM (providers/placement/rules.ts REPLACE_KEYS). */
const REPLACE_WHY: Record<string, string> = {
  diskGiB: "the disk's size cannot change in place: a new overlay on the base image",
  name: "a new domain name is a new VM",
  pool: "another pool on the same host is a new disk",
  baseVolume: "another base image is a new disk",
};

export const shortType = (t: string) => t.replace(/^pulumi-nodejs:dynamic\/vm-infra:/, "").replace(/^vm-infra:index:/, "");
const nameOf = (urn: string) => urn.split("::").pop() ?? urn;
const vmOf = (name: string, type: string) =>
  type === "Vm" ? name : SUFFIXES.map((s) => (name.endsWith(s) ? name.slice(0, -s.length) : undefined)).find((v) => v !== undefined);
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export function changedKeys(olds: Record<string, unknown> | undefined, news: Record<string, unknown> | undefined): string[] {
  const keys = new Set([...Object.keys(olds ?? {}), ...Object.keys(news ?? {})]);
  return [...keys].filter((k) => !IGNORED_KEYS.has(k) && !same(olds?.[k], news?.[k])).sort();
}

export function plannedMigration(olds: Record<string, unknown>, news: Record<string, unknown>): PlannedMigration | undefined {
  const from = olds.hostName as string | undefined;
  const to = news.hostName as string | undefined;
  if (from === undefined || to === undefined || from === to) return undefined;
  const m = (news.migration ?? {}) as { mode?: string; bandwidthMiBs?: number; after?: string[] };
  const storage = String(news.storage ?? "local");
  const memoryMiB = Number(news.memoryMiB ?? 0);
  const diskGiBAtMost = storage === "local" ? Number(news.diskGiB ?? 0) : 0;
  const rate = m.bandwidthMiBs && m.bandwidthMiBs > 0 ? m.bandwidthMiBs : ASSUMED_LINK_MiBs;
  const basis = m.bandwidthMiBs && m.bandwidthMiBs > 0 ? `its bandwidth cap, ${m.bandwidthMiBs} MiB/s` : `no cap: an assumed ${ASSUMED_LINK_MiBs} MiB/s (1 GbE)`;
  return {
    vm: String(news.name), from, to, mode: m.mode ?? "live", storage, memoryMiB, diskGiBAtMost,
    estimateSeconds: Math.ceil((memoryMiB + diskGiBAtMost * 1024) / rate),
    estimateBasis: `${memoryMiB} MiB memory${diskGiBAtMost ? ` + at most ${diskGiBAtMost} GiB disk` : ""} at ${basis}; a guest that dirties memory fast takes longer`,
    wave: 1, ...(m.after?.length ? { after: [...m.after] } : {}), ...(typeof news.drainedFrom === "string" ? { drainedFrom: news.drainedFrom } : {}),
  };
}

/**
 * Each move's wave among the moves of one update (config/fleet.ts waves, the rule that orders creation): a move waits
 * only for the planned moves it names in `after`.
 */
export function withWaves(ms: PlannedMigration[]): PlannedMigration[] {
  const planned = new Set(ms.map((m) => m.vm));
  const wave = new Map(waves(ms.map((m) => ({ name: m.vm, migration: { after: (m.after ?? []).filter((d) => planned.has(d)) } })))
    .map((w) => [w.vm.name, w.wave]));
  return ms.map((m) => ({ ...m, wave: wave.get(m.vm)! }));
}

/**
 * What became of each planned move after an apply: its record's outcome, or why it never started: a VM it waits for
 * did not move, the run was cancelled, or the update stopped at another failure.
 */
export function moveOutcomes(planned: PlannedMigration[], records: { vm: string; record: Record<string, unknown> }[], failedVms: string[],
  ended: "ok" | "failed" | "cancelled"): MoveOutcome[] {
  const rec = new Map(records.map((r) => [r.vm, r.record]));
  const out = new Map<string, MoveOutcome>();
  const by = new Map(planned.map((m) => [m.vm, m]));
  const of = (m: PlannedMigration, seen: Set<string>): MoveOutcome => {
    if (out.has(m.vm)) return out.get(m.vm)!;
    const base = { vm: m.vm, from: m.from, to: m.to };
    const r = rec.get(m.vm);
    let o: MoveOutcome;
    if (r && typeof r.outcome === "string") o = { ...base, outcome: r.outcome as MoveOutcome["outcome"] };
    else {
      seen.add(m.vm);
      const dep = (m.after ?? []).find((d) => {
        const dm = by.get(d);
        if (failedVms.includes(d)) return true;
        return dm !== undefined && !seen.has(d) && of(dm, seen).outcome !== "moved";
      });
      const failed = failedVms.filter((v) => v !== m.vm);
      o = { ...base, outcome: "not started", reason: dep ? `not started: ${dep} failed` : ended === "cancelled" ? "not started: the apply was cancelled"
        : failedVms.includes(m.vm) ? "not started: its update failed before the move (see errors)"
        : failed.length ? `not started: the update stopped after ${failed.join(", ")} failed` : "not started" };
    }
    out.set(m.vm, o);
    return o;
  };
  return planned.map((m) => of(m, new Set()));
}

/** Collects the events of one operation into a Result. */
export class Collector {
  private readonly steps = new Map<string, Step>();
  private readonly migrations = new Map<string, PlannedMigration>();
  /** Each planned move's old outputs and new inputs, for the pre-checks of --check-hosts. */
  private readonly moves = new Map<string, { olds: Record<string, unknown>; news: Record<string, unknown> }>();
  readonly records: { vm: string; record: Record<string, unknown> }[] = [];
  private readonly policies: PolicyResult[] = [];
  private readonly warnings: string[] = [];
  private readonly errors: string[] = [];
  private summary: Record<string, number> = {};
  private readonly failures: { op: string; type: string; name: string }[] = [];

  constructor(private readonly command: string, private readonly stack: string, private readonly started = new Date()) {}

  add(e: EngineEvent): void {
    const pre = e.resourcePreEvent?.metadata;
    if (pre && !QUIET_OPS.has(pre.op) && !ENGINE_TYPES.test(pre.type)) this.step(pre.op, pre.urn, pre.type, pre.old?.inputs, pre.new?.inputs, pre.keys, pre.old?.outputs);
    const failed = e.resOpFailedEvent?.metadata;
    if (failed) this.failures.push({ op: failed.op, type: shortType(failed.type), name: nameOf(failed.urn) });
    const d = e.diagnosticEvent;
    if (d && (d.severity === "warning" || d.severity === "error")) {
      const text = d.message.trim();
      if (text) (d.severity === "error" ? this.errors : this.warnings).push(d.urn ? `${nameOf(d.urn)}: ${text}` : text);
    }
    const p = e.policyEvent;
    if (p) this.policies.push({ pack: `${p.policyPackName}@${p.policyPackVersion}`, policy: p.policyName,
      level: p.enforcementLevel === "mandatory" ? "mandatory" : "advisory", ...(p.resourceUrn ? { resource: nameOf(p.resourceUrn) } : {}),
      message: p.message.trim() });
    if (e.summaryEvent) this.summary = { ...e.summaryEvent.resourceChanges } as Record<string, number>;
  }

  private step(op: OpType, urn: string, type: string, olds?: Record<string, unknown>, news?: Record<string, unknown>, keys?: string[],
    oldOutputs?: Record<string, unknown>) {
    const t = shortType(type);
    const name = nameOf(urn);
    const vm = vmOf(name, t);
    const replace = op === "replace" || op === "create-replacement" || op === "delete-replaced";
    const prev = this.steps.get(urn);
    if (prev && !replace) return;
    const s: Step = { op: replace ? "replace" : op, type: t, name, ...(vm ? { vm } : {}), changedKeys: op === "update" || replace ? changedKeys(olds, news) : [] };
    if (replace && keys?.length) {
      s.replaceKeys = [...keys].sort();
      s.why = s.replaceKeys.map((k) => REPLACE_WHY[k] ?? `${k} changes`).join("; ");
    }
    if (!prev || (replace && !prev.replaceKeys)) this.steps.set(urn, { ...prev, ...s });
    if (t === "Placement" && op === "update" && olds && news) {
      const m = plannedMigration(olds, news);
      if (m) {
        this.migrations.set(m.vm, m);
        if (oldOutputs) this.moves.set(m.vm, { olds: oldOutputs, news });
        this.steps.set(urn, { ...this.steps.get(urn)!, why: `migrates ${m.from} -> ${m.to} (${m.mode}), no replacement` });
      }
    }
  }

  warn(text: string): void {
    this.warnings.push(text);
  }

  /** --check-hosts: asks `check` (the migration pre-checks, read-only) about every planned move; its problems, if any. */
  async checkHosts(check: (olds: Record<string, unknown>, news: Record<string, unknown>, baseUploadedFirst: boolean) => Promise<string[]>): Promise<void> {
    for (const [vm, m] of this.migrations) {
      const mv = this.moves.get(vm);
      // the same update uploads the base image to the target's pool first (components/BaseImage, one per host pool)
      const upload = [...this.steps.values()].some((s) => s.op === "create" && s.type === "BaseImageVolume" && s.name === `base-${m.to}-volume`);
      const problems = mv ? await check(mv.olds, mv.news, upload) : ["the state has no record of where it runs: run pulumi refresh"];
      m.preChecks = { ok: problems.length === 0, problems };
    }
  }

  /**
   * The moves this operation ran, from the state written after it (a failed move's record is in its partial state,
   * which no output event carries): each placement whose lastMigration started after the operation did.
   */
  recordsFrom(resources: { type: string; outputs?: Record<string, unknown> }[]): void {
    for (const r of resources) {
      const m = r.outputs?.lastMigration as Record<string, unknown> | undefined;
      if (shortType(r.type) === "Placement" && m && typeof m.startedAt === "string" && m.startedAt >= this.started.toISOString())
        this.records.push({ vm: String(r.outputs!.name), record: m });
    }
  }

  /**
   * An operation that failed with no error event of its own: the lock held by another update ("locked by"), said
   * plainly; otherwise the CLI's error lines.
   */
  failedBeforeEngine(text: string): void {
    if (this.errors.length) return;
    // a backend URL may carry a password (postgres://user:password@host): never repeated
    const lines = text.split("\n").map((l) => l.trim().replace(/^(stdout|stderr):\s*/, "").replace(/:\/\/([^/:@\s]+):[^@\s]*@/g, "://$1:***@"))
      .filter((l) => l && !/^code: -?\d+$/.test(l));
    const lock = lines.findIndex((l) => l.includes("currently locked"));
    if (lock >= 0) {
      const by = lines.slice(lock + 1).map((l) => /created by .*$/.exec(l)?.[0]).find((l) => l !== undefined);
      this.errors.push(`stack ${this.stack} is locked by another update${by ? ` (${by})` : ""}: nothing was done; ` +
        "run again when it has finished (a lock left by a killed run is removed with pulumi cancel)");
      return;
    }
    const err = lines.filter((l) => l.startsWith("error:"));
    this.errors.push(...(err.length ? err : lines.slice(-3)));
  }

  /** The outcome, from what was seen and how the operation ended. */
  outcome(kind: "plan" | "apply" | "refresh", ended: "ok" | "failed" | "cancelled", expectNoChanges = false): { result: Outcome; exitCode: number } {
    if (ended === "cancelled") return { result: "cancelled", exitCode: EXIT.cancelled };
    if (this.policies.some((p) => p.level === "mandatory")) return { result: "policy-violation", exitCode: EXIT.policy };
    if (ended === "failed") {
      if (this.errors.some((e) => e.includes("invalid vm-infra config"))) return { result: "config-error", exitCode: EXIT.usage };
      if (kind === "apply" && this.records.some((r) => r.record.outcome === "rolled back")) return { result: "rolled-back", exitCode: EXIT.rolledBack };
      return { result: "failed", exitCode: EXIT.error };
    }
    if ([...this.migrations.values()].some((m) => m.preChecks && !m.preChecks.ok)) return { result: "would-fail", exitCode: EXIT.wouldFail };
    const changes = this.steps.size > 0;
    if (kind === "plan") return changes && expectNoChanges ? { result: "changes", exitCode: EXIT.changesPresent } : { result: changes ? "changes" : "no-changes", exitCode: EXIT.ok };
    return { result: kind === "apply" && !changes ? "no-changes" : "succeeded", exitCode: EXIT.ok };
  }

  /**
   * The result. An apply is given its plan's migrations (the engine's events during an update carry the same steps,
   * but the plan is what was reviewed): each gets its outcome.
   */
  result(kind: "plan" | "apply" | "refresh", ended: "ok" | "failed" | "cancelled",
    extra: { expectNoChanges?: boolean; outputs?: Record<string, unknown>; now?: Date; planned?: PlannedMigration[] } = {}): Result {
    const { result, exitCode } = this.outcome(kind, ended, extra.expectNoChanges);
    const now = extra.now ?? new Date();
    const migrations = withWaves(extra.planned ?? [...this.migrations.values()]);
    const failedVms = [...new Set(this.failures.map((f) => vmOf(f.name, f.type)).filter((v): v is string => v !== undefined))];
    return {
      schemaVersion: SCHEMA_VERSION, command: this.command, stack: this.stack, result, exitCode,
      startedAt: this.started.toISOString(), durationSeconds: Math.round((now.getTime() - this.started.getTime()) / 100) / 10,
      changeSummary: this.summary, steps: [...this.steps.values()], migrations,
      policies: this.policies, warnings: this.warnings, errors: this.errors,
      ...(kind === "apply" ? {
        migrationRecords: this.records, moves: moveOutcomes(migrations, this.records, failedVms, ended), ...(extra.outputs ? { outputs: extra.outputs } : {}),
        ...(this.failures.length ? { failedStep: this.failures[0] } : {}), ...(this.failures.length > 1 ? { failedSteps: this.failures } : {}),
      } : {}),
    };
  }
}
