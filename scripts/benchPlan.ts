// Benchmark (prints figures, asserts nothing): `vm-infra plan` of a 20-VM stack with no changes, and with
// --check-hosts when every VM would move, against the engine's floor in the same run (the same plan of a stack
// with no VM). Every command vm-infra starts is counted from its command log ($VM_INFRA_COMMAND_LOG), by verb:
// the proof that a plan changes nothing on any host is that none of them is a command that changes something.
//
//   scripts/with-env.sh node dist/scripts/benchPlan.js [--vms 20] [--batch 4] [--topology local|remote]   (npm run bench:plan)
//
// The VMs (256 MiB, shared storage, half on each host) are created through vm-infra (stack bench-plan) first, --batch
// at a time: two cores cannot boot 20 TCG guests at once (they did not reach DHCP in 14 minutes), so each batch is
// powered off (virsh destroy) once vm-infra saw it ready, which vm-infra then reports as shut off by choice. The plans
// do not need running guests: a no-change plan compares the config with the state, and the pre-checks read the hosts.
import { mkdtempSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { run } from "../host/runner";
import { args, benchStack, topologyOf } from "./benchStack";
import { ensureLab, writeLabStack } from "../lab/stack";
import { HOSTS, type LabHost } from "../lab/layout";

const opts = args({ vms: "20", batch: "4" });
const topo = topologyOf(opts.topology);
const bench = benchStack("bench-plan", topo.netns);
const empty = benchStack("bench-plan-empty", topo.netns);

/** virsh commands that only ask (everything else vm-infra runs on a host changes something there). */
const ASKS = new Set(["list", "dominfo", "domstate", "domuuid", "dumpxml", "domjobinfo", "domifaddr", "vol-list", "vol-info", "vol-path", "vol-dumpxml",
  "pool-info", "pool-list", "pool-dumpxml", "pool-refresh", "nodeinfo", "nodememstats", "freecell", "capabilities", "domcapabilities", "net-info",
  "net-dhcp-leases", "metadata", "version", "uri", "hostname", "cpu-compare", "hypervisor-cpu-compare", "domblklist", "domiflist", "dommemstat"]);

async function plan(stack: string, extra: string[]): Promise<{ ms: number; result: string; commands: Record<string, number>; changing: number }> {
  const dir = mkdtempSync(path.join(tmpdir(), "vmi-bench-plan-"));
  const log = path.join(dir, "commands.log");
  const json = path.join(dir, "plan.json");
  const bin = path.join(bench.root, "bin", "vm-infra");
  const argv = ["plan", "--stack", stack, "--json", json, ...extra];
  const t0 = Date.now();
  const o = { timeoutMs: 30 * 60_000, okCodes: [0, 1, 7, 11, 12], env: { VM_INFRA_COMMAND_LOG: log } };
  await (topo.netns ? run("ip", ["netns", "exec", topo.netns, bin, ...argv], o) : run(bin, argv, o));
  const ms = Date.now() - t0;
  const commands: Record<string, number> = {};
  for (const l of existsSync(log) ? readFileSync(log, "utf8").trim().split("\n").filter(Boolean) : []) {
    const c = (JSON.parse(l) as { command: string }).command;
    commands[c] = (commands[c] ?? 0) + 1;
  }
  // a metadata call that sets something carries --set, which the log does not keep: vm-infra's plan path never sets it
  const changing = Object.entries(commands).filter(([c]) => c.startsWith("virsh ") && !ASKS.has(c.slice(6))).reduce((s, [, n]) => s + n, 0);
  const result = (JSON.parse(readFileSync(json, "utf8")) as { result: string }).result;
  return { ms, result, commands, changing };
}

const show = (what: string, p: Awaited<ReturnType<typeof plan>>, floorMs: number) =>
  console.log(`${what}: ${(p.ms / 1000).toFixed(2)} s (${(p.ms / floorMs).toFixed(2)}x the floor), result ${p.result}; commands on hosts: ` +
    `${Object.entries(p.commands).sort().map(([c, n]) => `${c} x${n}`).join(", ") || "none"}; of which change something: ${p.changing}`);

async function main(): Promise<void> {
  const n = Number(opts.vms);
  const { image, publicKey } = await ensureLab();
  const hostOf = (i: number, swap: boolean) => ((i % 2 === 0) !== swap ? "hv-a" : "hv-b");
  const vms = (swap: boolean) => Array.from({ length: n }, (_, i) => ({ name: `bench-p${i + 1}`, host: hostOf(i, swap), memoryMiB: 256, diskGiB: 4, user: "ops", storage: "shared" }));
  const cfg = { "vm-infra:hosts": topo.hosts };
  await empty.select();
  await writeLabStack(empty.root, empty.stack, [], image, publicKey, cfg, undefined, opts.topology);
  await bench.select();
  const batch = Math.max(1, Number(opts.batch));
  console.log(`bench: creating ${n} VMs (256 MiB, shared storage, half on each host) through vm-infra, ${batch} at a time ...`);
  for (let made = 0; made < n; made += batch) {
    const upTo = Math.min(n, made + batch);
    await writeLabStack(bench.root, bench.stack, vms(false).slice(0, upTo), image, publicKey, cfg, undefined, opts.topology);
    console.log(`bench: pulumi up of VMs ${made + 1}-${upTo} to cloud-init done: ${((await bench.timed(["up", "--yes", "--skip-preview"])) / 1000).toFixed(1)} s`);
    if (batch < n) {
      for (const [i, v] of vms(false).entries()) {
        if (i < made || i >= upTo) continue;
        const host = HOSTS.find((h) => h.name === v.host) as LabHost;
        await topo.virsh(host).exec(["destroy", v.name]);
      }
    }
  }
  // an up records that the powered-off guests are off (shut off by choice: readiness reports them, waits for none), so
  // the plans below start from a state that is true and has nothing left to do
  if (batch < n) console.log(`bench: up after powering the guests off: ${((await bench.timed(["up", "--yes", "--skip-preview"])) / 1000).toFixed(1)} s`);

  const floor = await plan(empty.stack, []);
  console.log(`floor: vm-infra plan of the same project with no VM: ${(floor.ms / 1000).toFixed(2)} s`);
  show(`vm-infra plan, ${n} VMs, no changes (refresh: always, the project's default)`, await plan(bench.stack, []), floor.ms);
  await writeLabStack(bench.root, bench.stack, vms(true), image, publicKey, cfg, undefined, opts.topology);
  // every VM changes host: the blast-radius policy would refuse the plan before the pre-checks run, so without it
  show(`vm-infra plan --check-hosts --no-policy, all ${n} VMs moving`, await plan(bench.stack, ["--check-hosts", "--no-policy"]), floor.ms);
  await writeLabStack(bench.root, bench.stack, vms(false), image, publicKey, cfg, undefined, opts.topology);
  await bench.timed(["destroy", "--yes", "--skip-preview"]);
  await bench.remove();
  await empty.remove();
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
