// The only place in vm-infra that starts programs. Every command is an argv array (never a shell string), runs
// with a deadline, and fails with a CommandError that carries what a log line needs, with secrets scrubbed.
import { spawn } from "node:child_process";
import { appendFileSync } from "node:fs";
import * as path from "node:path";

export interface RunOptions {
  /** Hard deadline; the process group gets SIGTERM, then SIGKILL 2 s later. */
  timeoutMs: number;
  /** Written to stdin, then stdin is closed. */
  input?: string | Buffer;
  /** Added to the inherited environment. Use this (or files) to hand values to constant scripts. */
  env?: Record<string, string>;
  cwd?: string;
  /** Strings that must never appear in an error message or log (keys, passwords, user-data). */
  secrets?: readonly string[];
  /** Exit codes that count as success (default [0]). */
  okCodes?: readonly number[];
  /** Called with each chunk of stdout as it arrives (the whole output is still returned). */
  onStdout?: (chunk: string) => void;
  /** Stops the command early (its process group gets SIGTERM, then SIGKILL): it fails with "stopped: <reason>". */
  signal?: AbortSignal;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** Signature shared by the real runner and the recording fakes in tests. */
export type Runner = (file: string, args: readonly string[], opts: RunOptions) => Promise<RunResult>;

const TAIL = 2000;

export function scrub(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join("***");
  return out;
}

export class CommandError extends Error {
  override readonly name = "CommandError";
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly timedOut: boolean,
    readonly stderrTail: string,
    readonly stdoutTail: string,
    cause?: string,
  ) {
    const what = timedOut ? "timed out" : cause ? cause : signal ? `killed by ${signal}` : `exited ${exitCode}`;
    const tail = (stderrTail.trim() || stdoutTail.trim()).slice(-800);
    super(`${argv.join(" ")}: ${what}${tail ? `: ${tail}` : ""}`);
  }
}

/**
 * What a command does, for the command log: the program and, for virsh, its command (`virsh -c URI dominfo -- x` ->
 * "virsh dominfo"; through `ip netns exec NS`, the command inside). Never an argument's value.
 */
export function commandVerb(file: string, args: readonly string[]): string {
  const prog = path.basename(file);
  if (prog === "ip" && args[0] === "netns" && args[1] === "exec" && args.length > 3) return commandVerb(args[3], args.slice(4));
  if (prog !== "virsh") return prog;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "-c" || args[i] === "--connect") i++;
    else if (!args[i].startsWith("-")) return `virsh ${args[i]}`;
  }
  return prog;
}

/** $VM_INFRA_COMMAND_LOG: one JSON line per command started (time and verb only), for benchmarks and audits. */
function logCommand(file: string, args: readonly string[]): void {
  const log = process.env.VM_INFRA_COMMAND_LOG;
  if (!log) return;
  try {
    appendFileSync(log, `${JSON.stringify({ time: new Date().toISOString(), command: commandVerb(file, args) })}\n`);
  } catch {
    /* a log that cannot be written never stops a command */
  }
}

export const run: Runner = (file, args, opts) =>
  new Promise((resolve, reject) => {
    logCommand(file, args);
    const secrets = opts.secrets ?? [];
    const argv = [file, ...args].map((a) => scrub(a, secrets));
    const child = spawn(file, [...args], {
      cwd: opts.cwd,
      env: opts.env ? { ...process.env, ...opts.env } : process.env,
      stdio: ["pipe", "pipe", "pipe"],
      detached: true, // own process group, so a timeout kills grandchildren too
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let stopped: string | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const kill = () => {
      killGroup(child.pid, "SIGTERM");
      killTimer = setTimeout(() => killGroup(child.pid, "SIGKILL"), 2000);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, opts.timeoutMs);
    const onAbort = () => {
      stopped = `stopped: ${String(opts.signal?.reason ?? "by vm-infra")}`;
      kill();
    };
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener("abort", onAbort, { once: true });
    child.stdout.on("data", (d: Buffer) => {
      out.push(d);
      opts.onStdout?.(d.toString("utf8"));
    });
    child.stderr.on("data", (d: Buffer) => err.push(d));
    child.stdin.on("error", () => undefined); // a program that exits without reading stdin is not our failure
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new CommandError(argv, null, null, false, "", "", scrub(e.message, secrets)));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      if (killTimer) clearTimeout(killTimer);
      const stdout = Buffer.concat(out).toString("utf8");
      const stderr = Buffer.concat(err).toString("utf8");
      const ok = (opts.okCodes ?? [0]).includes(code ?? -1);
      if (!timedOut && !stopped && ok && code !== null) return resolve({ stdout, stderr, exitCode: code });
      reject(
        new CommandError(argv, code, signal, timedOut, scrub(stderr.slice(-TAIL), secrets), scrub(stdout.slice(-TAIL), secrets), stopped),
      );
    });
    child.stdin.end(opts.input ?? "");
  });

function killGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, sig);
  } catch {
    /* already gone */
  }
}
