import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { CommandError, commandVerb, run, scrub } from "../../host/runner";

const HOSTILE = ["$(touch /tmp/vm-infra-pwned)", "`id`", "a; rm -rf /", "' \" \\", "--help", "\n\t", "ünï"];

test("argv values reach the program verbatim, never a shell", async () => {
  for (const v of HOSTILE) {
    const { stdout } = await run("printf", ["%s", v], { timeoutMs: 5000 });
    expect(stdout).toBe(v);
  }
});

test("stdin input and extra environment are passed", async () => {
  expect((await run("cat", [], { timeoutMs: 5000, input: "hello" })).stdout).toBe("hello");
  expect((await run("printenv", ["VMX"], { timeoutMs: 5000, env: { VMX: "$(x)" } })).stdout).toBe("$(x)\n");
});

test("a non-zero exit is a typed error with argv, code and stderr tail", async () => {
  const err = await run("ls", ["/nonexistent-vm-infra"], { timeoutMs: 5000 }).catch((e) => e);
  expect(err).toBeInstanceOf(CommandError);
  expect(err.argv).toEqual(["ls", "/nonexistent-vm-infra"]);
  expect(err.exitCode).toBe(2);
  expect(err.timedOut).toBe(false);
  expect(err.stderrTail).toContain("No such file");
});

test("okCodes accept other exit codes", async () => {
  expect((await run("false", [], { timeoutMs: 5000, okCodes: [1] })).exitCode).toBe(1);
});

test("a deadline kills the whole process group", async () => {
  const t0 = Date.now();
  const err = await run("sh", ["-c", "sleep 30 & sleep 30"], { timeoutMs: 300 }).catch((e) => e);
  expect(err).toBeInstanceOf(CommandError);
  expect(err.timedOut).toBe(true);
  expect(Date.now() - t0).toBeLessThan(5000);
});

test("a missing program is a CommandError, not a crash", async () => {
  const err = await run("/nonexistent/vm-infra-tool", [], { timeoutMs: 5000 }).catch((e) => e);
  expect(err).toBeInstanceOf(CommandError);
  expect(err.message).toContain("ENOENT");
});

test("secrets are scrubbed from argv, stderr and message", async () => {
  const secret = "hunter2-very-secret";
  const err = await run("sh", ["-c", 'echo "bad $1" >&2; exit 3', "x", secret], {
    timeoutMs: 5000,
    secrets: [secret],
  }).catch((e) => e);
  expect(err.message).not.toContain(secret);
  expect(err.stderrTail).toBe("bad ***\n");
  expect(err.argv).toContain("***");
  expect(scrub("a hunter2-very-secret b", [secret])).toBe("a *** b");
});

test("a signal stops the command's process group early; it fails as stopped, with the reason", async () => {
  const t0 = Date.now();
  const stop = new AbortController();
  setTimeout(() => stop.abort("the aborted migration did not end"), 200);
  const err = await run("sleep", ["30"], { timeoutMs: 60_000, signal: stop.signal }).catch((e) => e);
  expect(err).toBeInstanceOf(CommandError);
  expect([err.timedOut, err.message]).toEqual([false, "sleep 30: stopped: the aborted migration did not end"]);
  expect(Date.now() - t0).toBeLessThan(5000);
});

test("the command log ($VM_INFRA_COMMAND_LOG) records each command's verb, never its values", async () => {
  expect(commandVerb("virsh", ["-c", "qemu+ssh://root@hv/system?keyfile=/k", "dominfo", "--", "secret-name"])).toBe("virsh dominfo");
  expect(commandVerb("ip", ["netns", "exec", "vmi-ops", "virsh", "--connect", "qemu:///x", "-q", "vol-list", "default"])).toBe("virsh vol-list");
  expect(commandVerb("/usr/bin/ssh", ["-i", "/key", "ops@10.0.0.1", "cloud-init status"])).toBe("ssh");
  const log = path.join(mkdtempSync(path.join(tmpdir(), "vmi-cmdlog-")), "commands.log");
  process.env.VM_INFRA_COMMAND_LOG = log;
  try {
    await run("true", ["password-like-value"], { timeoutMs: 5000 });
  } finally {
    delete process.env.VM_INFRA_COMMAND_LOG;
  }
  const lines = readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { command: string });
  expect(lines.map((l) => l.command)).toEqual(["true"]);
  expect(readFileSync(log, "utf8")).not.toContain("password-like-value");
});
