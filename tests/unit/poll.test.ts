// The one wait loop: a value ends it, a retry reason is kept for the timeout's message, the deadline is kept, and an
// attempt that throws ends it with that error.
import { oncePer, poll, PollTimeout } from "../../host/poll";

test("tries until a value, reporting progress between attempts", async () => {
  let n = 0;
  const waits: (string | undefined)[] = [];
  const v = await poll(async () => (++n < 3 ? { retry: `attempt ${n}` } : { value: n }), { timeoutMs: 5000, intervalMs: 10, what: "x", onWait: (_ms, last) => waits.push(last) });
  expect([v, waits]).toEqual([3, ["attempt 1", "attempt 2"]]);
});

test("the deadline ends it with what was awaited, how long, and the last reason", async () => {
  const t0 = Date.now();
  const e = await poll(async () => ({ retry: "no address yet" }), { timeoutMs: 300, intervalMs: 50, what: "web-1 ready" }).catch((x: unknown) => x);
  expect(e).toBeInstanceOf(PollTimeout);
  expect((e as PollTimeout).message).toBe("web-1 ready: not within 0 s (last: no address yet)");
  expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
  expect(Date.now() - t0).toBeLessThan(2000);
});

test("an attempt that throws ends the wait with its error", async () => {
  await expect(poll(async () => { throw new Error("cloud-init finished with errors"); }, { timeoutMs: 5000, intervalMs: 10, what: "x" }))
    .rejects.toThrow("cloud-init finished with errors");
});

test("progress lines: once per period crossed, never before the first, whatever the attempts' spacing", () => {
  const due = oncePer(30_000);
  // a 1 s poll whose attempts sometimes take 5 s: waited times as onWait sees them
  const seen = [1000, 29_999, 30_000, 30_900, 31_000, 36_000, 59_000, 61_500, 62_000, 95_000, 150_200].filter(due);
  expect(seen).toEqual([30_000, 61_500, 95_000, 150_200]);
});
