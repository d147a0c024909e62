// Benchmark (prints figures, asserts nothing): N VMs booted by hand with virsh in parallel (the floor: define ->
// SSH, define -> cloud-init done), against one `pulumi up` of the same N VMs through vm-infra, as a ratio. Under TCG
// on 2 cores the floor itself is CPU-bound, so compare N with N, not with one VM.
//
//   scripts/with-env.sh node dist/scripts/benchUp.js [--vms N]      (npm run bench:up -- --vms 8)

import { arg, benchStack } from "./benchStack";
import { Virsh } from "../host/virsh";
import { HOSTS, uri } from "../lab/layout";
import { Base, ensureBase, rawBoot, rawRemove } from "../lab/raw";
import { KEY_PATH, ensureLab, labHostsConfig, labImageConfig, writeLabStack } from "../lab/stack";

const bench = benchStack("bench-up");
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The floor: N VMs booted by hand in parallel on hv-a (the base image uploaded first, not counted). */
async function rawFloor(n: number, base: Base, publicKey: string) {
  const v = new Virsh(uri(HOSTS[0]));
  const uploaded = await ensureBase(v, "default", base);
  const t0 = Date.now();
  const each = await Promise.all(Array.from({ length: n }, async (_, i) => {
    const r = await rawBoot(v, { name: `bench-raw-${i + 1}`, pool: "default", base, publicKey, keyPath: KEY_PATH, netns: HOSTS[0].netns });
    await rawRemove(v, r.vm);
    return r;
  }));
  const wallMs = Date.now() - t0;
  if (uploaded) await v.deleteVolume("default", base.volume);
  return { wallMs, each };
}

async function main(): Promise<void> {
  const n = Number(arg("--vms", "1"));
  const { image, publicKey } = await ensureLab();
  const base = labImageConfig(image) as Base;
  const floor = await rawFloor(n, base, publicKey);
  const worst = (k: "sshMs" | "doneMs" | "prepareMs") => Math.max(...floor.each.map((e) => e[k]));
  console.log(`floor: ${n} VM(s) by hand with virsh, in parallel on hv-a: ISO + volumes ${s(worst("prepareMs"))}; define -> SSH ${s(worst("sshMs"))}; ` +
    `define -> cloud-init done ${s(worst("doneMs"))}; all done ${s(floor.wallMs)}`);

  await bench.select();
  const vms = Array.from({ length: n }, (_, i) => ({ name: `bench-${i + 1}`, host: "hv-a", memoryMiB: 768, diskGiB: 4, user: "ops" }));
  await writeLabStack(bench.root, bench.stack, vms, image, publicKey, { "vm-infra:hosts": labHostsConfig() });
  const upMs = await bench.timed(["up", "--yes", "--skip-preview"]);
  const noopMs = await bench.timed(["up", "--yes", "--skip-preview", "--expect-no-changes"]);
  const destroyMs = await bench.timed(["destroy", "--yes", "--skip-preview"]);
  await bench.remove();
  console.log(`vm-infra: pulumi up of ${n} VM(s) on hv-a to cloud-init done ${s(upMs)} (includes the base image upload); ` +
    `ratio to the floor ${(upMs / floor.wallMs).toFixed(2)}; up with no changes ${s(noopMs)}; destroy ${s(destroyMs)}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
