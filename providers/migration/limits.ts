// How many moves run at once. The engine calls the provider's updates in parallel, all in one provider process per
// update (every vm-infra resource is a dynamic resource of that one plugin), so a module-level limiter sees every
// move of the update: a move waits here, and says for what, until its source host, its target host and the update
// have room (defaults and anchors: config/schema.ts LIMIT_DEFAULTS).
import { LIMIT_DEFAULTS, type MigrationLimits } from "../../config/spec";
import type { Log } from "./types";

export interface Slot { vm: string; from: string; to: string; memoryMiB?: number }

export class MoveLimiter {
  private readonly running: Slot[] = [];
  private readonly waiting: { slot: Slot; limits: MigrationLimits; go: () => void; stop: (e: Error) => void; cancelled: () => boolean }[] = [];

  /** Why `slot` cannot start now, or undefined when it can. */
  blocker(slot: Slot, l: MigrationLimits = LIMIT_DEFAULTS): string | undefined {
    const list = (s: Slot[]) => s.map((r) => r.vm).sort().join(", ");
    const out = this.running.filter((r) => r.from === slot.from);
    if (out.length >= l.outgoingPerHost) return `${out.length} move${out.length > 1 ? "s" : ""} already leaving ${slot.from} (${list(out)}; at most ${l.outgoingPerHost}: migrationLimits.outgoingPerHost)`;
    const into = this.running.filter((r) => r.to === slot.to);
    if (into.length >= l.incomingPerHost) return `${into.length} move${into.length > 1 ? "s" : ""} already arriving on ${slot.to} (${list(into)}; at most ${l.incomingPerHost}: migrationLimits.incomingPerHost)`;
    if (this.running.length >= l.perUpdate) return `${this.running.length} moves already running in this update (${list(this.running)}; at most ${l.perUpdate}: migrationLimits.perUpdate)`;
    return undefined;
  }

  /**
   * Waits for room, then holds a place until the returned release is called (once the move, health checks included,
   * is over). A move still waiting when `cancelled` turns true never starts: it fails with "not started".
   */
  async acquire(slot: Slot, limits: MigrationLimits | undefined, log: Log, cancelled: () => boolean = () => false): Promise<() => void> {
    const l = limits ?? LIMIT_DEFAULTS;
    const why = this.waiting.length ? this.firstBlocker(slot, l) : this.blocker(slot, l);
    if (why !== undefined) {
      const t0 = Date.now();
      log(`${slot.vm}: waiting to move ${slot.from} -> ${slot.to}: ${why}`);
      await new Promise<void>((go, stop) => this.waiting.push({ slot, limits: l, go, stop, cancelled }));
      log(`${slot.vm}: starting its move ${slot.from} -> ${slot.to} after waiting ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    } else this.running.push(slot);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running.splice(this.running.indexOf(slot), 1);
      this.wake();
    };
  }

  /** The other moves running now that arrive on `to`, with the memory each will take there. */
  arriving(to: string, except: string): { vm: string; memoryMiB: number }[] {
    return this.running.filter((r) => r.to === to && r.vm !== except).map((r) => ({ vm: r.vm, memoryMiB: r.memoryMiB ?? 0 }));
  }

  /** Moves that are running now (for tests and messages). */
  get now(): readonly Slot[] {
    return this.running;
  }

  /** A move that arrives while others wait queues behind them unless it can start without taking their place. */
  private firstBlocker(slot: Slot, l: MigrationLimits): string | undefined {
    const own = this.blocker(slot, l);
    if (own !== undefined) return own;
    const ahead = this.waiting.find((w) => w.slot.from === slot.from || w.slot.to === slot.to);
    return ahead ? `${ahead.slot.vm} waits first for ${ahead.slot.from} -> ${ahead.slot.to}` : undefined;
  }

  /** Starts, in arrival order, every waiting move that now has room; a cancelled one is told it will not start. */
  private wake(): void {
    for (let i = 0; i < this.waiting.length; ) {
      const w = this.waiting[i];
      if (w.cancelled()) {
        this.waiting.splice(i, 1);
        w.stop(new Error(`${w.slot.vm}: not started: the apply was cancelled while its move ${w.slot.from} -> ${w.slot.to} waited for its turn; it runs on ${w.slot.from} as before`));
      } else if (this.blocker(w.slot, w.limits) === undefined) {
        this.waiting.splice(i, 1);
        this.running.push(w.slot);
        w.go();
      } else i++;
    }
  }
}

/** The one limiter of this provider process (one update). */
export const limiter = new MoveLimiter();

/**
 * Room in target pools promised to the copies of this update that are under way. A copy's pre-check sees the pool's
 * free bytes as they are now, which do not yet count what the other copies arriving in the same pool will still
 * write: two copies that each fit alone could fill the pool together (and a full pool pauses every running guest whose
 * disk is in it). So a copy that passes its pre-check holds its whole size here until its move ends, and the next
 * pre-check subtracts what others hold. Counting the whole size of a copy half done refuses in doubt, never the other way.
 */
export class PoolPromises {
  private readonly held: { uri: string; pool: string; vm: string; bytes: number }[] = [];

  /** What the other copies into this pool (a host's URI and a pool name) hold now. */
  promised(uri: string, pool: string, except: string): { vm: string; bytes: number }[] {
    return this.held.filter((h) => h.uri === uri && h.pool === pool && h.vm !== except).map((h) => ({ vm: h.vm, bytes: h.bytes }));
  }

  /** Holds `bytes` in the pool for `vm`; the returned function gives them back (once). */
  hold(uri: string, pool: string, vm: string, bytes: number): () => void {
    const h = { uri, pool, vm, bytes };
    this.held.push(h);
    return () => {
      const i = this.held.indexOf(h);
      if (i >= 0) this.held.splice(i, 1);
    };
  }
}

/** The provider process's promises (one process per update, as for the limiter). */
export const poolPromises = new PoolPromises();
