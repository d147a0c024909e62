// The move's vocabulary: what is moved (MoveRequest), what a move reports (MigrationRecord), and its errors.
import type { DomainSpec, HostSpec, VmSpec } from "../../config/spec";
import type { MoveShape, StorageMove } from "../../libvirt/migration";
import { errText } from "../say";

/** One end of a move: a configured host (config/spec.ts HostSpec) and the pool the VM's disks use there. */
export interface HostEnd extends Pick<HostSpec, "uri" | "migrationUri" | "pool" | "guestNetns" | "guestJump"> {
  hostName: string;
}

/** A move: the VM's domain properties as the running domain has them (config/spec.ts DomainSpec), and where it goes. */
export interface MoveRequest extends DomainSpec, Pick<VmSpec, "name" | "diskGiB" | "migration"> {
  /** The domain's UUID as the state recorded it: a domain of that name with another UUID is not this VM. */
  uuid?: string;
  from: HostEnd;
  to: HostEnd;
  storage: StorageMove;
  baseVolume: string;
  overlayVolume: string;
  isoVolume: string;
  /** hostKey: the guest's pinned SSH host key (absent only in the state of VMs made before keys were pinned). */
  guest: { user: string; privateKeyPath: string; staticAddress?: string; hostKey?: string };
  /**
   * An earlier move of vm-infra shut this VM down and failed before it could start it again (the state's
   * stoppedByMove): a source found shut off counts as running, so the VM is started where it lands and checked there.
   */
  startStopped?: boolean;
}

export interface HealthResult {
  check: string;
  ok: boolean;
  attempts: number;
  ms: number;
  detail?: string;
}

export interface MigrationRecord {
  mode: string;
  storage: StorageMove;
  from: string;
  to: string;
  startedAt: string;
  durationMs: number;
  /** Guest downtime as libvirt reports it for the switchover (live/paused); for offline, stop to start on target. */
  downtimeMs?: number;
  bytesMoved?: number;
  health: HealthResult[];
  rollback: string[];
  /** moved; rolled back (runs on the source as before); kept on target (runs there, the move's checks failed); unknown. */
  outcome: "moved" | "rolled back" | "kept on target" | "unknown";
  failedStep?: string;
  error?: string;
}


/** Something of this VM on a host where it does not run (an interrupted move): the next up removes it, after checking. */
export interface Leftover {
  hostName: string;
  uri: string;
  pool: string;
  /** A volume of this VM. */
  volume?: string;
  /** A stopped definition of this VM (same UUID) left where it no longer runs. */
  domain?: string;
}

/** Where a failed move left the VM, as the state must record it. */
export interface MoveFailure {
  record: MigrationRecord;
  /** The host the VM is on now ("from", "to"), or "unknown" when the hosts could not tell (the state keeps "from"). */
  at: "from" | "to" | "unknown";
  paths?: { diskPath: string; isoPath: string };
  leftovers: Leftover[];
  /** The move shut a running VM down and no copy runs now: the state records it, and the next up starts the VM. */
  leftStopped: boolean;
}

export class MigrationError extends Error {
  constructor(readonly failure: MoveFailure, summary: string) {
    const r = failure.record;
    super(`${r.from} -> ${r.to} failed at ${r.failedStep}: ${r.error}. ${summary}`);
  }
  get record(): MigrationRecord {
    return this.failure.record;
  }
}

export type Log = (line: string) => void;

/** A failure at a named step. */
export class StepError extends Error {
  constructor(readonly step: string, message: string) {
    super(message);
  }
}

export const msg = errText;

export async function attempt<T>(step: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof StepError) throw e;
    throw new StepError(step, msg(e));
  }
}

export function shapeOf(r: MoveRequest): MoveShape {
  return { name: r.name, fromHost: r.from.hostName, toHost: r.to.hostName, storage: r.storage, migration: r.migration, memoryMiB: r.memoryMiB, diskGiB: r.diskGiB };
}

