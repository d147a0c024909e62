// The pacing of new SSH connections per hypervisor (host/sshGate.ts): without it, an update that starts many virsh
// calls at once over qemu+ssh opens them all at once, and sshd's default MaxStartups drops some.
import { Virsh } from "../../host/virsh";
import { sshRun } from "../../host/ssh";
import { SshGate } from "../../host/sshGate";
import type { Runner } from "../../host/runner";

const SSH_URI = "qemu+libssh2://root@hv1/system?keyfile=/k&known_hosts=/kh&known_hosts_verify=normal&sshauth=privkey";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A runner whose every command takes `ms`; it records how many ran at once, at most, per connection target. */
function recording(ms: number) {
  const now = new Map<string, number>();
  const most = new Map<string, number>();
  const order: string[] = [];
  const runner: Runner = async (file, args) => {
    const target = file === "virsh" ? args[2] : "guest-ssh";
    order.push(args[args.length - 1]);
    now.set(target, (now.get(target) ?? 0) + 1);
    most.set(target, Math.max(most.get(target) ?? 0, now.get(target) as number));
    await sleep(ms);
    now.set(target, (now.get(target) as number) - 1);
    return { stdout: "ok\n", stderr: "", exitCode: 0 };
  };
  return { runner, most, order };
}

test("twelve virsh calls at once to one SSH host: at most 4 connect at a time, all twelve run, first come first served", async () => {
  const r = recording(20);
  const v = new Virsh(SSH_URI, r.runner, new SshGate(4, 10_000));
  const out = await Promise.all(Array.from({ length: 12 }, (_, i) => v.exec(["dominfo", "--", `vm-${i}`])));
  expect(out).toEqual(Array(12).fill("ok\n"));
  expect(r.most.get(SSH_URI)).toBe(4);
  expect(r.order).toEqual(Array.from({ length: 12 }, (_, i) => `vm-${i}`));
});

test("each SSH host has its own slots; a unix-socket host is not paced", async () => {
  const r = recording(20);
  const gate = new SshGate(4, 10_000);
  const other = SSH_URI.replace("hv1", "hv2");
  const unix = "qemu+unix:///system?socket=/run/hv-a/libvirt-sock";
  await Promise.all([SSH_URI, other, unix].flatMap((u) => Array.from({ length: 8 }, (_, i) => new Virsh(u, r.runner, gate).exec(["domstate", "--", `vm-${i}`]))));
  expect([r.most.get(SSH_URI), r.most.get(other), r.most.get(unix)]).toEqual([4, 4, 8]);
});

test("a long command gives its slot back after the handshake window, so it never holds up the others", async () => {
  const gate = new SshGate(1, 30);
  const started: Record<string, number> = {};
  const t0 = Date.now();
  const runner: Runner = async (_f, args) => {
    started[args[args.length - 1]] = Date.now() - t0;
    await sleep(args[args.length - 1] === "long" ? 400 : 5);
    return { stdout: "", stderr: "", exitCode: 0 };
  };
  const v = new Virsh(SSH_URI, runner, gate);
  await Promise.all([v.exec(["vol-upload", "--", "long"]), v.exec(["domstate", "--", "short"])]);
  expect(started.short).toBeGreaterThanOrEqual(25);
  expect(started.short).toBeLessThan(300);
});

test("a failing command frees its slot: the next one runs", async () => {
  const gate = new SshGate(1, 10_000);
  const runner: Runner = async (_f, args) => {
    if (args[args.length - 1] === "bad") throw new Error("virsh: connection reset by peer");
    return { stdout: "fine", stderr: "", exitCode: 0 };
  };
  const v = new Virsh(SSH_URI, runner, gate);
  await expect(v.exec(["domstate", "--", "bad"])).rejects.toThrow("connection reset by peer");
  await expect(v.exec(["domstate", "--", "good"])).resolves.toBe("fine");
  expect(gate.inFlight("root@hv1:22")).toBe(0);
});

test("guest SSH through a jump host is paced with that host's connections; a guest reached from a namespace is not", async () => {
  const r = recording(20);
  const gate = new SshGate(2, 10_000);
  const hostKey = { alias: "vm-1", publicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOq1kYvR3Gc3mO8ZbqPgmYc3xQYqkQq6yH6o3J0Zb1Cd" };
  const jumpTarget = { user: "ops", address: "10.0.0.5", privateKeyPath: "/k", jump: { host: "hv1", user: "root" }, hostKey };
  await Promise.all(Array.from({ length: 6 }, () => sshRun(jumpTarget, ["true"], 1000, r.runner, gate)));
  expect(r.most.get("guest-ssh")).toBe(2);
  const r2 = recording(20);
  await Promise.all(Array.from({ length: 6 }, () => sshRun({ user: "ops", address: "10.0.0.5", privateKeyPath: "/k", netns: "vmi-hv-a", hostKey }, ["true"], 1000, r2.runner, gate)));
  expect(r2.most.get("guest-ssh")).toBe(6);
});
