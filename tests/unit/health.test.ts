// The post-move health runner: each check retried until it passes or its deadline passes, in order, stopping at the
// first check that never passes; what it reports and logs, exactly.
import { runHealth, Check } from "../../providers/migration/health";

const flaky = (failures: number, calls: string[], name: string): Check => ({
  name,
  run: async () => {
    calls.push(name);
    if (calls.filter((c) => c === name).length <= failures) throw new Error(`${name} not yet`);
  },
});

test("a check that fails twice and then passes is reported as passed after 3 attempts; the next check runs after it", async () => {
  const calls: string[] = [];
  const log: string[] = [];
  const r = await runHealth([flaky(2, calls, "SSH login"), flaky(0, calls, "HTTP GET :8080/")], 5, (l) => log.push(l), "web-1", 10);
  expect(r.map(({ check, ok, attempts, detail }) => ({ check, ok, attempts, detail }))).toEqual([
    { check: "SSH login", ok: true, attempts: 3, detail: undefined },
    { check: "HTTP GET :8080/", ok: true, attempts: 1, detail: undefined },
  ]);
  expect(calls).toEqual(["SSH login", "SSH login", "SSH login", "HTTP GET :8080/"]);
  expect(log).toEqual([]);
});

test("a check that never passes fails at its deadline with its last error; later checks never run", async () => {
  const calls: string[] = [];
  const log: string[] = [];
  const r = await runHealth([flaky(0, calls, "domain running"), flaky(1e9, calls, "guest agent ping"), flaky(0, calls, "SSH login")], 0.2,
    (l) => log.push(l), "web-1", 50);
  expect(r.map(({ check, ok, detail }) => ({ check, ok, detail }))).toEqual([
    { check: "domain running", ok: true, detail: undefined },
    { check: "guest agent ping", ok: false, detail: "guest agent ping not yet" },
  ]);
  expect(r[1].attempts).toBeGreaterThanOrEqual(2);
  expect(r[1].ms).toBeGreaterThanOrEqual(200);
  expect(calls).not.toContain("SSH login");
  expect(log).toEqual(["web-1: health check failed: guest agent ping: guest agent ping not yet"]);
});
