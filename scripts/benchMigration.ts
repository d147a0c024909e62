// Benchmark (prints figures, asserts nothing): guest downtime as ping loss inside the lab, and vm-infra's overhead
// against a raw `virsh migrate` of the same VM in the same run.
//
//   scripts/with-env.sh node dist/scripts/benchMigration.js [--rounds N] [--vcpus N] [--topology local|remote]   (npm run bench:migration)
//
// remote: vm-infra and the raw command both reach the hosts over qemu+libssh from the lab's operator namespace.
//
// One VM with shared storage (so the raw command needs no preparation) is created through vm-infra (stack bench-mig). Each round: raw `virsh migrate` hv-a -> hv-b (the same
// flags vm-infra uses), `pulumi refresh` (vm-infra finds it on hv-b), then `pulumi up` moves it back hv-b -> hv-a
// through the provider. A pinger in hv-a's namespace (20 ms interval) runs through each move; the longest gap
// between replies is the downtime the guest's network saw.
import { run } from "../host/runner";
import { args, benchStack, topologyOf } from "./benchStack";
import { HOSTS, migrationUri } from "../lab/layout";
import { ensureLab, writeLabStack } from "../lab/stack";
import { migrateArgs } from "../libvirt/migration";
import { MIGRATION_DEFAULTS } from "../config/spec";

const opts = args({ rounds: "3", vcpus: "1" });
const topo = topologyOf(opts.topology);
const bench = benchStack("bench-mig", topo.netns);

/** Pings `address` from hv-a's namespace every 20 ms while `f` runs; returns f's time and the longest reply gap. */
async function withPing(address: string, f: () => Promise<unknown>): Promise<{ ms: number; maxGapMs: number; lost: number }> {
  const pinger = run("ip", ["netns", "exec", HOSTS[0].netns, "ping", "-D", "-n", "-i", "0.02", "-W", "1", "-w", "600", address],
    { timeoutMs: 700_000, okCodes: [0, 1, 143, -1] }).catch((e: unknown) => ({ stdout: (e as { stdoutTail?: string }).stdoutTail ?? "" }));
  await new Promise((r) => setTimeout(r, 1000));
  const t0 = Date.now();
  await f();
  const ms = Date.now() - t0;
  await new Promise((r) => setTimeout(r, 1000));
  await run("pkill", ["-INT", "-f", `^ping -D -n -i 0.02 -W 1 -w 600 ${address.replace(/\./g, "[.]")}$`], { timeoutMs: 10_000, okCodes: [0, 1] });
  const out = (await pinger).stdout;
  const seqs = [...out.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from .* icmp_seq=(\d+)/gm)].map((m) => ({ t: Number(m[1]) * 1000, seq: Number(m[2]) }));
  let maxGapMs = 0;
  for (let i = 1; i < seqs.length; i++) maxGapMs = Math.max(maxGapMs, seqs[i].t - seqs[i - 1].t);
  const lost = seqs.length ? seqs[seqs.length - 1].seq - seqs[0].seq + 1 - seqs.length : 0;
  return { ms, maxGapMs: Math.round(maxGapMs), lost };
}

async function main(): Promise<void> {
  const rounds = Number(opts.rounds);
  const { image, publicKey } = await ensureLab();
  await bench.select();
  const vm = { name: "bench-m", host: "hv-a", vcpus: Number(opts.vcpus), memoryMiB: 768, diskGiB: 4, user: "ops", storage: "shared" };
  await writeLabStack(bench.root, bench.stack, [vm], image, publicKey, { "vm-infra:hosts": topo.hosts }, undefined, opts.topology);
  console.log(`bench: creating bench-m (shared storage, ${vm.vcpus} vCPU) through vm-infra ...`);
  const createMs = await bench.timed(["up", "--yes", "--skip-preview"]);
  const out = await bench.vmsOutput();
  const address = out["bench-m"].address as string;
  console.log(`bench: pulumi up of one VM to cloud-init done: ${(createMs / 1000).toFixed(1)} s`);

  const a = topo.virsh(HOSTS[0]);
  const b = topo.virsh(HOSTS[1]);
  const rows: string[] = [];
  for (let i = 1; i <= rounds; i++) {
    // raw: the same argv vm-infra builds, without pre-checks, polling, health checks or the engine
    const rawArgs = migrateArgs({ name: "bench-m", destUri: migrationUri(HOSTS[1]), p2p: true, storage: "shared", migration: MIGRATION_DEFAULTS });
    const raw = await withPing(address, () => a.exec(rawArgs, 600_000));
    const rawJob = await b.exec(["domjobinfo", "--completed", "--", "bench-m"]).catch(() => "");
    const rawDowntime = /Total downtime:\s+(\d+)/.exec(rawJob)?.[1] ?? "?";
    const refreshMs = await bench.timed(["refresh", "--yes", "--skip-preview"]);
    const prov = await withPing(address, () => bench.timed(["up", "--yes", "--skip-preview"]));
    const rec = (await bench.vmsOutput())["bench-m"].lastMigration as { durationMs: number; downtimeMs: number; health: { ms: number }[] };
    rows.push([
      `round ${i}`,
      `raw virsh migrate a->b ${(raw.ms / 1000).toFixed(2)} s, libvirt downtime ${rawDowntime} ms, ping gap ${raw.maxGapMs} ms (${raw.lost} lost)`,
      `vm-infra b->a: pulumi up ${(prov.ms / 1000).toFixed(2)} s, of which the move ${(rec.durationMs / 1000).toFixed(2)} s ` +
        `(health checks ${rec.health.reduce((s, h) => s + h.ms, 0)} ms), libvirt downtime ${rec.downtimeMs} ms, ping gap ${prov.maxGapMs} ms (${prov.lost} lost)`,
      `overhead vs raw: move ${((rec.durationMs - raw.ms) / 1000).toFixed(2)} s, whole up ${((prov.ms - raw.ms) / 1000).toFixed(2)} s; refresh ${(refreshMs / 1000).toFixed(1)} s`,
    ].join("\n  "));
    console.log(rows[rows.length - 1]);
  }
  await bench.timed(["destroy", "--yes", "--skip-preview"]);
  await bench.remove();
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
