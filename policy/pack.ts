// vm-infra's CrossGuard policy pack: `pulumi preview --policy-pack policy` (and up). The pack directory is policy/
// (PulumiPolicy.yaml, package.json, index.js which loads this file compiled); the rules are policy/rules.ts. Each policy's
// enforcement level and settings can be changed with `--policy-pack-config FILE` (README: Policies).
import { PolicyPack, type PolicyConfigSchema, type ReportViolation, type ResourceValidationArgs, type StackValidationArgs } from "@pulumi/policy";
import {
  POLICY_DEFAULTS, antiAffinity, blastRadius, copiedMoveBandwidth, downtimeCeiling, hostCapacity, postcopyForStateful, productionNeedsKvm,
  sizeCeiling, stackOfUrn, type PlacementView,
} from "./rules";

/** vm-infra's placement resource (components/Vm.ts): the domain and its disks on one host. */
export const PLACEMENT_TYPE = "pulumi-nodejs:dynamic/vm-infra:Placement";

/**
 * The inputs of every placement this run has validated, by URN. A stack policy is handed each resource's outputs,
 * which during a preview are those of before the update (and never carry the check's moveFrom); the rules that judge
 * the whole fleet must judge what the update declares, which the resource pass of the same run has seen.
 */
const declared = new Map<string, PlacementView>();

const num = (desc: string, d: number) => ({ type: "integer" as const, default: d, description: desc });
const schema = (properties: PolicyConfigSchema["properties"]): PolicyConfigSchema => ({ properties });

function perVm(name: string, description: string, configSchema: PolicyConfigSchema | undefined,
  rule: (v: PlacementView, cfg: Record<string, unknown>, args: ResourceValidationArgs) => string[], enforcementLevel: "mandatory" | "advisory" = "mandatory") {
  return {
    name, description, enforcementLevel, ...(configSchema ? { configSchema } : {}),
    validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
      if (args.type !== PLACEMENT_TYPE) return;
      const v = args.props as PlacementView;
      declared.set(args.urn, v);
      for (const m of rule(v, { ...POLICY_DEFAULTS, ...args.getConfig<Record<string, unknown>>() }, args)) report(m);
    },
  };
}

function fleet(name: string, description: string, configSchema: PolicyConfigSchema | undefined,
  rule: (vms: PlacementView[], cfg: Record<string, unknown>) => string[]) {
  return {
    name, description, enforcementLevel: "mandatory" as const, ...(configSchema ? { configSchema } : {}),
    validateStack: (args: StackValidationArgs, report: ReportViolation) => {
      const vms = args.resources.filter((r) => r.type === PLACEMENT_TYPE).map((r) => declared.get(r.urn) ?? (r.props as PlacementView));
      for (const m of rule(vms, { ...POLICY_DEFAULTS, ...args.getConfig<Record<string, unknown>>() })) report(m);
    },
  };
}

export const pack = new PolicyPack("vm-infra", {
  policies: [
    perVm("no-postcopy-for-stateful", "VMs tagged as stateful never move with post-copy.",
      schema({ statefulTags: { type: "array", items: { type: "string" }, default: POLICY_DEFAULTS.statefulTags, description: "Tags that mark a VM as stateful." } }),
      (v, c) => postcopyForStateful(v, c.statefulTags as string[])),
    perVm("copied-moves-have-bandwidth-cap", "A move that copies disks (storage local) carries migration.bandwidthMiBs.", undefined,
      (v) => copiedMoveBandwidth(v)),
    perVm("max-downtime-ceiling", "migration.maxDowntimeMs is at most a ceiling.",
      schema({ maxDowntimeMs: num("Ceiling for migration.maxDowntimeMs.", POLICY_DEFAULTS.maxDowntimeMs) }),
      (v, c) => downtimeCeiling(v, c.maxDowntimeMs as number)),
    perVm("vm-size-ceiling", "A VM's memory and vCPUs are at most their ceilings.",
      schema({ maxMemoryMiB: num("Ceiling for memoryMiB.", POLICY_DEFAULTS.maxMemoryMiB), maxVcpus: num("Ceiling for vcpus.", POLICY_DEFAULTS.maxVcpus) }),
      (v, c) => sizeCeiling(v, { maxMemoryMiB: c.maxMemoryMiB as number, maxVcpus: c.maxVcpus as number }), "advisory"),
    perVm("production-runs-kvm", "Stacks whose name matches the production pattern never use domainType qemu.",
      schema({ productionStacks: { type: "string", default: POLICY_DEFAULTS.productionStacks, description: "Regular expression for production stack names." } }),
      (v, c, args) => productionNeedsKvm(v, stackOfUrn(args.urn), c.productionStacks as string)),
    fleet("host-capacity", "The VMs placed on a host fit its declared hosts.<h>.capacity.", undefined, (vms) => hostCapacity(vms)),
    fleet("anti-affinity", "VMs of the same group are never on the same host.", undefined, (vms) => antiAffinity(vms)),
    fleet("blast-radius", "At most maxMigrations VMs change host in one update.",
      schema({ maxMigrations: num("Most VMs one update may move.", POLICY_DEFAULTS.maxMigrations) }),
      (vms, c) => blastRadius(vms, c.maxMigrations as number)),
  ],
});
