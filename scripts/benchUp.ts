// Benchmark (prints figures, asserts nothing): N VMs booted by hand with virsh in parallel (the floor: define ->
// SSH, define -> cloud-init done), against one `pulumi up` of the same N VMs through vm-infra, as a ratio. Under TCG
// on 2 cores the floor itself is CPU-bound, so compare N with N, not with one VM.
//
//   scripts/with-env.sh node dist/scripts/benchUp.js [--vms N] [--batch B] [--topology local|remote]   (npm run bench:up -- --vms 8)
//
// --batch B boots the floor's guests B at a time (default: all N at once). Two cores do not boot 8 TCG guests by hand
// at once: with every guest's 1 vCPU at a quarter of a core, some never answered SSH within 20 minutes. The floor then
// reports the sum of its batches, which is what N boots cost on this machine; vm-infra's half is still one `up` of N.
//
// remote: vm-infra and the floor both reach hv-a over qemu+libssh from the lab's operator namespace, guests through hv-a.

import { args, benchStack, topologyOf } from "./benchStack";
import { HOSTS } from "../lab/layout";
import { Base, ensureBase, rawBoot, rawRemove } from "../lab/raw";
import { KEY_PATH, ensureLab, labImageConfig, writeLabStack } from "../lab/stack";

const opts = args({ vms: "1", batch: "" });
const topo = topologyOf(opts.topology);
const bench = benchStack("bench-up", topo.netns);
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The floor: N VMs booted by hand on hv-a, `batch` at a time in parallel (the base image uploaded first, not counted). */
async function rawFloor(n: number, batch: number, base: Base, publicKey: string) {
  const v = topo.virsh(HOSTS[0]);
  const uploaded = await ensureBase(v, "default", base);
  const t0 = Date.now();
  const each: Awaited<ReturnType<typeof rawBoot>>[] = [];
  for (let first = 0; first < n; first += batch) {
    each.push(...await Promise.all(Array.from({ length: Math.min(batch, n - first) }, async (_, i) => {
      const r = await rawBoot(v, { name: `bench-raw-${first + i + 1}`, pool: "default", base, publicKey, keyPath: KEY_PATH, route: topo.route(HOSTS[0]) });
      await rawRemove(v, r.vm);
      return r;
    })));
  }
  const wallMs = Date.now() - t0;
  if (uploaded) await v.deleteVolume("default", base.volume);
  return { wallMs, each };
}

async function main(): Promise<void> {
  const n = Number(opts.vms);
  const batch = opts.batch ? Number(opts.batch) : n;
  if (!Number.isInteger(n) || n < 1 || !Number.isInteger(batch) || batch < 1) throw new Error(`--vms ${opts.vms} --batch ${opts.batch}: positive integers`);
  const { image, publicKey } = await ensureLab();
  const base = labImageConfig(image) as Base;

  // vm-infra's half first: its figure is the point, and a floor that starves must not cost it
  await bench.select();
  const vms = Array.from({ length: n }, (_, i) => ({ name: `bench-${i + 1}`, host: "hv-a", memoryMiB: 768, diskGiB: 4, user: "ops" }));
  // N first boots at once share two cores under TCG: the lab's 900 s readiness timeout is for one or two
  const readiness = { privateKeyPath: KEY_PATH, timeoutSeconds: Math.max(900, 300 * n) };
  await writeLabStack(bench.root, bench.stack, vms, image, publicKey, { "vm-infra:hosts": topo.hosts, "vm-infra:readiness": readiness }, undefined, opts.topology);
  const upMs = await bench.timed(["up", "--yes", "--skip-preview"]);
  const noopMs = await bench.timed(["up", "--yes", "--skip-preview", "--expect-no-changes"]);
  const destroyMs = await bench.timed(["destroy", "--yes", "--skip-preview"]);
  await bench.remove();
  console.log(`topology ${opts.topology}; vm-infra: pulumi up of ${n} VM(s) on hv-a to cloud-init done ${s(upMs)} (includes the base image upload); ` +
    `up with no changes ${s(noopMs)}; destroy ${s(destroyMs)}`);

  const floor = await rawFloor(n, Math.min(batch, n), base, publicKey);
  const worst = (k: "sshMs" | "doneMs" | "prepareMs") => Math.max(...floor.each.map((e) => e[k]));
  const how = batch >= n ? "in parallel" : `${batch} at a time`;
  console.log(`floor: ${n} VM(s) by hand with virsh, ${how} on hv-a: ISO + volumes ${s(worst("prepareMs"))}; define -> SSH ${s(worst("sshMs"))}; ` +
    `define -> cloud-init done ${s(worst("doneMs"))}; all done ${s(floor.wallMs)}; vm-infra's up to the floor: ${(upMs / floor.wallMs).toFixed(2)}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
