// How vm-infra's SSH reaches a guest through its hypervisor (issue 10, item 3): the jump host taken from the host's
// libvirt URI, the ssh_config ssh reads for it, the argv of an SSH login and of a TCP check through it, the inventory.
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { guestRoute } from "../../config/resolve";
import { parseSpec, SpecError } from "../../config/spec";
import { jumpHostOf } from "../../config/uri";
import { inventoryYaml } from "../../host/ansible";
import { CommandError, Runner } from "../../host/runner";
import { HostKeyError, Virsh, hostKeyProblem, isUnreachable } from "../../host/virsh";
import { jumpConfig, jumpTcp, sshArgv, sshRun } from "../../host/ssh";
import { httpGet } from "../../providers/migration/health";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOq1kYvR3Gc3mO8ZbqPgmYc3xQYqkQq6yH6o3J0Zb1Cd";
const LIBSSH = "qemu+libssh://root@192.168.251.1:2222/system?keyfile=/keys/op&known_hosts=/keys/kh&known_hosts_verify=normal&sshauth=privkey";

test("the jump host is exactly the URI's user, host, port, key and known_hosts; local and TCP URIs give none", () => {
  expect(jumpHostOf(LIBSSH)).toEqual({ host: "192.168.251.1", user: "root", port: 2222, keyfile: "/keys/op", knownHosts: "/keys/kh" });
  expect(jumpHostOf("qemu+ssh://hv1.example.org/system")).toEqual({ host: "hv1.example.org" });
  for (const u of ["qemu:///system", "qemu+tcp://hv1/system"])
    expect(jumpHostOf(u)).toBe("needs a qemu+ssh:// or qemu+libssh:// URI: guests are reached through that host's SSH");
  expect(jumpHostOf("qemu+ssh://hv1/system?command=/bin/x")).toBe("parameter command= is refused: it names a program to run instead of ssh");
});

test("the jump host's ssh_config checks its host key against exactly the URI's known_hosts, never trusting on first use", () => {
  expect(jumpConfig({ host: "192.168.251.1", user: "root", port: 2222, keyfile: "/keys/op", knownHosts: "/keys/kh" })).toBe([
    "Host vmi-jump", "  HostName 192.168.251.1", "  User root", "  Port 2222", "  IdentityFile /keys/op", "  IdentitiesOnly yes",
    "  UserKnownHostsFile /keys/kh", "  StrictHostKeyChecking yes", "  BatchMode yes", "  LogLevel ERROR", ""].join("\n"));
  // without known_hosts= (qemu+ssh): ssh's own known_hosts files, still checked
  expect(jumpConfig({ host: "[fd00::1]" })).toBe(["Host vmi-jump", "  HostName fd00::1", "  StrictHostKeyChecking yes", "  BatchMode yes", "  LogLevel ERROR", ""].join("\n"));
});

test("an SSH login through the jump host: the config file, ProxyJump to it, the guest's options with a known_hosts of its pinned key only; the files exist while ssh runs", async () => {
  const seen: { args: readonly string[]; config: string; knownHosts: string }[] = [];
  const runner: Runner = async (file, args) => {
    const kh = args.find((a) => a.startsWith("UserKnownHostsFile="))!.split("=")[1];
    seen.push({ args: [file, ...args], config: readFileSync(args[1], "utf8"), knownHosts: readFileSync(kh, "utf8") });
    return { stdout: "", stderr: "", exitCode: 0 };
  };
  const jump = { host: "192.168.251.1", user: "root", knownHosts: "/keys/kh" };
  await sshRun({ user: "ops", address: "192.168.100.5", privateKeyPath: "/k", jump, hostKey: { alias: "web-1", publicKey: KEY } }, ["true"], 10_000, runner);
  const cfg = seen[0].args[2];
  const kh = path.join(path.dirname(cfg), "known_hosts");
  expect(seen[0].args).toEqual(["ssh", "-F", cfg, "-o", "ProxyJump=vmi-jump", "-i", "/k", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
    "-o", "StrictHostKeyChecking=yes", "-o", `UserKnownHostsFile=${kh}`, "-o", "GlobalKnownHostsFile=/dev/null", "-o", "HostKeyAlias=web-1",
    "-o", "HostKeyAlgorithms=ssh-ed25519", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5", "-l", "ops", "--", "192.168.100.5", "true"]);
  expect(seen[0].config).toBe(jumpConfig(jump));
  expect(seen[0].knownHosts).toBe(`web-1 ${KEY}\n`);
  expect(() => readFileSync(cfg)).toThrow(/ENOENT/); // removed afterwards
  expect(() => readFileSync(kh)).toThrow(/ENOENT/);
  expect(() => sshArgv({ user: "ops", address: "a", privateKeyPath: "/k", jump, hostKey: { alias: "a", publicKey: KEY } }, ["true"], { knownHosts: "/kh" }))
    .toThrow("ssh: a jump host needs its ssh_config (withRoute)");
});

test("a TCP check through the jump host is ssh -W with the request on stdin: no shell on either side", async () => {
  const calls: { args: readonly string[]; input?: string | Buffer }[] = [];
  const runner: Runner = async (file, args, o) => {
    calls.push({ args: [file, ...args], input: o.input });
    return { stdout: "HTTP/1.0 200 OK\r\n\r\n", stderr: "", exitCode: 0 };
  };
  await jumpTcp({ address: "192.168.100.5", jump: { host: "h" } }, 8080, httpGet("192.168.100.5", "/health"), 15_000, runner);
  expect(calls[0].args).toEqual(["ssh", "-F", calls[0].args[2], "-W", "192.168.100.5:8080", "--", "vmi-jump"]);
  expect(calls[0].input).toBe("GET /health HTTP/1.0\r\nHost: 192.168.100.5\r\nUser-Agent: vm-infra\r\nConnection: close\r\n\r\n");
});

test("the provisioning inventory goes through the same jump host", () => {
  expect(inventoryYaml({ name: "web-1", address: "192.168.100.5", user: "ops", privateKeyPath: "/k", jump: { host: "h" }, hostKey: { alias: "web-1", publicKey: KEY } },
    "/tmp/p/known_hosts", "/tmp/p/ssh_config")).toContain(
    "ansible_ssh_common_args: -F /tmp/p/ssh_config -o ProxyJump=vmi-jump -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes " +
    "-o UserKnownHostsFile=/tmp/p/known_hosts -o GlobalKnownHostsFile=/dev/null -o HostKeyAlias=web-1 -o HostKeyAlgorithms=ssh-ed25519 -o ConnectTimeout=10\n");
});

test("guestJump: only with an SSH URI, never with guestNetns; the route follows the host", () => {
  const base = { image: { volume: "base.qcow2" }, vms: [], readiness: { privateKeyPath: "/k" } };
  const errors = (hosts: unknown) => {
    try {
      parseSpec({ ...base, hosts });
      return [];
    } catch (e) {
      return (e as SpecError).problems;
    }
  };
  expect(errors({ a: { uri: "qemu:///system", guestJump: true } })).toEqual(
    ['hosts."a".guestJump: needs a qemu+ssh:// or qemu+libssh:// URI: guests are reached through that host\'s SSH']);
  expect(errors({ a: { uri: LIBSSH, guestJump: true, guestNetns: "ns" } })).toEqual(['hosts."a": give guestNetns or guestJump, not both']);
  expect(errors({ a: { uri: LIBSSH, guestJump: true } })).toEqual([]);
  expect(guestRoute({ uri: LIBSSH, guestJump: true })).toEqual({ jump: { host: "192.168.251.1", user: "root", port: 2222, keyfile: "/keys/op", knownHosts: "/keys/kh" } });
  expect(guestRoute({ uri: LIBSSH, guestNetns: "vmi-hv-a" })).toEqual({ netns: "vmi-hv-a" });
  expect(guestRoute({ uri: LIBSSH })).toEqual({});
});

test("a host key that is not the verified one is said as such, naming the host and the known_hosts file", () => {
  const fp = "e1:a2:ef:f4:2d:f5:bb:2a:c6:53:f3:14:2d:e2:0a:36:a8:22:09:46:5e:f3:d9:d6:4d:c9:01:a4:f0:36:71:b9";
  // libvirt 9.0's libssh transport, as seen on the lab
  expect(hostKeyProblem(LIBSSH, `error: failed to connect to the hypervisor\nerror: authentication failed: !!! SSH HOST KEY VERIFICATION FAILED !!!: Identity of host '192.168.251.1:22' differs from stored identity. Please verify the new host key '${fp}' to avoid possible man in the middle attack. The key is stored in '/keys/kh'.`))
    .toBe(`the SSH host key of 192.168.251.1:22 (${fp}) differs from the one in known_hosts /keys/kh: refused, nothing was done on that host; ` +
      "vm-infra never accepts a host key it cannot verify. If the host was reinstalled, verify its new key out of band and replace its line there; if not, someone may be in the middle");
  expect(hostKeyProblem(LIBSSH, `error: failed to connect to the hypervisor\nerror: libssh transport error: SSH host key for '192.168.251.1' (${fp}) was not accepted`))
    .toBe(`the SSH host key of 192.168.251.1 (${fp}) is not in known_hosts /keys/kh: refused, nothing was done on that host; ` +
      "vm-infra never accepts a host key it cannot verify. Verify the key out of band and add it there");
  expect(hostKeyProblem("qemu+ssh://root@hv1/system", "error: failed to connect to the hypervisor\nerror: Cannot recv data: Host key verification failed.: Connection reset by peer"))
    .toBe("the SSH host key of hv1 could not be verified against your known_hosts (ssh: Host key verification failed): refused, nothing was done " +
      "on that host; vm-infra never accepts a host key it cannot verify. Verify the key out of band and add it there");
  expect(hostKeyProblem(LIBSSH, "error: failed to connect to the hypervisor\nerror: Connection refused")).toBeUndefined();
});

test("virsh's stdin is closed at once: libvirt's question whether to accept an unknown key gets no answer", async () => {
  const seen: (string | Buffer | undefined)[] = [];
  const runner: Runner = async (_f, _a, o) => {
    seen.push(o.input);
    throw new CommandError(["virsh"], 1, null, false, "error: libssh transport error: SSH host key for 'h' (aa:bb) was not accepted", "");
  };
  const err = await new Virsh(LIBSSH, runner).exec(["list"]).catch((e: unknown) => e);
  expect(seen).toEqual([undefined]); // the runner ends stdin empty when no input is given
  expect(err).toBeInstanceOf(HostKeyError);
  expect(isUnreachable(err)).toBe(false); // it answered, with another key: not "did not answer"
});
