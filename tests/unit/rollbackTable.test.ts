// The rollback decision table (providers/migration/decide.ts), every cell written out: for each (source, target)
// state after a failed step, where the VM is kept and what is done. The rule every row obeys: no running copy is
// stopped or loses its disks unless the other host verified a running copy; a host that did not answer keeps
// everything it has.
import { RollbackAction, Seen, Situation, decide, seenOf } from "../../providers/migration/decide";

const SEEN: Seen[] = ["running", "paused", "shut off", "absent", "unknown", "foreign"];
const RTD: RollbackAction = "remove target domain";
const RTV: RollbackAction = "remove target volumes";
const RSC: RollbackAction = "record source copy";

type Row = [Seen, Seen, "source" | "target" | "none", RollbackAction[]];

// a live move of a running VM (the source was not paused or stopped by vm-infra)
const LIVE: Row[] = [
  ["running", "running", "none", []], ["running", "paused", "source", [RTD, RTV]], ["running", "shut off", "source", [RTD, RTV]],
  ["running", "absent", "source", [RTV]], ["running", "unknown", "source", []], ["running", "foreign", "none", []],
  ["paused", "running", "none", []], ["paused", "paused", "source", [RTD, RTV]], ["paused", "shut off", "source", [RTD, RTV]],
  ["paused", "absent", "source", [RTV]], ["paused", "unknown", "source", []], ["paused", "foreign", "none", []],
  ["shut off", "running", "target", [RSC]], ["shut off", "paused", "target", [RSC]], ["shut off", "shut off", "source", [RTD, RTV]],
  ["shut off", "absent", "source", [RTV]], ["shut off", "unknown", "none", []], ["shut off", "foreign", "none", []],
  ["absent", "running", "source", ["migrate back"]], ["absent", "paused", "source", ["migrate back"]], ["absent", "shut off", "target", ["start target", RSC]],
  ["absent", "absent", "none", []], ["absent", "unknown", "target", []], ["absent", "foreign", "none", []],
  ["unknown", "running", "target", [RSC]], ["unknown", "paused", "none", []], ["unknown", "shut off", "source", []],
  ["unknown", "absent", "source", []], ["unknown", "unknown", "none", []], ["unknown", "foreign", "none", []],
  ["foreign", "running", "none", []], ["foreign", "paused", "none", []], ["foreign", "shut off", "none", []],
  ["foreign", "absent", "none", []], ["foreign", "unknown", "none", []], ["foreign", "foreign", "none", []],
];

// an offline move of a running VM: vm-infra shut the source down itself
const OFFLINE: Row[] = [
  ["running", "running", "none", []], ["running", "paused", "source", [RTD, RTV]], ["running", "shut off", "source", [RTD, RTV]],
  ["running", "absent", "source", [RTV]], ["running", "unknown", "source", []], ["running", "foreign", "none", []],
  ["paused", "running", "none", []], ["paused", "paused", "source", [RTD, RTV]], ["paused", "shut off", "source", [RTD, RTV]],
  ["paused", "absent", "source", [RTV]], ["paused", "unknown", "source", []], ["paused", "foreign", "none", []],
  ["shut off", "running", "target", [RSC]], ["shut off", "paused", "target", [RSC]], ["shut off", "shut off", "source", [RTD, RTV, "start source"]],
  ["shut off", "absent", "source", [RTV, "start source"]], ["shut off", "unknown", "none", []], ["shut off", "foreign", "none", []],
  ["absent", "running", "target", [RSC]], ["absent", "paused", "target", [RSC]], ["absent", "shut off", "target", ["start target", RSC]],
  ["absent", "absent", "none", []], ["absent", "unknown", "target", []], ["absent", "foreign", "none", []],
  ["unknown", "running", "target", [RSC]], ["unknown", "paused", "none", []], ["unknown", "shut off", "none", []],
  ["unknown", "absent", "source", []], ["unknown", "unknown", "none", []], ["unknown", "foreign", "none", []],
  ["foreign", "running", "none", []], ["foreign", "paused", "none", []], ["foreign", "shut off", "none", []],
  ["foreign", "absent", "none", []], ["foreign", "unknown", "none", []], ["foreign", "foreign", "none", []],
];

const base = (offline: boolean): Omit<Situation, "source" | "target"> =>
  ({ offline, before: "running", pausedByUs: false, stoppedByUs: offline });

test("the tables cover every (source, target) pair exactly once", () => {
  const pairs = SEEN.flatMap((s) => SEEN.map((t) => `${s}/${t}`));
  for (const table of [LIVE, OFFLINE]) expect(table.map(([s, t]) => `${s}/${t}`)).toEqual(pairs);
});

test.each(LIVE)("live: source %s, target %s -> keep %s, %j", (source, target, keep, actions) => {
  expect(decide({ ...base(false), source, target })).toMatchObject({ keep, actions });
});

test.each(OFFLINE)("offline: source %s, target %s -> keep %s, %j", (source, target, keep, actions) => {
  expect(decide({ ...base(true), source, target })).toMatchObject({ keep, actions });
});

test("the source vm-infra paused (paused mode) is resumed; one that was paused before the move is left paused", () => {
  expect(decide({ source: "paused", target: "absent", offline: false, before: "running", pausedByUs: true, stoppedByUs: false }).actions).toEqual([RTV, "resume source"]);
  expect(decide({ source: "paused", target: "paused", offline: false, before: "running", pausedByUs: true, stoppedByUs: false }).actions).toEqual([RTD, RTV, "resume source"]);
  expect(decide({ source: "paused", target: "absent", offline: false, before: "paused", pausedByUs: false, stoppedByUs: false }).actions).toEqual([RTV]);
});

test("a VM that was shut off before its move is neither started on the source nor on the target", () => {
  expect(decide({ source: "shut off", target: "absent", offline: true, before: "shut off", pausedByUs: false, stoppedByUs: false }).actions).toEqual([RTV]);
  expect(decide({ source: "absent", target: "shut off", offline: true, before: "shut off", pausedByUs: false, stoppedByUs: false }).actions).toEqual([RSC]);
});

test("invariant over every cell: no row removes a copy on a host unless the other host verified a running one", () => {
  for (const offline of [false, true])
    for (const source of SEEN)
      for (const target of SEEN)
        for (const pausedByUs of [false, true]) {
          const d = decide({ source, target, offline, before: "running", pausedByUs, stoppedByUs: offline });
          // the target's copy goes only when the source holds the live one
          if (d.actions.includes(RTD) || d.actions.includes(RTV)) expect([source, d.keep]).toEqual([expect.stringMatching(/^(running|paused|shut off)$/), "source"]);
          if (d.actions.includes(RTD) && target === "running") throw new Error(`${source}/${target}: a running target would be removed`);
          // a silent host never gets an action, and "none" acts nowhere
          if (source === "unknown" || d.keep === "none") expect(d.actions.filter((a) => a !== RSC && a !== "start target" && a !== "migrate back")).toEqual([]);
          if (target === "unknown") expect(d.actions.filter((a) => a === RTD || a === RTV || a === "start target" || a === "migrate back")).toEqual([]);
          if (d.keep === "none") expect(d.actions).toEqual([]);
        }
});

test("libvirt's state words map onto the table's", () => {
  expect(["running", "blocked", "idle", "in shutdown", "paused", "pmsuspended", "shut off", "crashed", "dying", undefined].map(seenOf)).toEqual(
    ["running", "running", "running", "running", "paused", "paused", "shut off", "shut off", "unknown", "absent"]);
});
