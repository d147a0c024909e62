// Thin typed wrappers over `virsh -c URI ...` (virsh parses its own argv: nothing here is ever a shell string).
import { poll } from "./poll";
import { CommandError, run, Runner } from "./runner";
import { withPrivateFile } from "./tempFiles";
import { parseKeyValues, parseVolumeXml } from "../libvirt/domain";
import { JobInfo, parseJobInfo } from "../libvirt/migration";
import { parseLibvirtUri } from "../config/uri";
import { endpointKey, SshGate, sshGate } from "./sshGate";

export const VIRSH_TIMEOUT_MS = 60_000;

/** The runner every Virsh uses unless given one; unit tests swap in a recording fake (never production code). */
export const virshRunner: { current: Runner } = { current: run };

const SSH_FAMILY = new Set(["ssh", "libssh", "libssh2"]);

export class Virsh {
  /** The SSH endpoint every call opens a connection to (qemu+ssh/libssh/libssh2), paced by the gate; else none. */
  private readonly endpoint?: string;

  constructor(
    readonly uri: string,
    private readonly runner: Runner = virshRunner.current,
    private readonly gate: SshGate = sshGate,
  ) {
    const u = parseLibvirtUri(uri);
    if (typeof u !== "string" && SSH_FAMILY.has(u.transport) && u.host) this.endpoint = endpointKey({ ...u, host: u.host });
  }

  /**
   * stdin is always a pipe that is closed at once (or carries `input`): libvirt's SSH transports ask there whether to
   * accept a host key they do not know, and the answer is then always no.
   */
  async exec(args: readonly string[], timeoutMs = VIRSH_TIMEOUT_MS, input?: string, signal?: AbortSignal): Promise<string> {
    try {
      const call = () => this.runner("virsh", ["-q", "-c", this.uri, ...args], { timeoutMs, input, ...(signal ? { signal } : {}) });
      const r = this.endpoint ? await this.gate.through(this.endpoint, call) : await call();
      return r.stdout;
    } catch (e) {
      const problem = e instanceof CommandError ? hostKeyProblem(this.uri, e.stderrTail) : undefined;
      if (problem) throw new HostKeyError(e as CommandError, problem);
      throw e;
    }
  }

  /**
   * The domain's current libvirt job (`virsh domjobinfo`); a host that does not answer, or a domain it does not know,
   * reads as no job (`active: false`): callers that must tell "silent" from "idle" ask the host's state first.
   */
  async jobInfo(name: string): Promise<JobInfo> {
    return parseJobInfo(await this.exec(["domjobinfo", "--", name], 10_000).catch(() => ""));
  }

  /** Runs a command that takes an XML file argument; the XML goes through a private temp file. */
  async withXml(xml: string, args: (file: string) => string[], timeoutMs = VIRSH_TIMEOUT_MS): Promise<string> {
    return withPrivateFile(xml, (file) => this.exec(args(file), timeoutMs), "doc.xml");
  }

  async domainState(name: string): Promise<string | undefined> {
    try {
      return (await this.exec(["domstate", "--", name])).trim();
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  /**
   * Re-reads a pool's directory (a shared pool shows what other hosts wrote only after this). libvirt refuses while
   * the pool has jobs running (an upload into it, say): that is retried every second until `timeoutMs`.
   */
  async refreshPool(pool: string, timeoutMs = 60_000): Promise<void> {
    await poll(async () => {
      try {
        await this.exec(["pool-refresh", "--", pool]);
        return { value: true };
      } catch (e) {
        if (e instanceof CommandError && /asynchronous jobs running/.test(e.stderrTail)) return { retry: e.stderrTail.trim() };
        throw e;
      }
    }, { timeoutMs, intervalMs: 1000, what: `pool-refresh ${pool} on ${this.uri}` });
  }

  /** A pool's state ("running", "inactive"...; undefined when virsh prints none) and its free bytes. */
  async poolInfo(pool: string): Promise<{ state?: string; availableBytes: number }> {
    const kv = parseKeyValues(await this.exec(["pool-info", "--bytes", "--", pool]));
    return { state: kv.State, availableBytes: Number((kv.Available ?? "0").split(" ")[0]) };
  }

  /** A qcow2 overlay of `capacityGiB` on a qcow2 backing volume of the same pool. */
  async createOverlay(pool: string, name: string, capacityGiB: number, backingVolume: string): Promise<void> {
    await this.exec(["vol-create-as", "--pool", pool, "--name", name, "--capacity", `${capacityGiB}G`, "--format", "qcow2",
      "--backing-vol", backingVolume, "--backing-vol-format", "qcow2"]);
  }

  async listDomains(): Promise<string[]> {
    return lines(await this.exec(["list", "--all", "--name"]));
  }

  async listVolumes(pool: string): Promise<string[]> {
    const out = await this.exec(["vol-list", "--pool", pool]);
    return lines(out).map((l) => l.split(/\s+/)[0]);
  }

  async volumeExists(pool: string, vol: string): Promise<boolean> {
    try {
      await this.exec(["vol-info", "--pool", pool, "--", vol]);
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }

  async volumePath(pool: string, vol: string): Promise<string> {
    return (await this.exec(["vol-path", "--pool", pool, "--", vol])).trim();
  }

  /** The volumes of `pool` whose backing file is `backingPath` (overlays standing on a base image). */
  async backingUsers(pool: string, backingPath: string): Promise<string[]> {
    const users: string[] = [];
    for (const vol of await this.listVolumes(pool)) {
      const xml = await this.exec(["vol-dumpxml", "--pool", pool, "--", vol]).catch((e) => {
        if (isNotFound(e)) return ""; // removed while we looked
        throw e;
      });
      if (xml && parseVolumeXml(xml).backingPath === backingPath) users.push(vol);
    }
    return users;
  }

  /**
   * A small file inside the guest, read through its guest agent (libvirt's channel to the guest, not the network): open,
   * read, close. Only constant JSON built here reaches virsh; the guest's answer is parsed, never run.
   */
  async agentReadFile(name: string, file: string, maxBytes = 65_536): Promise<string> {
    const agent = async <T>(execute: string, args: Record<string, unknown>): Promise<T> =>
      (JSON.parse(await this.exec(["qemu-agent-command", "--timeout", "10", "--", name, JSON.stringify({ execute, arguments: args })], 20_000)) as { return: T }).return;
    const handle = await agent<number>("guest-file-open", { path: file, mode: "r" });
    try {
      const r = await agent<{ "buf-b64": string; eof: boolean }>("guest-file-read", { handle, count: maxBytes });
      if (!r.eof) throw new Error(`${name}: ${file} in the guest is larger than ${maxBytes} bytes`);
      return Buffer.from(r["buf-b64"], "base64").toString("utf8");
    } finally {
      await agent("guest-file-close", { handle }).catch(() => undefined);
    }
  }

  /** Deletes a volume; already gone is success. */
  async deleteVolume(pool: string, vol: string): Promise<void> {
    try {
      await this.exec(["vol-delete", "--pool", pool, "--", vol]);
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }
}

export const lines = (s: string) =>
  s
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length > 0);

/** A host whose SSH key is not the verified one: nothing was done on it. */
export class HostKeyError extends CommandError {
  constructor(e: CommandError, problem: string) {
    super(e.argv, e.exitCode, e.signal, e.timedOut, e.stderrTail, e.stdoutTail);
    this.message = problem;
  }
}

/**
 * What libvirt's SSH transports say when a host's key is not the verified one, as one sentence naming the host and
 * the known_hosts file; undefined for any other error. Pure.
 */
export function hostKeyProblem(uri: string, stderr: string): string | undefined {
  const u = parseLibvirtUri(uri);
  const file = typeof u === "string" ? undefined : u.params.known_hosts;
  const where = file ? `known_hosts ${file}` : "your known_hosts";
  const nothing = "nothing was done on that host; vm-infra never accepts a host key it cannot verify";
  const changed = /Identity of host '([^']+)' differs from stored identity\. Please verify the new host key '([^']+)'/.exec(stderr);
  if (changed) return `the SSH host key of ${changed[1]} (${changed[2]}) differs from the one in ${where}: refused, ${nothing}. ` +
    "If the host was reinstalled, verify its new key out of band and replace its line there; if not, someone may be in the middle";
  const unknown = /SSH host key for '([^']+)' \(([^)]+)\) was not accepted/.exec(stderr);
  if (unknown) return `the SSH host key of ${unknown[1]} (${unknown[2]}) is not in ${where}: refused, ${nothing}. ` +
    "Verify the key out of band and add it there";
  if (/Host key verification failed/.test(stderr)) // OpenSSH (qemu+ssh): unknown or changed, from your ssh config's known_hosts
    return `the SSH host key of ${typeof u === "string" ? uri : u.host} could not be verified against ${where} (ssh: Host key verification failed): ` +
      `refused, ${nothing}. Verify the key out of band and add it there`;
  return undefined;
}

/** libvirt could not be reached at all (daemon down, socket gone, network or ssh failure). */
export function isUnreachable(e: unknown): boolean {
  // a HostKeyError answered, with a key that is not the verified one: not "did not answer"
  return e instanceof CommandError && !(e instanceof HostKeyError) && /(failed to connect to the hypervisor|Failed to connect socket|Connection refused|No route to host|End of file while reading data)/i.test(e.stderrTail);
}

/** libvirt's "no such object" errors (domain, volume, network, pool). */
export function isNotFound(e: unknown): boolean {
  return (
    e instanceof CommandError &&
    /(failed to get domain|Domain not found|Storage volume not found|no storage vol with matching|Network not found|failed to get network|failed to get vol|Storage pool not found)/i.test(
      e.stderrTail,
    )
  );
}
