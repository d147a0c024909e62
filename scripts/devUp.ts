// The main job (npm run setup): lab up, the dev stack configured from the lab, `pulumi up`, and how to SSH in.
import * as path from "node:path";
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import YAML from "yaml";
import { run } from "../host/runner";
import { ensureLab, writeLabStack } from "../lab/stack";

async function main(): Promise<void> {
  const root = path.join(__dirname, "..", "..");
  const { image, publicKey } = await ensureLab();
  const dev = YAML.parse(readFileSync(path.join(root, "Pulumi.dev.yaml"), "utf8")).config;
  // Pulumi.dev.yaml is the committed template; the lab-specific values (image paths, the encrypted key) go to a
  // generated config file outside git, so a setup run never rewrites a tracked file
  const configFile = path.join(root, ".vm-infra", "Pulumi.dev.generated.yaml");
  await mkdir(path.dirname(configFile), { recursive: true });
  const common = ["--cwd", root, "--stack", "dev", "--non-interactive"];
  await run("pulumi", ["stack", "select", "--create", ...common], { timeoutMs: 60_000 });
  await writeLabStack(root, "dev", dev["vm-infra:vms"], image, publicKey, { "vm-infra:hosts": dev["vm-infra:hosts"] }, configFile);
  const up = await run("pulumi", ["up", "--yes", "--skip-preview", ...common, "--config-file", configFile], { timeoutMs: 30 * 60_000 });
  process.stdout.write(up.stdout.split("\n").slice(-25).join("\n"));
  const out = JSON.parse((await run("pulumi", ["stack", "output", "vms", "--json", ...common], { timeoutMs: 60_000 })).stdout);
  // the guests' pinned host keys (the knownHosts outputs) in a known_hosts of the checkout's own: the printed command
  // then checks the guest's key strictly, and the user's ~/.ssh/known_hosts is left alone
  const vms = out as Record<string, { ssh: string; host: string; knownHosts: string }>;
  const knownHosts = path.join(root, ".vm-infra", "known_hosts");
  await writeFile(knownHosts, Object.values(vms).map((v) => `${v.knownHosts}\n`).join(""), { mode: 0o600 });
  for (const [name, vm] of Object.entries(vms)) {
    const ssh = vm.ssh.replace(" ssh ", ` ssh -o UserKnownHostsFile=${knownHosts} -o StrictHostKeyChecking=yes `);
    console.log(`\n${name} runs on ${vm.host}. SSH in with (its host key is pinned in ${knownHosts}):\n  ${ssh}`);
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
