// Provisioning's pure parts: the inventory and argv handed to ansible-playbook, the result read from vm-infra's
// callback, what re-runs a playbook, the config, and how a failure reads (secrets scrubbed).
import { inventoryYaml, parseResult, playbookArgv, playbookEnv } from "../../host/ansible";
import { sshArgv } from "../../host/ssh";
import { failureMessage, ProvisionInputs, triggered } from "../../providers/provision";
import { parseSpec, SpecError } from "../../config/spec";
import { hashTree } from "../../host/files";
import { mkdtempSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";

const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOq1kYvR3Gc3mO8ZbqPgmYc3xQYqkQq6yH6o3J0Zb1Cd";

test("the inventory is one host, reached with readiness's key and user; it is YAML written by the library, values quoted by it", () => {
  expect(inventoryYaml({ name: "web-1", address: "192.168.100.5", user: "ops", privateKeyPath: "/keys/id: x", hostKey: { alias: "web-1", publicKey: HOST_KEY } }, "/t/known_hosts")).toBe([
    "all:", "  hosts:", "    web-1:", "      ansible_host: 192.168.100.5", "      ansible_user: ops", '      ansible_ssh_private_key_file: "/keys/id: x"',
    "      ansible_ssh_common_args: -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/t/known_hosts " +
      "-o GlobalKnownHostsFile=/dev/null -o HostKeyAlias=web-1 -o HostKeyAlgorithms=ssh-ed25519 -o ConnectTimeout=10",
    "      ansible_python_interpreter: /usr/bin/python3", ""].join("\n"));
});

test("argv: vars only as a file, tags joined, the playbook after --, inside the guests' namespace", () => {
  expect(playbookArgv({ netns: "vmi-hv-a", playbook: "/p/ansible/site.yml", tags: ["config", "pkgs"] }, { inventory: "/t/inv.yml", vars: "/t/vars.json" })).toEqual([
    "ip", "netns", "exec", "vmi-hv-a", "ansible-playbook", "-i", "/t/inv.yml", "--extra-vars", "@/t/vars.json", "--tags", "config,pkgs", "--", "/p/ansible/site.yml"]);
  expect(playbookArgv({ playbook: "/p/site.yml", tags: [] }, { inventory: "/i", vars: "/v" })).toEqual(["ansible-playbook", "-i", "/i", "--extra-vars", "@/v", "--", "/p/site.yml"]);
  expect(playbookEnv("/t/result.json", "/p", "/t/cp")).toEqual({
    ANSIBLE_SSH_ARGS: "-o ControlMaster=auto -o ControlPersist=5s", ANSIBLE_SSH_CONTROL_PATH_DIR: "/t/cp", ANSIBLE_CONFIG: "/p/ansible/ansible.cfg", ANSIBLE_CALLBACK_PLUGINS: "/p/ansible/callback_plugins", ANSIBLE_CALLBACKS_ENABLED: "vm_infra_result",
    VM_INFRA_RESULT_FILE: "/t/result.json", ANSIBLE_NOCOLOR: "1", ANSIBLE_RETRY_FILES_ENABLED: "0", ANSIBLE_HOST_KEY_CHECKING: "True", ANSIBLE_TIMEOUT: "15",
    ANSIBLE_PIPELINING: "True",
  });
});

const callback = (stats: Record<string, number>, failures: unknown[] = []) => JSON.stringify({ hosts: { "web-1": stats }, failures });
test("the callback's JSON reads as counts and failures: ok, failed after a rescue, unreachable", () => {
  expect(parseResult(callback({ ok: 7, changed: 0, failures: 0, unreachable: 0, rescued: 0, skipped: 2 }), "web-1", 0)).toEqual({
    outcome: "ok", ok: 7, changed: 0, failed: 0, unreachable: 0, rescued: 0, skipped: 2, failures: [], exitCode: 0 });
  const f = [{ task: "install packages", host: "web-1", message: "non-zero return code: E: Unable to locate package nosuch", unreachable: false },
    { task: "fail the run (the rescue undid the block)", host: "web-1", message: "install packages failed and was rolled back", unreachable: false }];
  expect(parseResult(callback({ ok: 9, changed: 1, failures: 1, unreachable: 0, rescued: 1, skipped: 0 }, f), "web-1", 2)).toEqual({
    outcome: "failed", ok: 9, changed: 1, failed: 1, unreachable: 0, rescued: 1, skipped: 0, failures: f, exitCode: 2 });
  const u = [{ task: "log directory", host: "web-1", message: "Failed to connect to the host via ssh: Connection refused", unreachable: true }];
  expect(parseResult(callback({ ok: 0, changed: 0, failures: 0, unreachable: 1, rescued: 0, skipped: 0 }, u), "web-1", 4).outcome).toBe("unreachable");
});

const inputs = (o: Partial<ProvisionInputs> = {}): ProvisionInputs => ({
  name: "web-1", hostName: "hv-a", vmId: "u-1", address: "192.168.100.5", status: "ready", user: "ops", privateKeyPath: "/k", hostKey: HOST_KEY, netns: "vmi-hv-a",
  playbook: "/p/ansible/site.yml", playbookHash: "h1", vars: { packages: [] }, secretVars: { db_password: "s3cret-pw" }, tags: [], timeoutSeconds: 1800, ...o,
});

test("re-run triggers: a replaced VM, the playbook's files, vars, secret vars and tags; never the host or address (a move)", () => {
  expect(triggered(inputs(), inputs({ vmId: "u-2" }))).toEqual(["vmId"]);
  expect(triggered(inputs(), inputs({ hostName: "hv-b", address: "192.168.100.9", status: "ready" }))).toEqual([]);
  expect(triggered(inputs(), inputs({ playbookHash: "h2" }))).toEqual(["playbookHash"]);
  expect(triggered(inputs(), inputs({ vars: { packages: ["nginx"] }, tags: ["x"] }))).toEqual(["vars", "tags"]);
  expect(triggered(inputs(), inputs({ secretVars: { db_password: "other" } }))).toEqual(["secretVars"]);
});

test("a failed run reads as host, task and the rescue's outcome; an unreachable guest says nothing ran", () => {
  const failed = parseResult(callback({ ok: 9, changed: 1, failures: 1, unreachable: 0, rescued: 1, skipped: 0 },
    [{ task: "install packages", host: "web-1", message: "non-zero return code: E: Unable to locate package nosuch", unreachable: false }]), "web-1", 2);
  expect(failureMessage(inputs(), failed)).toBe('web-1 on hv-a (192.168.100.5): provisioning failed at task "install packages": non-zero return code: ' +
    "E: Unable to locate package nosuch; the rescue ran: it logged FAILED to /var/log/vm-infra/provisioning.log on the guest and undid the block's changes. " +
    "The VM is kept and not recorded as provisioned; the next up runs site.yml again.");
  const unreachable = parseResult(callback({ ok: 0, changed: 0, failures: 0, unreachable: 1, rescued: 0, skipped: 0 },
    [{ task: "log directory", host: "web-1", message: "Connection refused", unreachable: true }]), "web-1", 4);
  expect(failureMessage(inputs(), unreachable)).toBe("web-1 on hv-a (192.168.100.5): provisioning could not reach the guest over SSH from vmi-hv-a: " +
    "Connection refused; nothing ran. The VM is kept; run up again when its sshd answers.");
  // through a jump host; ssh's message ends in \r\n (seen on the lab): the sentence stays one line
  const viaJump = parseResult(callback({ ok: 0, changed: 0, failures: 0, unreachable: 1, rescued: 0, skipped: 0 }, [{ task: "log directory", host: "web-1",
    message: "Failed to connect to the host via ssh: kex_exchange_identification: Connection closed by remote host\r\n", unreachable: true }]), "web-1", 4);
  expect(failureMessage({ ...inputs(), netns: undefined, jump: { host: "192.168.251.2" } }, viaJump)).toBe("web-1 on hv-a (192.168.100.5): provisioning " +
    "could not reach the guest over SSH through 192.168.251.2: Failed to connect to the host via ssh: kex_exchange_identification: Connection closed " +
    "by remote host; nothing ran. The VM is kept; run up again when its sshd answers.");
});

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBsDSiUG+pm/RKi1LSX+t9/dajLwyJtlG+n01nxm0rVf lab";
const spec = (provision: unknown) => parseSpec({
  hosts: { "hv-a": { uri: "qemu:///system" } }, image: { volume: "b.qcow2" }, readiness: { privateKeyPath: "/k" },
  vms: [{ name: "web-1", host: "hv-a", sshKeys: [KEY], provision }],
});
test("config: provision true takes the defaults; paths stay inside the project; var names are identifiers", () => {
  expect(spec(true).vms[0].provision).toEqual({ playbook: "ansible/site.yml", vars: {}, tags: [], timeoutSeconds: 1800 });
  expect(spec(undefined).vms[0].provision).toBeUndefined();
  expect(spec({ playbook: "play/web.yaml", vars: { app_config: "x=1\n", packages: ["nginx"] }, tags: ["web"] }).vms[0].provision)
    .toEqual({ playbook: "play/web.yaml", vars: { app_config: "x=1\n", packages: ["nginx"] }, tags: ["web"], timeoutSeconds: 1800 });
  const refused = (p: unknown) => { try { spec(p); return []; } catch (e) { return (e as SpecError).problems; } };
  const bad = "a .yml/.yaml path inside the project (relative, no '..')";
  expect(refused({ playbook: "/etc/site.yml" })).toEqual([`vms[0] ("web-1").provision.playbook: ${bad}`]);
  expect(refused({ playbook: "ansible/../../x.yml" })).toEqual([`vms[0] ("web-1").provision.playbook: ${bad}`]);
  expect(refused({ vars: { "a-b": 1 } })).toEqual(['vms[0] ("web-1").provision.vars.a-b: a variable name ([A-Za-z_][A-Za-z0-9_]*)']);
});

test("the playbook hash changes with any file of its directory and ignores byte-code", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "pb-"));
  writeFileSync(path.join(dir, "site.yml"), "- hosts: all\n");
  const h1 = await hashTree(dir);
  mkdirSync(path.join(dir, "__pycache__"));
  writeFileSync(path.join(dir, "__pycache__", "x.pyc"), "junk");
  expect(await hashTree(dir)).toBe(h1);
  mkdirSync(path.join(dir, "roles"));
  writeFileSync(path.join(dir, "roles", "main.yml"), "x");
  const h2 = await hashTree(dir);
  expect(h2).not.toBe(h1);
  writeFileSync(path.join(dir, "roles", "main.yml"), "y");
  expect(await hashTree(dir)).not.toBe(h2);
});

test("readiness's ssh argv carries the same guest SSH options as the inventory, exactly", () => {
  expect(sshArgv({ user: "ops", address: "192.168.100.5", privateKeyPath: "/k", netns: "vmi-hv-a", hostKey: { alias: "web-1", publicKey: HOST_KEY } }, ["true"],
    { knownHosts: "/t/known_hosts" })).toEqual([
    "ip", "netns", "exec", "vmi-hv-a", "ssh", "-i", "/k", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
    "-o", "UserKnownHostsFile=/t/known_hosts", "-o", "GlobalKnownHostsFile=/dev/null", "-o", "HostKeyAlias=web-1", "-o", "HostKeyAlgorithms=ssh-ed25519",
    "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5", "-l", "ops", "--", "192.168.100.5", "true"]);
});
