// Benchmark (prints figures, asserts nothing): one VM with `provision: true` brought up by `pulumi up`, its time split
// into boot + cloud-init (readiness) and the playbook, against the same playbook run by hand with ansible-playbook on
// the same VM right after (the floor; a second run, so it has nothing to change).
//
//   scripts/with-env.sh node dist/scripts/benchProvision.js      (npm run bench:provision)
import * as path from "node:path";
import { benchStack } from "./benchStack";
import { runPlaybook } from "../host/ansible";
import { HOSTS } from "../lab/layout";
import { KEY_PATH, ensureLab, writeLabStack } from "../lab/stack";

const bench = benchStack("bench-prov");
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function main(): Promise<void> {
  const { image, publicKey } = await ensureLab();
  await bench.select();
  const vars = { app_config: "listen=8080\n", packages: [] };
  await writeLabStack(bench.root, bench.stack, [{ name: "bench-prov", host: "hv-a", memoryMiB: 768, diskGiB: 4, user: "ops", provision: { vars } }], image, publicKey);
  const upMs = await bench.timed(["up", "--yes", "--skip-preview"]);
  const vm = (await bench.vmsOutput())["bench-prov"] as { address: string; hostKey: string; provisioned: { seconds: number; changed: number } };
  const playbookMs = vm.provisioned.seconds * 1000;
  const t0 = Date.now();
  const byHand = await runPlaybook({ name: "bench-prov", address: vm.address, user: "ops", privateKeyPath: KEY_PATH, netns: HOSTS[0].netns,
    hostKey: { alias: "bench-prov", publicKey: vm.hostKey }, playbook: path.join(bench.root, "ansible", "site.yml"), vars, tags: [], timeoutMs: 30 * 60_000, projectDir: bench.root });
  const handMs = Date.now() - t0;
  await bench.timed(["destroy", "--yes", "--skip-preview"]);
  await bench.remove();
  console.log(`vm-infra: pulumi up of 1 VM with provision: ${s(upMs)} in all: boot + cloud-init + base image ${s(upMs - playbookMs)}, ` +
    `playbook ${s(playbookMs)} (changed=${vm.provisioned.changed})`);
  console.log(`floor: the same playbook by hand with ansible-playbook on the same VM: ${s(handMs)} (changed=${byHand.changed}, ${byHand.outcome}); ` +
    `ratio of vm-infra's playbook run to it ${(playbookMs / handMs).toFixed(2)}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
