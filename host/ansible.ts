// ansible-playbook through the runner: argv only; the inventory (written by the YAML library) and the vars (JSON,
// secrets included) go to ansible as private files, never argv; the result comes from the project's own callback
// (ansible/callback_plugins/vm_infra_result.py) as JSON, not from parsing screen output.
import { readFile, writeFile } from "node:fs/promises";
import * as path from "node:path";
import * as YAML from "yaml";
import { CommandError, run, Runner } from "./runner";
import type { JumpHost } from "../config/uri";
import { guestSshOptions, jumpConfig, knownHostsFile, PinnedKey, routeArgs } from "./ssh";
import { withPrivateDir } from "./tempFiles";

export interface PlaybookRun {
  /** The inventory's one host: the VM's name. */
  name: string;
  address: string;
  user: string;
  privateKeyPath: string;
  /** The guest's pinned SSH host key: ansible's ssh accepts only it. */
  hostKey: PinnedKey;
  /** Run ansible inside this network namespace (the lab's guests live there). */
  netns?: string;
  /** Through the hypervisor's SSH (ProxyJump). */
  jump?: JumpHost;
  /** Absolute path of the playbook. */
  playbook: string;
  vars: Record<string, unknown>;
  tags: string[];
  /** Bound for the whole run. */
  timeoutMs: number;
  /** The project: its ansible/ansible.cfg and callback plugin are used, never a config from the working directory. */
  projectDir: string;
}

export interface PlaybookFailure { task: string; host: string; message: string; unreachable: boolean }
export interface PlaybookResult {
  outcome: "ok" | "failed" | "unreachable";
  ok: number;
  changed: number;
  failed: number;
  unreachable: number;
  rescued: number;
  skipped: number;
  /** Failed tasks, in order (a rescued one included), and an unreachable host. */
  failures: PlaybookFailure[];
  exitCode: number;
}

/** The inventory: one host, reached as readiness reaches it (same key, same user, the same guest SSH options). */
export function inventoryYaml(r: Pick<PlaybookRun, "name" | "address" | "user" | "privateKeyPath" | "jump" | "hostKey">, knownHosts: string, sshConfig?: string): string {
  return YAML.stringify({
    all: {
      hosts: {
        [r.name]: {
          ansible_host: r.address,
          ansible_user: r.user,
          ansible_ssh_private_key_file: r.privateKeyPath,
          ansible_ssh_common_args: [...routeArgs(r, sshConfig), ...[...guestSshOptions(r.hostKey, knownHosts), "ConnectTimeout=10"].flatMap((o) => ["-o", o])].join(" "),
          ansible_python_interpreter: "/usr/bin/python3",
        },
      },
    },
  }, { lineWidth: 0 });
}

export function playbookArgv(r: Pick<PlaybookRun, "netns" | "playbook" | "tags">, files: { inventory: string; vars: string }): string[] {
  const argv = ["ansible-playbook", "-i", files.inventory, "--extra-vars", `@${files.vars}`, ...(r.tags.length ? ["--tags", r.tags.join(",")] : []), "--", r.playbook];
  return r.netns ? ["ip", "netns", "exec", r.netns, ...argv] : argv;
}

/**
 * The environment of a run: no prompts, no colour, no retry files, our callback enabled, a bounded connection, and
 * SSH connection sharing only within this run (its control sockets in the run's private directory): a connection
 * kept from an earlier run would reach a guest whose sshd is gone, or an address that now is another machine.
 */
export function playbookEnv(resultFile: string, projectDir: string, controlDir: string): Record<string, string> {
  return {
    ANSIBLE_SSH_ARGS: "-o ControlMaster=auto -o ControlPersist=5s",
    ANSIBLE_SSH_CONTROL_PATH_DIR: controlDir,
    ANSIBLE_CONFIG: path.join(projectDir, "ansible", "ansible.cfg"),
    ANSIBLE_CALLBACK_PLUGINS: path.join(projectDir, "ansible", "callback_plugins"),
    ANSIBLE_CALLBACKS_ENABLED: "vm_infra_result",
    VM_INFRA_RESULT_FILE: resultFile,
    ANSIBLE_NOCOLOR: "1",
    ANSIBLE_RETRY_FILES_ENABLED: "0",
    // True: with False ansible puts StrictHostKeyChecking=no before the inventory's options, and ssh takes the first
    ANSIBLE_HOST_KEY_CHECKING: "True",
    ANSIBLE_TIMEOUT: "15",
    // each module goes to the guest's python on the SSH session's stdin instead of a temporary file put there, run
    // and removed by three more commands: under TCG each command is a python start (the playbook's become is sudo
    // without requiretty, which pipelining needs)
    ANSIBLE_PIPELINING: "True",
  };
}

/** The callback's JSON -> counts and failures for one host. */
export function parseResult(json: string, host: string, exitCode: number): PlaybookResult {
  const r = JSON.parse(json) as { hosts: Record<string, Record<string, number>>; failures: PlaybookFailure[] };
  const s = r.hosts[host] ?? {};
  const failures = r.failures.filter((f) => f.host === host);
  const unreachable = s.unreachable ?? 0;
  return {
    outcome: unreachable > 0 ? "unreachable" : exitCode === 0 && (s.failures ?? 0) === 0 ? "ok" : "failed",
    ok: s.ok ?? 0, changed: s.changed ?? 0, failed: s.failures ?? 0, unreachable, rescued: s.rescued ?? 0, skipped: s.skipped ?? 0,
    failures, exitCode,
  };
}

/** Runs the playbook against one host; resolves with its result whether it passed or failed. */
export async function runPlaybook(r: PlaybookRun, runner: Runner = run): Promise<PlaybookResult> {
  return withPrivateDir(async (dir) => {
    const files = { inventory: path.join(dir, "inventory.yml"), vars: path.join(dir, "vars.json"), result: path.join(dir, "result.json"), cp: path.join(dir, "cp"),
      sshConfig: path.join(dir, "ssh_config"), knownHosts: path.join(dir, "known_hosts") };
    if (r.jump) await writeFile(files.sshConfig, jumpConfig(r.jump), { mode: 0o600 });
    await writeFile(files.knownHosts, knownHostsFile(r.hostKey), { mode: 0o600 });
    await writeFile(files.inventory, inventoryYaml(r, files.knownHosts, r.jump ? files.sshConfig : undefined), { mode: 0o600 });
    await writeFile(files.vars, JSON.stringify(r.vars), { mode: 0o600 });
    const [file, ...args] = playbookArgv(r, files);
    // 2: a task failed; 4: a host was unreachable (ansible-playbook's exit codes)
    const done = await runner(file, args, { timeoutMs: r.timeoutMs, env: playbookEnv(files.result, r.projectDir, files.cp), okCodes: [0, 2, 4] });
    const json = await readFile(files.result, "utf8").catch(() => {
      throw new CommandError([file, ...args], done.exitCode, null, false, "ansible-playbook wrote no result (was the callback found?)", "");
    });
    return parseResult(json, r.name, done.exitCode);
  });
}
