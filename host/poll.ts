// The one wait loop: try until the attempt yields a value, with a deadline, a fixed interval and a progress callback.
// Every "wait until" in vm-infra goes through it, so deadlines and progress read the same everywhere.

export interface PollOptions {
  /** Give up after this long (the attempt in flight is awaited, then PollTimeout is thrown). */
  timeoutMs: number;
  intervalMs: number;
  /** What is awaited, for the timeout's message: "web-1 shut off on hv-a". */
  what: string;
  /** Called after each attempt that yielded nothing, with the time waited so far and the attempt's last complaint. */
  onWait?: (waitedMs: number, last: string | undefined) => void;
}

/** The attempt's verdict: a value (done), or `undefined` with an optional reason (try again). */
export type Attempt<T> = () => Promise<{ value: T } | { retry: string } | undefined>;

export class PollTimeout extends Error {
  constructor(readonly what: string, readonly waitedMs: number, readonly last: string | undefined) {
    super(`${what}: not within ${Math.round(waitedMs / 1000)} s${last ? ` (last: ${last})` : ""}`);
  }
}

export async function poll<T>(attempt: Attempt<T>, o: PollOptions): Promise<T> {
  const t0 = Date.now();
  let last: string | undefined;
  for (;;) {
    const r = await attempt();
    if (r && "value" in r) return r.value;
    if (r && "retry" in r) last = r.retry;
    const waited = Date.now() - t0;
    if (waited >= o.timeoutMs) throw new PollTimeout(o.what, waited, last);
    o.onWait?.(waited, last);
    await new Promise((res) => setTimeout(res, Math.min(o.intervalMs, Math.max(0, o.timeoutMs - waited))));
  }
}

/**
 * For progress lines from `onWait`: true once each time the time waited crosses another multiple of `periodMs`
 * (never before the first), whatever the poll's interval and however long its attempts take.
 */
export function oncePer(periodMs: number): (waitedMs: number) => boolean {
  let said = 0;
  return (waitedMs) => {
    const step = Math.floor(waitedMs / periodMs);
    if (step <= said) return false;
    said = step;
    return true;
  };
}
