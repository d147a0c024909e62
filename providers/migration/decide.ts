// Pure: what a failed move does next, decided from what both hosts say now (never from a replayed undo list).
//
// The invariant (README "The one-running-copy rule"): a running copy is never stopped, undefined or deprived of its
// disks unless another running copy of the same domain (same UUID) has been verified. A host that does not answer is
// "unknown": nothing on it is touched, and nothing on the other host that could be the only copy of the VM's writes.
// Every cell of (source, target) x (live | offline) is covered by tests/unit/rollbackTable.test.ts.

/** What a host says about the VM's domain. `foreign`: a domain of that name with another UUID (not this VM). */
export type Seen = "running" | "paused" | "shut off" | "absent" | "unknown" | "foreign";

/** libvirt's `domstate` words -> Seen (a domain that is blocked, idle or shutting down is still a running copy). */
export function seenOf(state: string | undefined): Seen {
  if (state === undefined) return "absent";
  if (/^(running|blocked|idle|in shutdown)/.test(state)) return "running";
  if (/^(paused|pmsuspended)/.test(state)) return "paused";
  if (/^(shut off|crashed)/.test(state)) return "shut off";
  return "unknown";
}

export type RollbackAction =
  /** Stop (forced) and undefine the target's copy: allowed only when the source's running copy is verified. */
  | "remove target domain"
  /** Delete the volumes this move made on the target (or record them when the target does not answer). */
  | "remove target volumes"
  /** Migrate the running VM back to the source (the source answered and has no copy: its disks are still there). */
  | "migrate back"
  /** Resume the source that vm-infra paused, or start the source that vm-infra shut down. */
  | "resume source"
  | "start source"
  /** Start the target's copy: the switchover happened and the only copy with the newest writes is there, stopped. */
  | "start target"
  /** The source's old copy (definition and disks) stays, recorded as a leftover for a later up to remove. */
  | "record source copy";

export interface Situation {
  source: Seen;
  target: Seen;
  /** The move shuts the VM down first (offline), or carries it running or paused (live, paused). */
  offline: boolean;
  /** What the source was before the move started. */
  before: "running" | "paused" | "shut off";
  /** vm-infra suspended (paused mode) or shut down (offline mode) the source itself. */
  pausedByUs: boolean;
  stoppedByUs: boolean;
}

export interface Decision {
  /** Where the VM is left: the state records that host ("none": cannot tell; the state keeps the source). */
  keep: "source" | "target" | "none";
  actions: RollbackAction[];
  /** Why, in words a log line can carry. */
  why: string;
}

const isLive = (s: Seen) => s === "running" || s === "paused";

export function decide(s: Situation): Decision {
  const { source: S, target: T } = s;
  const resumeOrStart = (): RollbackAction[] =>
    S === "paused" && s.pausedByUs && s.before === "running" ? ["resume source"]
      : S === "shut off" && s.stoppedByUs && s.before !== "shut off" ? ["start source"] : [];

  if (S === "foreign" || T === "foreign")
    return { keep: "none", actions: [], why: `a domain of that name with another UUID is on the ${S === "foreign" ? "source" : "target"}: not this VM, left alone` };
  if (S === "unknown" && T === "unknown") return { keep: "none", actions: [], why: "neither host answered" };

  if (S === "unknown") {
    if (T === "running") return { keep: "target", actions: ["record source copy"], why: "the VM runs on the target; the source did not answer, so its old copy is left as it is" };
    if (T === "paused") return { keep: "none", actions: [], why: "the target holds a paused copy and the source did not answer: which copy is current cannot be told" };
    if (T === "shut off" && s.offline) return { keep: "none", actions: [], why: "the source did not answer and the target holds a stopped copy: which disk is newest cannot be told" };
    // the transfer never completed (no copy on the target, or an unstarted one): the VM is where it was
    return { keep: "source", actions: [], why: "the source did not answer; the target has no running copy, so the VM is still on the source" };
  }
  if (T === "unknown") {
    if (S === "absent") return { keep: "target", actions: [], why: "the source handed its definition over and the target did not answer" };
    if (isLive(S)) return { keep: "source", actions: [...resumeOrStart()], why: "the VM runs on the source; the target did not answer, so what this move made there is left and recorded" };
    return { keep: "none", actions: [], why: "the source's copy is stopped and the target did not answer: the VM may have started there" };
  }

  // both hosts answered
  if (isLive(S) && T === "running" && S === "running") return { keep: "none", actions: [], why: "two running copies: vm-infra stops neither" };
  if (S === "paused" && T === "running") return { keep: "none", actions: [], why: "a running copy on the target and a paused one on the source: which is current cannot be told" };
  if (isLive(S)) {
    // the source keeps the live copy; whatever is on the target is an unfinished incoming copy or a stopped one
    const undo: RollbackAction[] = T === "absent" ? ["remove target volumes"] : ["remove target domain", "remove target volumes"];
    return { keep: "source", actions: [...undo, ...resumeOrStart()], why: "the VM is still on the source" };
  }
  if (S === "absent") {
    if (isLive(T) && !s.offline) return { keep: "source", actions: ["migrate back"], why: "the switchover happened: the VM goes back to the source" };
    if (isLive(T)) return { keep: "target", actions: ["record source copy"], why: "the VM runs on the target only" };
    if (T === "shut off") return { keep: "target", actions: s.before === "shut off" ? ["record source copy"] : ["start target", "record source copy"], why: "the only copy with the newest writes is on the target" };
    return { keep: "none", actions: [], why: "neither host has the VM" };
  }
  // S shut off
  if (isLive(T)) return { keep: "target", actions: ["record source copy"], why: "the VM runs on the target, the source holds only the stopped, older copy" };
  const undo: RollbackAction[] = T === "absent" ? ["remove target volumes"] : ["remove target domain", "remove target volumes"];
  return { keep: "source", actions: [...undo, ...resumeOrStart()], why: "the VM was never started on the target" };
}
