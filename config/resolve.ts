// The spec resolved into what each VM needs, decided here once: the pool its disks use on every host, which host
// uploads the base image it stands on, its static IP, and its libvirt domain's properties. index.ts only wires this,
// and components never decide. Pure.
import { DOMAIN_KEYS, ipOf, type DomainSpec, type HostSpec, type Spec, type VmSpec } from "./spec";
import { jumpHostOf, type JumpHost } from "./uri";

export const pick = <T, K extends keyof T>(o: T, keys: readonly K[]): Pick<T, K> =>
  Object.fromEntries(keys.map((k) => [k, o[k]])) as Pick<T, K>;

export interface ResolvedVm {
  vm: VmSpec;
  host: HostSpec;
  domain: DomainSpec;
  /**
   * Every configured host's URI and the pool this VM's disks use there (the host's own pool, or its shared pool); its
   * declared capacity, when it has one (the policy pack's host-capacity rule reads it).
   */
  knownHosts: Record<string, KnownHost>;
  /** The static address without its prefix length, when the VM has one. */
  staticIp?: string;
  /** The base image it stands on: one per host pool, a shared pool's uploaded through the first host (by name) sharing it. */
  image: { key: string; host: HostSpec };
  /** How SSH reaches this VM's guest on its configured host. */
  route: GuestRoute;
}

/** How vm-infra's SSH (readiness, health checks, provisioning) reaches a host's guests: from its namespace, through its SSH, or directly. */
export interface GuestRoute {
  netns?: string;
  jump?: JumpHost;
}

export function guestRoute(h: Pick<HostSpec, "uri" | "guestNetns" | "guestJump">): GuestRoute {
  if (h.guestNetns !== undefined) return { netns: h.guestNetns };
  if (!h.guestJump) return {};
  const j = jumpHostOf(h.uri);
  if (typeof j === "string") throw new Error(`guestJump: ${j}`); // parseSpec refused it already
  return { jump: j };
}

export interface KnownHost { uri: string; pool: string; capacity?: { memoryMiB: number; vcpus: number } }

export function resolve(spec: Spec): ResolvedVm[] {
  return spec.vms.map((vm) => {
    const host = spec.hosts[vm.host];
    const poolOn = (h: HostSpec) => (vm.storage === "shared" ? h.sharedPool ?? h.pool : h.pool);
    const shared = vm.storage === "shared" ? host.sharedPool : undefined;
    const uploader = shared ? Object.values(spec.hosts).filter((h) => h.sharedPool === shared).map((h) => h.name).sort()[0] : host.name;
    return {
      vm,
      host,
      domain: { ...pick(vm, DOMAIN_KEYS.vm), ...pick(host, DOMAIN_KEYS.host), ...pick(spec.image, DOMAIN_KEYS.image) },
      knownHosts: Object.fromEntries(Object.values(spec.hosts).map((h) => [h.name, { uri: h.uri, pool: poolOn(h), ...(h.capacity ? { capacity: h.capacity } : {}) }])),
      ...(vm.address ? { staticIp: ipOf(vm.address.cidr) } : {}),
      image: { key: shared ? `shared-${shared}` : host.name, host: { ...spec.hosts[uploader], pool: poolOn(host) } },
      route: guestRoute(host),
    };
  });
}
