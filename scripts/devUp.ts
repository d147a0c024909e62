// The main job (npm run setup): lab up, the dev stack configured from the lab, `pulumi up`, and how to SSH in.
import * as path from "node:path";
import { readFileSync } from "node:fs";
import YAML from "yaml";
import { run } from "../host/runner";
import { ensureLab, writeLabStack } from "../lab/stack";

async function main(): Promise<void> {
  const root = path.join(__dirname, "..", "..");
  const { image, publicKey } = await ensureLab();
  const dev = YAML.parse(readFileSync(path.join(root, "Pulumi.dev.yaml"), "utf8")).config;
  const common = ["--cwd", root, "--stack", "dev", "--non-interactive"];
  await run("pulumi", ["stack", "select", "--create", ...common], { timeoutMs: 60_000 });
  await writeLabStack(root, "dev", dev["vm-infra:vms"], image, publicKey);
  const up = await run("pulumi", ["up", "--yes", "--skip-preview", ...common], { timeoutMs: 30 * 60_000 });
  process.stdout.write(up.stdout.split("\n").slice(-25).join("\n"));
  const out = JSON.parse((await run("pulumi", ["stack", "output", "vms", "--json", ...common], { timeoutMs: 60_000 })).stdout);
  for (const [name, vm] of Object.entries(out as Record<string, { ssh: string; host: string }>)) {
    console.log(`\n${name} runs on ${vm.host}. SSH in with:\n  ${vm.ssh}`);
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
