// What the benchmark scripts share: a command-line option, and a stack of this project driven through the CLI
// with each command timed.
import * as path from "node:path";
import { parseArgs } from "node:util";
import type { GuestRoute } from "../config/resolve";
import { jumpHostOf, type JumpHost } from "../config/uri";
import { run, Runner } from "../host/runner";
import { Virsh } from "../host/virsh";
import { LabHost, OPS, sshUri, uri } from "../lab/layout";
import { labHostsConfig, Topology } from "../lab/stack";

/**
 * The script's `--name value` options (node:util parseArgs; any other option is refused), each with its default.
 * Every benchmark takes `--topology local|remote` (lab/stack.ts Topology).
 */
export function args<K extends string>(defaults: Record<K, string>): Record<K, string> & { topology: Topology } {
  const all: Record<string, string> = { topology: "local", ...defaults };
  const { values } = parseArgs({ options: Object.fromEntries(Object.keys(all).map((k) => [k, { type: "string" as const }])), allowPositionals: false });
  const out = { ...all, ...values } as Record<K, string> & { topology: Topology };
  if (out.topology !== "local" && out.topology !== "remote") throw new Error(`--topology ${out.topology}: local or remote`);
  return out;
}

/**
 * Where a benchmark's commands run: the local topology from the root namespace over unix sockets; the remote one from
 * the lab's operator namespace over qemu+libssh (pulumi and the raw floor's virsh alike), guests through their hypervisor.
 */
export function topologyOf(t: Topology) {
  const inOps: Runner = (file, a, opts) => run("ip", ["netns", "exec", OPS.netns, file, ...a], opts);
  return {
    hosts: labHostsConfig(t),
    virsh: (h: LabHost) => (t === "remote" ? new Virsh(sshUri(h), inOps) : new Virsh(uri(h))),
    route: (h: LabHost): GuestRoute => (t === "remote" ? { netns: OPS.netns, jump: jumpHostOf(sshUri(h)) as JumpHost } : { netns: h.netns }),
    netns: t === "remote" ? OPS.netns : undefined,
  };
}

export function benchStack(stack: string, netns?: string) {
  const root = path.join(__dirname, "..", ".."); // compiled to dist/scripts
  const common = ["--cwd", root, "--stack", stack, "--non-interactive"];
  const cli = (a: string[], timeoutMs = 60_000) =>
    netns ? run("ip", ["netns", "exec", netns, "pulumi", ...a, ...common], { timeoutMs }) : run("pulumi", [...a, ...common], { timeoutMs });
  return {
    root,
    stack,
    /** Runs a pulumi command on this stack; resolves with its wall time in ms. */
    timed: async (args: string[]): Promise<number> => {
      const t0 = Date.now();
      await cli(args, 60 * 60_000);
      return Date.now() - t0;
    },
    select: () => cli(["stack", "select", "--create"]),
    remove: () => cli(["stack", "rm", "--yes", "--force"]),
    vmsOutput: async () => JSON.parse((await cli(["stack", "output", "vms", "--json"])).stdout) as Record<string, Record<string, unknown>>,
  };
}
