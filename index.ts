// vm-infra: reads stack config, validates it, builds components, exports outputs. No logic of its own beyond wiring.
import * as pulumi from "@pulumi/pulumi";
import { existsSync } from "node:fs";
import * as path from "node:path";
import { parseSpec, SpecError } from "./config/spec";
import { validatePublicKey } from "./host/ssh";
import { BaseImage } from "./components/BaseImage";
import { Vm } from "./components/Vm";

export = async () => {
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
  });
  const problems: string[] = [];
  for (const vm of spec.vms)
    for (const k of vm.sshKeys)
      await validatePublicKey(k).catch(() => problems.push(`vm ${vm.name}: ssh-keygen rejects one of its SSH public keys`));
  if (!existsSync(spec.readiness.privateKeyPath)) problems.push(`readiness.privateKeyPath: ${spec.readiness.privateKeyPath} does not exist`);
  if (spec.image.source && !existsSync(spec.image.source)) problems.push(`image.source: ${spec.image.source} does not exist`);
  if (problems.length > 0) throw new SpecError(problems);

  const images: Record<string, BaseImage> = {};
  for (const hostName of new Set(spec.vms.map((v) => v.host))) {
    images[hostName] = new BaseImage(`base-${hostName}`, { host: spec.hosts[hostName], image: spec.image });
  }
  const vms: Record<string, pulumi.Output<unknown>> = {};
  for (const vm of spec.vms) {
    const c = new Vm(vm.name, {
      vm, host: spec.hosts[vm.host], image: spec.image, baseImage: images[vm.host], readiness: spec.readiness,
      isoDir: path.join(__dirname, "..", ".vm-infra", "iso"), // compiled to dist/index.js
    });
    vms[vm.name] = pulumi.output({ address: c.address, host: c.hostName, mac: c.mac, instanceId: c.instanceId, ssh: c.sshCommand });
  }
  return { vms };
};
