// Step 1 of a move: everything that can be known before anything changes. Only questions are asked here; a failed
// pre-check leaves both hosts exactly as they were.
import { Virsh } from "../../host/virsh";
import { withPrivateFile } from "../../host/tempFiles";
import { parseKeyValues } from "../../libvirt/domain";
import { mib } from "../../libvirt/migration";
import { describeOwner } from "../ownership";
import { PoolPromises } from "./limits";
import { MoveRequest, StepError, msg } from "./types";

export async function volBytes(v: Virsh, pool: string, vol: string, key: "Capacity" | "Allocation"): Promise<number> {
  const kv = parseKeyValues(await v.exec(["vol-info", "--bytes", "--pool", pool, "--", vol]));
  return Number((kv[key] ?? "0").split(" ")[0]);
}

export interface PreCheckOptions {
  /**
   * Asked at plan time (vm-infra plan --check-hosts) for an update that uploads the base image to the target's pool
   * before the move: its absence is then expected, and its size counts against the pool's room.
   */
  baseUploadedFirst?: boolean;
  /** Other moves of this update arriving on the same target now (limits.ts): the memory promised to them. */
  arriving?: { vm: string; memoryMiB: number }[];
  /**
   * The room promised to the other copies of this update (limits.ts PoolPromises): counted against the target pool,
   * and a copy that passes holds its own size there until the returned `release` is called (when its move ends).
   */
  room?: PoolPromises;
}

/** Everything that can be known before anything moves. Throws StepError("pre-check") with all problems found. */
export async function preChecks(r: MoveRequest, S: Virsh, T: Virsh, o: PreCheckOptions = {}): Promise<{ sourceState: string; release?: () => void }> {
  const arriving = o.arriving ?? [];
  const problems: string[] = [];
  let copyBytes = 0; // a copy's size, held in o.room once every check passed
  let baseBytes = 0; // and the base image it needs uploaded first (plan time only), held once per pool
  try {
    await T.exec(["uri"], 15_000);
  } catch (e) {
    throw new StepError("pre-check", `target ${r.to.hostName} is unreachable: ${msg(e)}`);
  }
  let sourceState: string | undefined;
  try {
    sourceState = await S.domainState(r.name);
  } catch (e) {
    throw new StepError("pre-check", `source ${r.from.hostName} is unreachable: ${msg(e)}`);
  }
  if (sourceState === undefined) throw new StepError("pre-check", `${r.name} is not on ${r.from.hostName} (it moved or vanished outside vm-infra: run pulumi refresh)`);
  if ((await S.jobInfo(r.name)).active) problems.push(`a job of libvirt's is already under way for ${r.name} on ${r.from.hostName} (a migration left by an interrupted run?): wait for it to end, then run pulumi up`);
  const taken = await describeOwner(T, r.name, r.to.hostName);
  if (taken) problems.push(taken);

  // CPU: the target's hypervisor must offer the CPU the guest runs with now
  const live = await S.exec(["dumpxml", "--", r.name]);
  const cpu = /<cpu[\s>][\s\S]*?<\/cpu>/.exec(live)?.[0];
  if (cpu && /<model/.test(cpu)) {
    const out = await withPrivateFile(cpu, (f) => T.exec(["hypervisor-cpu-compare", "--virttype", r.domainType, "--file", f]).catch((e: unknown) => `error: ${msg(e)}`));
    if (/incompatible|error/i.test(out)) problems.push(`CPU: ${r.to.hostName} cannot run this guest's CPU (${out.trim().split("\n")[0]})`);
  }

  if (!r.bridge) { // a host bridge is outside libvirt's view; a libvirt network must be active
    const net = parseKeyValues(await T.exec(["net-info", "--", r.network]).catch((e: unknown) => `Active: no (${msg(e)})`));
    if (net.Active !== "yes") problems.push(`network ${r.network} is not active on ${r.to.hostName}`);
  }

  // memory
  const mem = parseKeyValues(await T.exec(["nodememstats"]));
  const kib = (k: string) => Number((mem[k] ?? "0").split(" ")[0]);
  const freeMiB = Math.floor((kib("free") + kib("cached") + kib("buffers")) / 1024);
  // moves arriving on that host in this update have not taken all their memory there yet: it is promised to them
  const promised = arriving.reduce((sum, a) => sum + a.memoryMiB, 0);
  if (freeMiB - promised < r.memoryMiB)
    problems.push(`memory: ${r.to.hostName} has ${freeMiB} MiB free${promised ? `, ${promised} MiB of it promised to the moves arriving there now ` +
      `(${arriving.map((a) => a.vm).join(", ")})` : ""}, the VM needs ${r.memoryMiB} MiB`);

  if (r.storage === "shared") {
    if (r.to.pool !== r.from.pool) problems.push(`storage: shared pool ${r.from.pool} on ${r.from.hostName} but ${r.to.pool} on ${r.to.hostName}`);
    else {
      // each host's view of a shared pool is only as new as its last refresh
      await S.refreshPool(r.from.pool);
      await T.refreshPool(r.to.pool);
      for (const vol of [r.overlayVolume, r.isoVolume, r.baseVolume]) {
        const [a, b] = [await S.volumePath(r.from.pool, vol).catch(() => "?"), await T.volumePath(r.to.pool, vol).catch(() => "missing")];
        if (a !== b) problems.push(`storage: ${vol} is ${b} on ${r.to.hostName} but ${a} on ${r.from.hostName}: pool ${r.to.pool} is not shared`);
      }
    }
  } else {
    let base = 0;
    if (!(await T.volumeExists(r.to.pool, r.baseVolume))) {
      if (o.baseUploadedFirst) {
        // uploaded once per pool: a plan's earlier move into the same pool already counted it (and holds it)
        const counted = o.room?.promised(r.to.uri, r.to.pool, r.name).some((x) => x.vm === baseKey(r.baseVolume));
        base = counted ? 0 : await volBytes(S, r.from.pool, r.baseVolume, "Allocation");
      } else problems.push(`base image ${r.baseVolume} is not in pool ${r.to.pool} on ${r.to.hostName}`);
    }
    for (const vol of [r.overlayVolume, r.isoVolume])
      if (await T.volumeExists(r.to.pool, vol)) problems.push(`volume ${vol} already exists in pool ${r.to.pool} on ${r.to.hostName} (left from an earlier move? delete it first)`);
    const need = base + (await volBytes(S, r.from.pool, r.overlayVolume, "Allocation")) + (await volBytes(S, r.from.pool, r.isoVolume, "Capacity"));
    const { state, availableBytes: avail } = await T.poolInfo(r.to.pool);
    if ((state ?? "running") !== "running") problems.push(`pool ${r.to.pool} on ${r.to.hostName} is ${state}`);
    const margin = 64 * 1024 ** 2;
    // from here to the hold at the end nothing awaits: no other copy's pre-check can pass in between
    const others = o.room?.promised(r.to.uri, r.to.pool, r.name) ?? [];
    const promised = others.reduce((sum, x) => sum + x.bytes, 0);
    if (avail - promised < need + margin) problems.push(`room: pool ${r.to.pool} on ${r.to.hostName} has ${mib(avail)} available` +
      (promised ? `, ${mib(promised)} of it promised to the copies arriving there now (${others.map((x) => x.vm).join(", ")})` : "") +
      `, the copy needs ${mib(need + margin)}` + (base ? ` (with the base image this update uploads there first, ${mib(base)})` : ""));
    copyBytes = need - base;
    baseBytes = base;
  }
  if (problems.length) throw new StepError("pre-check", problems.join("; "));
  if (!o.room || !copyBytes) return { sourceState };
  const releases = [o.room.hold(r.to.uri, r.to.pool, r.name, copyBytes), ...(baseBytes ? [o.room.hold(r.to.uri, r.to.pool, baseKey(r.baseVolume), baseBytes)] : [])];
  return { sourceState, release: () => releases.forEach((f) => f()) };
}

/** How a base image that the update uploads first is listed among a pool's promises (once per pool, not per move). */
const baseKey = (volume: string) => `base image ${volume}`;

/**
 * `vm-infra plan --check-hosts`: the planned moves' pre-checks (questions only), one after another in the plan's order.
 * Nothing has moved when they are asked, so each move that passes keeps what the update will take for it: its copy's
 * room in the target pool (and, once per pool, the base image uploaded there first) and its memory on the target host,
 * which every later move's checks count as taken. Two copies that each fit alone but not together are then "would
 * fail" in the plan, as the update finds them. Returns each move's problems (none: it would pass).
 */
export function planPreChecks(connect: (uri: string) => Virsh): (r: MoveRequest, baseUploadedFirst: boolean) => Promise<string[]> {
  const room = new PoolPromises();
  const arriving = new Map<string, { vm: string; memoryMiB: number }[]>(); // target URI -> the planned moves there that passed
  return async (r, baseUploadedFirst) => {
    const there = arriving.get(r.to.uri) ?? [];
    try {
      await preChecks(r, connect(r.from.uri), connect(r.to.uri), { baseUploadedFirst, room, arriving: there });
      arriving.set(r.to.uri, [...there, { vm: r.name, memoryMiB: r.memoryMiB }]);
      return [];
    } catch (e) {
      return [e instanceof Error ? e.message : String(e)];
    }
  };
}
