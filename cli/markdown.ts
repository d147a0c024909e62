// The PR comment of `vm-infra plan|apply --markdown FILE`: a hidden marker a pipeline finds its previous comment by,
// the counts, the VM changes, the planned moves, the policy results, and the engine's own output folded away. GitHub
// refuses comments above 65,535 characters: the raw output is cut first, so the summary always fits. Pure.
import type { Result } from "./result";

export const MAX_COMMENT = 64_000;
export const marker = (stack: string) => `<!-- vm-infra:${stack} -->`;

const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
const table = (head: string[], rows: string[][]) =>
  rows.length === 0 ? [] : [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.map(cell).join(" | ")} |`), ""];

const TITLE: Record<Result["result"], string> = {
  "no-changes": "no changes", changes: "changes planned", "would-fail": "a planned move WOULD FAIL its pre-checks", succeeded: "applied", failed: "FAILED", "rolled-back": "FAILED, rolled back",
  "policy-violation": "REFUSED by policy", cancelled: "cancelled", "usage-error": "usage error", "config-error": "config error",
};

export function markdown(r: Result, raw = ""): string {
  const lines: string[] = [marker(r.stack), `### vm-infra ${r.command} \`${r.stack}\`: ${TITLE[r.result]} (exit ${r.exitCode})`, ""];
  const counts = Object.entries(r.changeSummary).filter(([, n]) => n > 0).sort(([a], [b]) => a.localeCompare(b));
  lines.push(...table(["change", "resources"], counts.map(([op, n]) => [op, String(n)])));
  const vmSteps = r.steps.filter((s) => s.vm && s.type !== "Vm");
  lines.push(...(vmSteps.length ? ["#### VM changes", ""] : []),
    ...table(["VM", "part", "change", "what changes", "why"], vmSteps.map((s) => [s.vm!, s.type, s.op === "replace" ? "**replace**" : s.op,
      (s.replaceKeys ?? s.changedKeys).join(", ") || "-", s.why ?? (s.op === "update" ? "in place" : "-")])));
  lines.push(...(r.migrations.length ? ["#### Planned migrations", ""] : []),
    ...table(["VM", "mode", "from -> to", "what moves", "estimate", "pre-checks", "wave"], r.migrations.map((m) => [m.vm, `${m.mode}, ${m.storage} storage`,
      `${m.from} -> ${m.to}${m.drainedFrom ? ` (drain of ${m.drainedFrom})` : ""}`, `${m.memoryMiB} MiB memory${m.diskGiBAtMost ? `, at most ${m.diskGiBAtMost} GiB disk` : ", no disk"}`,
      `~${m.estimateSeconds} s (${m.estimateBasis})`,
      m.preChecks ? (m.preChecks.ok ? "pass" : `**would fail**: ${m.preChecks.problems.join("; ")}`) : "not run (--check-hosts)",
      `${m.wave}${m.after?.length ? ` (after ${m.after.join(", ")})` : ""}`])));
  const notStarted = (r.moves ?? []).filter((m) => m.outcome === "not started");
  if (notStarted.length) lines.push("#### Moves not started", "", ...table(["VM", "from -> to", "why"], notStarted.map((m) => [m.vm, `${m.from} -> ${m.to}`, m.reason ?? "-"])));
  if (r.migrationRecords?.length)
    lines.push("#### Migrations run", "", ...table(["VM", "outcome", "from -> to", "duration", "downtime", "bytes"], r.migrationRecords.map(({ vm, record: x }) =>
      [vm, String(x.outcome), `${x.from} -> ${x.to}`, `${Number(x.durationMs ?? 0) / 1000} s`, x.downtimeMs === undefined ? "-" : `${x.downtimeMs} ms`,
        x.bytesMoved === undefined ? "-" : String(x.bytesMoved)])));
  lines.push(...(r.policies.length ? ["#### Policies", ""] : []),
    ...table(["level", "policy", "resource", "message"], r.policies.map((p) => [p.level, p.policy, p.resource ?? "stack", p.message])));
  if (r.errors.length) lines.push("#### Errors", "", ...r.errors.map((e) => `- ${cell(e)}`), "");
  for (const f of r.failedSteps ?? (r.failedStep ? [r.failedStep] : [])) lines.push(`Failed step: ${f.op} ${f.type} \`${f.name}\``, "");
  const head = `${lines.join("\n")}\n`;
  const open = "<details><summary>engine output</summary>\n\n```\n";
  const close = "\n```\n</details>\n";
  const room = MAX_COMMENT - head.length - open.length - close.length - 40;
  if (!raw || room <= 0) return head.slice(0, MAX_COMMENT);
  const body = raw.length <= room ? raw : `[first ${raw.length - room} characters cut]\n${raw.slice(raw.length - room)}`;
  return head + open + body.replace(/```/g, "'''") + close;
}
