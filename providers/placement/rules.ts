// The placement unit's rules, pure: what it takes and records, which changes replace, restart, move or are only
// recorded, how its volumes are named, and the move request derived from two states. No I/O (check and diff run in
// preview).
import * as pulumi from "@pulumi/pulumi";
import { randomBytes } from "node:crypto";
import { DOMAIN_SPEC_KEYS, type DomainSpec, type HostSpec, type MigrationLimits, type VmSpec } from "../../config/spec";
import { pick, type KnownHost } from "../../config/resolve";
import { Owner } from "../../libvirt/domain";
import { Leftover, MigrationRecord, MoveRequest } from "../migration/types";

/**
 * What the placement unit takes: the VM's domain properties and settings as config/ declares them (picked, never
 * re-declared), plus what the component wires in (the ISO it built, the resolved pool, the hosts refresh asks).
 */
export interface PlacementInputs extends DomainSpec, Pick<VmSpec, "name" | "diskGiB" | "storage" | "migration" | "user" | "adopt" | "group">,
  Pick<HostSpec, "uri" | "pool" | "migrationUri" | "guestNetns" | "guestJump"> {
  hostName: string;
  baseVolume: string;
  /** Local ISO file built by the seed ISO resource (named by the documents' whole hash). */
  isoFile: string;
  /** The documents' hash without the host key (cloud-init/documents.ts seedHash): a new one restarts the VM. */
  isoHash: string;
  /** The guest login used by post-move health checks, and the guest's pinned SSH host key. */
  privateKeyPath: string;
  hostKey?: string;
  staticAddress?: string;
  /** Every configured host (name -> uri and the pool this VM would use there): where refresh looks for the VM. */
  knownHosts: Record<string, KnownHost>;
  /** The VM's tags, when it has any (read by the policy pack only). */
  tags?: string[];
  /**
   * Set by check, never by the program: the host a VM leaves in this update. Policies see a resource's new inputs only;
   * this is how the policy pack tells a move from a placement that stays.
   */
  moveFrom?: string;
  /** Project, stack and resource name, written into the domain's metadata. */
  owner?: Omit<Owner, "instance">;
  /** The host the VM is declared on, when that host is draining and the VM runs elsewhere because of it. */
  drainedFrom?: string;
  /** Moves at once (vm-infra:migrationLimits), when the stack sets other than the defaults. */
  limits?: MigrationLimits;
}

export type { Leftover };

export interface PlacementOutputs extends PlacementInputs {
  overlayVolume: string;
  isoVolume: string;
  diskPath: string;
  isoPath: string;
  uuid?: string;
  /** Random per created placement, in the names of its volumes and in the domain's owner record. */
  instance?: string;
  /** The domain's state as last seen (running, paused, shut off): readiness reports a stopped VM instead of waiting. */
  powerState?: string;
  /** Counts the placement's (re)starts of the guest: readiness checks the guest again whenever it changes. */
  boots?: number;
  /** Parts that refresh found gone (domain, overlay, iso): the next up recreates them where no data is lost. */
  missing?: string[];
  lastMigration?: MigrationRecord;
  leftovers?: Leftover[];
  /**
   * A move that failed after shutting the running VM down, and could not start it again ("hv-a -> hv-b at <time>"):
   * the next up starts it where it is (or moves it and starts it there). Refresh drops it once the VM is found running.
   */
  stoppedByMove?: string;
}

/** Changing these means a different disk or a different identity: replacement (shown as such in preview). */
export const REPLACE_KEYS = ["name", "pool", "baseVolume", "diskGiB"] as const;
/** Changing these redefines the domain in place: graceful shutdown, define, start; the disk stays. */
export const RESTART_KEYS = [...DOMAIN_SPEC_KEYS, "isoHash"] as const;
/**
 * A host change is a migration: one update, never a replacement. A host is its name in the config: a new `uri` for the
 * same host name is a new way to reach the same hypervisor (another transport, key or known_hosts), checked by update.
 */
export const MOVE_KEYS = ["hostName"] as const;
/** Recorded only: how the next move will run, how health checks log in, where refresh looks. */
export const SETTING_KEYS = ["uri", "isoFile", "storage", "migration", "migrationUri", "guestNetns", "guestJump", "user", "privateKeyPath", "hostKey", "staticAddress", "knownHosts", "owner", "adopt", "tags", "group", "drainedFrom", "limits"] as const;

/**
 * Volume names carry the placement's instance (random at create): a replacement, another stack or a VM of the same
 * name made by hand can never own a volume of that name, so delete removes only what this placement made. Placements
 * created before instances existed keep their recorded names.
 */
export const overlayName = (name: string, instance?: string) => (instance ? `${name}-${instance}.qcow2` : `${name}.qcow2`);
export const isoVolumeName = (name: string, hash: string, instance?: string) =>
  instance ? `${name}-${instance}-cidata-${hash.slice(0, 12)}.iso` : `${name}-cidata-${hash.slice(0, 16)}.iso`;
/**
 * Volumes in a pool named as this VM's placements name theirs (`NAME-<instance>.qcow2`, `NAME-<instance>-cidata-*.iso`)
 * other than `own`: what a create killed before it was recorded left, or, in a shared pool, another host's VM of that name.
 */
export function strayVolumes(name: string, volumes: string[], own: string[]): string[] {
  const mine = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}-[0-9a-f]{8}(\\.qcow2|-cidata-[0-9a-f]{12}\\.iso)$`);
  return volumes.filter((v) => mine.test(v) && !own.includes(v)).sort();
}

/** Where a new placement's instance comes from; unit tests swap in a fixed one (never production code). */
export const instances = { next: (): string => randomBytes(4).toString("hex") };

export const moves = (olds: Partial<PlacementInputs>, news: PlacementInputs) => MOVE_KEYS.some((k) => olds[k] !== news[k]);

export function placementDiff(olds: Partial<PlacementOutputs>, news: PlacementInputs): pulumi.dynamic.DiffResult {
  const changed = (k: keyof PlacementInputs) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]);
  // a move may change the pool's name along with the host; on one host, a new pool is a new disk
  const replaces = REPLACE_KEYS.filter(changed).filter((k) => !(k === "pool" && moves(olds, news)));
  const updates = [...RESTART_KEYS, ...MOVE_KEYS, ...SETTING_KEYS].filter(changed);
  return {
    changes: replaces.length + updates.length > 0 || (olds.leftovers?.length ?? 0) > 0 || (olds.missing?.length ?? 0) > 0 || !!olds.stoppedByMove,
    replaces: [...replaces],
    deleteBeforeReplace: true, // the same domain name cannot exist twice on a host
    stables: ["name"],
  };
}

/**
 * A move carries the running domain as it is; a changed definition needs a restart. Both in one update would leave
 * the state unable to say where the VM is if the second half failed, so it is refused before anything runs.
 */
export function checkMove(olds: Partial<PlacementInputs>, news: PlacementInputs): pulumi.dynamic.CheckFailure[] {
  if (olds.hostName === undefined || !moves(olds, news)) return [];
  const also = RESTART_KEYS.filter((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]));
  return also.length === 0 ? [] : [{
    property: "hostName",
    reason: `${news.name}: moving to ${news.hostName} and changing ${also.join(", ")} in one update is refused; move first (change only host), then change the rest`,
  }];
}

/**
 * A drain moved this VM off the host it is declared on; the mark is gone, so the config names that host again. A
 * drained VM is not moved back by itself (maintenance ended is not a reason to move running VMs twice; the config
 * must say where it runs): refused, with what to write.
 */
export function checkUndrain(olds: Partial<PlacementInputs>, news: PlacementInputs): pulumi.dynamic.CheckFailure[] {
  if (!olds.drainedFrom || news.drainedFrom || olds.hostName === undefined || news.hostName !== olds.drainedFrom || olds.hostName === news.hostName) return [];
  return [{
    property: "hostName",
    reason: `${news.name}: runs on ${olds.hostName}, where the drain of ${olds.drainedFrom} moved it; hosts.${olds.drainedFrom}.drain is no longer set, ` +
      `but vm-infra does not move drained VMs back by itself. Set ${news.name}'s host to ${olds.hostName} (nothing moves); to move it back, ` +
      `set it to ${olds.drainedFrom} in a later update`,
  }];
}

/** Check's inputs: the program's, plus the host this update moves the VM from (moveFrom), for the policy pack. */
export function checkedInputs(olds: Partial<PlacementInputs>, news: PlacementInputs): PlacementInputs {
  const { moveFrom: _never, ...inputs } = news;
  return olds.hostName !== undefined && moves(olds, inputs) ? { ...inputs, moveFrom: olds.hostName } : inputs;
}

/** The names of a placement's volumes: as recorded (older states), else from its instance. */
export const names = (p: { name: string; isoHash: string; instance?: string; overlayVolume?: string }) => ({
  overlay: p.overlayVolume ?? overlayName(p.name, p.instance),
  iso: isoVolumeName(p.name, p.isoHash, p.instance),
});

export const ownerOf = (i: PlacementInputs, instance?: string): Owner | undefined =>
  i.owner && instance ? { ...i.owner, instance } : undefined;

export function outputsOf(i: PlacementInputs, paths: { diskPath: string; isoPath: string }, extra: Partial<PlacementOutputs> = {}): PlacementOutputs {
  const instance = extra.instance;
  return plain({ ...i, overlayVolume: overlayName(i.name, instance), isoVolume: isoVolumeName(i.name, i.isoHash, instance), ...paths,
    powerState: "running", missing: [], ...extra });
}

/** What a provider returns must be plain data: an `undefined` anywhere fails the engine's struct encoding. */
export const plain = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

export function moveRequest(olds: PlacementOutputs, news: PlacementInputs): MoveRequest {
  return {
    name: olds.name,
    uuid: olds.uuid,
    from: { hostName: olds.hostName, uri: olds.uri, migrationUri: olds.migrationUri, pool: olds.pool, guestNetns: olds.guestNetns, guestJump: olds.guestJump },
    to: { hostName: news.hostName, uri: news.uri, migrationUri: news.migrationUri, pool: news.pool, guestNetns: news.guestNetns, guestJump: news.guestJump },
    storage: news.storage === "shared" ? "shared" : "copy",
    migration: news.migration,
    // the running domain is the old definition: it moves as it is, and a changed definition is applied afterwards
    ...pick(olds, DOMAIN_SPEC_KEYS), diskGiB: olds.diskGiB, baseVolume: olds.baseVolume,
    overlayVolume: olds.overlayVolume ?? overlayName(olds.name), isoVolume: olds.isoVolume,
    guest: { user: news.user, privateKeyPath: news.privateKeyPath, staticAddress: news.staticAddress, hostKey: news.hostKey },
    startStopped: !!olds.stoppedByMove,
  };
}

