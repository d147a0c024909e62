import * as pulumi from "@pulumi/pulumi";
import { ImageSpec, MigrationLimits, ReadinessSpec } from "../config/spec";
import { ResolvedVm } from "../config/resolve";
import { cloudInitDocs, instanceId } from "../cloud-init/documents";
import { shim, typed } from "../providers/shim";
import { BaseImage } from "./BaseImage";

export interface VmArgs {
  /**
   * The VM as config/ resolved it: its description, its host (changing it is a move of the whole placement unit), its
   * domain properties, its pool on every host (where a refresh looks for a VM moved outside vm-infra).
   */
  readonly resolved: ResolvedVm;
  readonly image: ImageSpec;
  /** The base image on that host; the overlay is created only after it is there. */
  readonly baseImage: BaseImage;
  readonly readiness: ReadinessSpec;
  /** Local directory for this stack's built ISOs. Default ".vm-infra/iso/<stack>" in the program directory. */
  readonly isoDir?: string;
  /**
   * In-guest provisioning (vms[].provision), resolved by index.ts: the playbook's absolute path and the hash of its
   * files; secret vars arrive as a Pulumi secret.
   */
  readonly provision?: { playbook: string; playbookHash: string; vars: Record<string, unknown>; tags: string[]; timeoutSeconds: number;
    secretVars: pulumi.Input<Record<string, unknown>> };
  /** The VMs this one waits for (migration.after): its placement is created or moved only once they are done. */
  readonly after?: pulumi.Resource[];
  /** Moves at once, when the stack sets other limits than the defaults. */
  readonly limits?: MigrationLimits;
}

class Placement extends pulumi.dynamic.Resource {
  declare readonly diskPath: pulumi.Output<string>;
  declare readonly isoVolume: pulumi.Output<string>;
  declare readonly hostName: pulumi.Output<string>;
  declare readonly lastMigration: pulumi.Output<unknown>;
  declare readonly uuid: pulumi.Output<string>;
  declare readonly powerState: pulumi.Output<string>;
  declare readonly boots: pulumi.Output<number>;
  constructor(name: string, props: Record<string, unknown>, opts?: pulumi.CustomResourceOptions) {
    super(shim("providers/vmPlacement"), name, {
      overlayVolume: undefined, isoVolume: undefined, diskPath: undefined, isoPath: undefined, uuid: undefined, lastMigration: undefined,
      leftovers: undefined, instance: undefined, powerState: undefined, boots: undefined, missing: undefined, ...props,
    }, typed(opts), "vm-infra", "Placement");
  }
}

class SeedIso extends pulumi.dynamic.Resource {
  declare readonly path: pulumi.Output<string>;
  constructor(name: string, props: Record<string, unknown>, opts?: pulumi.CustomResourceOptions) {
    super(shim("providers/isoFile"), name, { path: undefined, instance: undefined, sha256: undefined, ...props }, typed(opts), "vm-infra", "SeedIso");
  }
}

class HostKey extends pulumi.dynamic.Resource {
  declare readonly publicKey: pulumi.Output<string>;
  declare readonly privateKey: pulumi.Output<string>;
  constructor(name: string, props: Record<string, unknown>, opts?: pulumi.CustomResourceOptions) {
    super(shim("providers/hostKey"), name, { publicKey: undefined, privateKey: undefined, ...props }, typed({ ...opts, additionalSecretOutputs: ["privateKey"] }),
      "vm-infra", "HostKey");
  }
}

class Provision extends pulumi.dynamic.Resource {
  declare readonly result: pulumi.Output<unknown>;
  constructor(name: string, props: Record<string, unknown>, opts?: pulumi.CustomResourceOptions) {
    super(shim("providers/provision"), name, { result: undefined, ...props }, typed({ ...opts, additionalSecretOutputs: ["secretVars"] }), "vm-infra", "Provision");
  }
}

class Ready extends pulumi.dynamic.Resource {
  declare readonly address: pulumi.Output<string>;
  declare readonly status: pulumi.Output<string>;
  declare readonly readySeconds: pulumi.Output<number>;
  constructor(name: string, props: Record<string, unknown>, opts?: pulumi.CustomResourceOptions) {
    super(shim("providers/vmReady"), name, { address: undefined, readySeconds: undefined, status: undefined, verifiedHostKey: undefined, ...props },
      typed({ ...opts, additionalSecretOutputs: ["hostKeyPrivate"] }), "vm-infra", "Ready");
  }
}

/**
 * A VM on a libvirt host: a cloud-init NoCloud ISO built by a command (named by its content hash), the placement
 * unit (overlay volume + ISO volume + domain, on one host), and readiness (SSH login + cloud-init done).
 */
export class Vm extends pulumi.ComponentResource {
  readonly address: pulumi.Output<string>;
  /** "ready", or the domain's state when the VM is not running (shut off by choice): then address is "". */
  readonly status: pulumi.Output<string>;
  readonly hostName: pulumi.Output<string>;
  readonly mac: string;
  readonly instanceId: string;
  readonly sshCommand: pulumi.Output<string>;
  /** The guest's SSH host key ("ssh-ed25519 AAAA..."), and the known_hosts line that pins it under the VM's name. */
  readonly hostKey: pulumi.Output<string>;
  readonly knownHosts: pulumi.Output<string>;
  /** The record of the last move (mode, from, to, duration, downtime, bytes, health, rollback), if any. */
  readonly lastMigration: pulumi.Output<unknown>;
  /** The last successful provisioning run (playbook hash, counts, seconds), when the VM has `provision`. */
  readonly provisioned: pulumi.Output<unknown>;

  constructor(name: string, args: VmArgs, opts?: pulumi.ComponentResourceOptions) {
    super("vm-infra:index:Vm", name, {}, opts);
    const { resolved: r, image, readiness } = args;
    const { vm, host } = r;
    const isoDir = args.isoDir ?? `.vm-infra/iso/${pulumi.getStack()}`;

    // the guest's SSH host key, made once for the VM's life; cloud-init installs it at first boot
    const key = new HostKey(`${name}-hostkey`, { vm: vm.name }, { parent: this });
    const docs = pulumi.all([key.publicKey, key.privateKey]).apply(([publicKey, privateKey]) => cloudInitDocs(vm, { publicKey, privateKey }));
    // hashes of documents that hold a random key say nothing about them: plain values (they name files and volumes)
    const hash = pulumi.unsecret(docs.apply((d) => d.hash));
    const seedHash = pulumi.unsecret(docs.apply((d) => d.seedHash));

    // the documents carry keys and maybe credentials: they reach the provider as one Pulumi secret each
    const iso = new SeedIso(`${name}-cidata`, {
      dir: isoDir,
      vm: vm.name,
      hash,
      userData: pulumi.secret(docs.apply((d) => d.userData)),
      metaData: pulumi.secret(docs.apply((d) => d.metaData)),
      networkConfig: pulumi.secret(docs.apply((d) => d.networkConfig)),
    }, { parent: this });

    const placement = new Placement(`${name}-placement`, {
      name: vm.name,
      hostName: host.name,
      uri: host.uri,
      pool: r.knownHosts[host.name].pool,
      ...r.domain,
      diskGiB: vm.diskGiB,
      // the name from config, not the base image's output: a replacement of the base image must never make the
      // engine consider replacing (deleting) the VM that stands on it; the ordering comes from dependsOn
      baseVolume: image.volume,
      // a data dependency on the built ISO: the path exists only once the ISO was renamed into place
      isoFile: iso.path,
      isoHash: seedHash,
      storage: vm.storage,
      migration: vm.migration,
      migrationUri: host.migrationUri,
      guestNetns: host.guestNetns,
      guestJump: host.guestJump,
      user: vm.user,
      privateKeyPath: readiness.privateKeyPath,
      hostKey: key.publicKey,
      staticAddress: r.staticIp,
      knownHosts: r.knownHosts,
      owner: { project: pulumi.getProject(), stack: pulumi.getStack(), resource: `${name}-placement` },
      // read by the policy pack only; absent when empty so that stacks made before them see no change
      ...(vm.tags.length ? { tags: vm.tags } : {}),
      ...(vm.group ? { group: vm.group } : {}),
      ...(vm.adopt ? { adopt: vm.adopt } : {}),
      ...(vm.drainedFrom ? { drainedFrom: vm.drainedFrom } : {}),
      ...(args.limits ? { limits: args.limits } : {}),
    }, {
      parent: this, dependsOn: [iso, args.baseImage, ...(args.after ?? [])],
      // the domain's name cannot exist twice on a host: a replacement (also `pulumi up --replace`, which never asks
      // the provider) removes the old VM first
      deleteBeforeReplace: true,
    });

    const ready = new Ready(`${name}-ready`, {
      name: vm.name,
      uri: host.uri,
      mac: vm.mac,
      user: vm.user,
      privateKeyPath: readiness.privateKeyPath,
      ...r.route,
      staticAddress: r.staticIp,
      timeoutSeconds: readiness.timeoutSeconds,
      hostKey: key.publicKey,
      hostKeyPrivate: pulumi.secret(key.privateKey),
      // a stopped VM (shut off by choice, or moved offline while stopped) is reported as such, not waited for
      powerState: placement.powerState,
      // a move, a new seed, a redefine, a restart or a re-creation (new UUID) means the guest must be checked again
      generation: pulumi.interpolate`${placement.hostName}/${placement.isoVolume}/${placement.uuid}/${placement.boots}/${vm.memoryMiB}/${vm.vcpus}`,
    }, { parent: this, dependsOn: [placement] });

    const p = args.provision;
    const provisioned = p && new Provision(`${name}-provision`, {
      name: vm.name, hostName: placement.hostName, vmId: placement.uuid, address: ready.address, status: ready.status, user: vm.user,
      privateKeyPath: readiness.privateKeyPath, hostKey: key.publicKey, ...r.route, playbook: p.playbook, playbookHash: p.playbookHash,
      vars: p.vars, secretVars: pulumi.secret(p.secretVars), tags: p.tags, timeoutSeconds: p.timeoutSeconds,
    }, { parent: this, dependsOn: [ready] });

    this.address = ready.address;
    this.status = ready.status;
    this.hostName = placement.hostName;
    this.mac = vm.mac;
    this.instanceId = instanceId(vm);
    const j = r.route.jump;
    // the jump host's own key and known_hosts come from the user's ssh config, as for any ProxyJump
    const prefix = r.route.netns ? `ip netns exec ${r.route.netns} ` : "";
    const via = j ? `-J ${j.user ? `${j.user}@` : ""}${j.host}${j.port ? `:${j.port}` : ""} ` : "";
    // HostKeyAlias: ssh checks the guest against the knownHosts line (add it to your known_hosts), whatever its address
    this.sshCommand = pulumi.interpolate`${prefix}ssh ${via}-o HostKeyAlias=${vm.name} -i ${readiness.privateKeyPath} ${vm.user}@${ready.address}`;
    this.hostKey = key.publicKey;
    this.knownHosts = pulumi.interpolate`${vm.name} ${key.publicKey}`;
    this.lastMigration = placement.lastMigration;
    this.provisioned = provisioned ? provisioned.result : pulumi.output(undefined);
    this.registerOutputs({ address: this.address, status: this.status, hostName: this.hostName, mac: this.mac, instanceId: this.instanceId, sshCommand: this.sshCommand,
      hostKey: this.hostKey, knownHosts: this.knownHosts,
      lastMigration: this.lastMigration, provisioned: this.provisioned });
  }
}
