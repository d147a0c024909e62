// Benchmark (prints figures, asserts nothing): a drain of 4 VMs through vm-infra against the same 4 moves done by
// hand with raw `virsh migrate` under the same limit (at most 2 at once leaving the host), in the same run.
//
//   scripts/with-env.sh node dist/scripts/benchDrain.js [--vms 4] [--limit 2] [--topology local|remote]   (npm run bench:drain)
//
// The VMs keep their disks in the shared pool (the raw commands need no preparation) and are created through vm-infra
// (stack bench-drain) on hv-a. Floor: raw `virsh migrate` (the argv vm-infra builds) hv-a -> hv-b, `limit` at a time,
// then back by hand the same way. Then `hosts.hv-a.drain: true` and one `pulumi up`: its wall time, and the span of
// the moves from their own records (first start to last end: what the engine and readiness add lies outside it).
import { args, benchStack, topologyOf } from "./benchStack";
import { HOSTS, migrationUri } from "../lab/layout";
import { ensureLab, writeLabStack } from "../lab/stack";
import { migrateArgs } from "../libvirt/migration";
import { MIGRATION_DEFAULTS } from "../config/spec";
import type { Virsh } from "../host/virsh";

const opts = args({ vms: "4", limit: "2" });
const topo = topologyOf(opts.topology);
const bench = benchStack("bench-drain", topo.netns);

/** Runs `jobs` with at most `limit` at once; resolves with the wall time in ms. */
async function pool(jobs: (() => Promise<unknown>)[], limit: number): Promise<number> {
  const t0 = Date.now();
  const queue = [...jobs];
  await Promise.all(Array.from({ length: Math.min(limit, queue.length) }, async () => {
    for (let job = queue.shift(); job; job = queue.shift()) await job();
  }));
  return Date.now() - t0;
}

const rawMove = (from: Virsh, name: string, to: (typeof HOSTS)[number]) => () =>
  from.exec(migrateArgs({ name, destUri: migrationUri(to), p2p: true, storage: "shared", migration: MIGRATION_DEFAULTS }), 600_000);

async function main(): Promise<void> {
  const n = Number(opts.vms);
  const limit = Number(opts.limit);
  const { image, publicKey } = await ensureLab();
  await bench.select();
  const names = Array.from({ length: n }, (_, i) => `bench-d${i + 1}`);
  const vms = names.map((name) => ({ name, host: "hv-a", memoryMiB: 384, diskGiB: 4, user: "ops", storage: "shared" }));
  const hosts = (drain: boolean) => ({ ...topo.hosts, "hv-a": { ...(topo.hosts["hv-a"] as object), ...(drain ? { drain: true } : {}) } });
  const limits = { outgoingPerHost: limit, incomingPerHost: limit, perUpdate: Math.max(limit, 5) };
  await writeLabStack(bench.root, bench.stack, vms, image, publicKey, { "vm-infra:hosts": hosts(false), "vm-infra:migrationLimits": limits }, undefined, opts.topology);
  console.log(`bench: creating ${n} VMs (384 MiB, shared storage) on hv-a through vm-infra ...`);
  console.log(`bench: pulumi up of ${n} VMs to cloud-init done: ${((await bench.timed(["up", "--yes", "--skip-preview"])) / 1000).toFixed(1)} s`);

  const [a, b] = [topo.virsh(HOSTS[0]), topo.virsh(HOSTS[1])];
  const rawMs = await pool(names.map((name) => rawMove(a, name, HOSTS[1])), limit);
  const backMs = await pool(names.map((name) => rawMove(b, name, HOSTS[0])), limit);
  console.log(`floor: ${n} raw virsh migrate hv-a -> hv-b, ${limit} at a time: ${(rawMs / 1000).toFixed(2)} s (back by hand: ${(backMs / 1000).toFixed(2)} s)`);

  await writeLabStack(bench.root, bench.stack, vms, image, publicKey, { "vm-infra:hosts": hosts(true), "vm-infra:migrationLimits": limits }, undefined, opts.topology);
  const upMs = await bench.timed(["up", "--yes", "--skip-preview"]);
  const out = await bench.vmsOutput();
  const spans = names.map((name) => {
    const r = out[name].lastMigration as { startedAt: string; durationMs: number };
    return [Date.parse(r.startedAt), Date.parse(r.startedAt) + r.durationMs];
  });
  const movesMs = Math.max(...spans.map((s) => s[1])) - Math.min(...spans.map((s) => s[0]));
  const most = Math.max(...spans.map(([s]) => spans.filter(([x, y]) => x <= s && s < y).length));
  console.log(`vm-infra: drain of hv-a (${n} VMs, limit ${limit}): pulumi up ${(upMs / 1000).toFixed(2)} s, the moves (first start to last end, ` +
    `health checks included) ${(movesMs / 1000).toFixed(2)} s, at most ${most} at once; ` +
    `ratio to the floor: moves ${(movesMs / rawMs).toFixed(2)}x, whole up ${(upMs / rawMs).toFixed(2)}x`);
  console.log(`hosts: ${names.map((name) => `${name} on ${String(out[name].host)}`).join(", ")}`);
  await bench.timed(["destroy", "--yes", "--skip-preview"]);
  await bench.remove();
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
