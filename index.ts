// vm-infra: reads stack config, validates it, builds components, exports outputs. No logic of its own beyond wiring.
import * as pulumi from "@pulumi/pulumi";
import { existsSync } from "node:fs";
import * as path from "node:path";
import { LIMIT_DEFAULTS, parseSpec, SpecError } from "./config/spec";
import { waves } from "./config/fleet";
import { resolve } from "./config/resolve";
import { validatePublicKey } from "./host/ssh";
import { localImageFormat } from "./host/qemuImg";
import { hashTree } from "./host/files";
import { BaseImage } from "./components/BaseImage";
import { Vm } from "./components/Vm";

/** A config error reaches the user as its list of problems, once, without a stack trace (pulumi.RunError). */
export = async () => {
  try {
    return await program();
  } catch (e) {
    if (e instanceof SpecError) throw new pulumi.RunError(e.message);
    throw e;
  }
};

async function program() {
  const cfg = new pulumi.Config("vm-infra");
  // the default key list is a secret; VMs without their own keys get it
  const defaultKeys = cfg.getSecretObject<string[]>("sshKeys");
  const keys = await new Promise<string[]>((resolve) => (defaultKeys ?? pulumi.output([] as string[])).apply(resolve));
  const rawVms = (cfg.getObject<Record<string, unknown>[]>("vms") ?? []).map((v) => ({ sshKeys: keys, ...v }));
  const spec = parseSpec({
    hosts: cfg.getObject("hosts"),
    image: cfg.getObject("image"),
    vms: rawVms,
    readiness: cfg.getObject("readiness"),
    migrationLimits: cfg.getObject("migrationLimits"),
  });
  const problems: string[] = [];
  for (const vm of spec.vms)
    for (const k of vm.sshKeys)
      await validatePublicKey(k).catch(() => problems.push(`vm ${vm.name}: ssh-keygen rejects one of its SSH public keys`));
  if (!existsSync(spec.readiness.privateKeyPath)) problems.push(`readiness.privateKeyPath: ${spec.readiness.privateKeyPath} does not exist`);
  const root = path.join(__dirname, ".."); // compiled to dist/index.js
  const secretVars: pulumi.Output<Record<string, Record<string, unknown>>> = cfg.getSecretObject<Record<string, Record<string, unknown>>>("provisionSecrets") ?? pulumi.secret({} as Record<string, Record<string, unknown>>);
  const secretNames = await new Promise<string[]>((resolve) => secretVars.apply((s) => resolve(Object.keys(s ?? {}))));
  for (const n of secretNames) if (!spec.vms.some((v) => v.name === n && v.provision)) problems.push(`provisionSecrets.${n}: no VM of that name has provision`);
  // each VM's playbook as an absolute path, and the hash of its directory (hashed once per playbook)
  const hashes: Record<string, string> = {};
  const playbooks: Record<string, { playbook: string; playbookHash: string }> = {};
  for (const vm of spec.vms) {
    if (!vm.provision) continue;
    const file = path.join(root, vm.provision.playbook);
    if (!existsSync(file)) { problems.push(`vms (${JSON.stringify(vm.name)}).provision.playbook: ${vm.provision.playbook} does not exist in the project`); continue; }
    hashes[file] ??= await hashTree(path.dirname(file));
    playbooks[vm.name] = { playbook: file, playbookHash: hashes[file] };
  }
  if (spec.image.source) {
    const { problem } = await localImageFormat(spec.image.source);
    if (problem) problems.push(`image.source: ${problem}`);
  }
  if (problems.length > 0) throw new SpecError(problems);

  // one base image per host pool a VM uses (config/resolve.ts decides which, and which host uploads it)
  const images: Record<string, BaseImage> = {};
  const vms: Record<string, pulumi.Output<unknown>> = {};
  const built: Record<string, Vm> = {};
  // only limits that differ from the defaults reach the placements (stacks made before them see no change)
  const limits = JSON.stringify(spec.limits) === JSON.stringify(LIMIT_DEFAULTS) ? undefined : spec.limits;
  const resolved = new Map(resolve(spec).map((r) => [r.vm.name, r]));
  // each VM after the VMs it waits for (migration.after): its placement depends on theirs, ready and provisioned
  for (const { vm } of waves(spec.vms)) {
    const r = resolved.get(vm.name)!;
    images[r.image.key] ??= new BaseImage(`base-${r.image.key}`, { host: r.image.host, image: spec.image });
    const pv = r.vm.provision;
    const c = new Vm(r.vm.name, {
      resolved: r, image: spec.image, baseImage: images[r.image.key], readiness: spec.readiness,
      isoDir: path.join(root, ".vm-infra", "iso", pulumi.getStack()), // one directory per stack
      provision: pv && { ...playbooks[r.vm.name], vars: pv.vars, tags: pv.tags, timeoutSeconds: pv.timeoutSeconds,
        secretVars: secretVars.apply((s) => s?.[r.vm.name] ?? {}) },
      after: (vm.migration.after ?? []).map((d) => built[d]),
      limits,
    });
    built[vm.name] = c;
    vms[r.vm.name] = pulumi.output({ address: c.address, status: c.status, host: c.hostName, mac: c.mac, instanceId: c.instanceId, ssh: c.sshCommand,
      hostKey: c.hostKey, knownHosts: c.knownHosts, lastMigration: c.lastMigration, ...(pv ? { provisioned: c.provisioned } : {}) });
  }
  return { vms };
}
