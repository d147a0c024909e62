// Pure: placement inputs -> libvirt domain XML (through an XML library, so names and paths are escaped by it),
// and parsers for what virsh prints. No I/O.
import { XMLBuilder, XMLParser } from "fast-xml-parser";
import type { DomainSpec } from "../config/spec";

/** Who made a domain: written into its libvirt <metadata>, read before anything of that name is touched. */
export interface Owner {
  project: string;
  stack: string;
  /** The placement resource's name in that stack. */
  resource: string;
  /** Random per created placement: its volumes carry it in their names (volumes have no metadata of their own). */
  instance: string;
}

export const OWNER_NS = "https://github.com/vm-infra/xmlns/owner/1";

/**
 * Written into a domain's <metadata> (live and persistent) before vm-infra stops a running VM that it means to start
 * again (an offline move, a restart), and removed once it runs again: a run killed in between leaves the host saying
 * that the VM is off because of vm-infra, not by its owner's choice, and the next up starts it.
 */
export const STOP_NS = "https://github.com/vm-infra/xmlns/stop/1";
export interface StopMark {
  /** What stopped it: "the move hv-a -> hv-b", "the restart for memoryMiB". */
  by: string;
  at: string;
}
/** The phrase the state keeps (stoppedByMove) and messages print. Pure. */
export const stopText = (m: StopMark) => `${m.by} at ${m.at}`;

/** What the domain XML is built from: the VM's domain properties (config/spec.ts DomainSpec) and where its disks are. */
export interface DomainInputs extends DomainSpec {
  name: string;
  owner?: Owner;
  /** Set when vm-infra defines a VM that it stopped and is about to start (cleared once it runs). */
  stopMark?: StopMark;
  /** Keep the existing domain's UUID on redefine (libvirt refuses a same-name define with a new UUID). */
  uuid?: string;
  /** Absolute paths on the host (from `virsh vol-path`). */
  diskPath: string;
  isoPath: string;
}

const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: "@", format: true, suppressEmptyNode: true });

export function domainXml(d: DomainInputs): string {
  const os: Record<string, unknown> = { type: { "@arch": "x86_64", "@machine": "pc", "#text": "hvm" } };
  if (d.kernel) {
    os.kernel = d.kernel;
    os.initrd = d.initrd;
    if (d.cmdline) os.cmdline = d.cmdline;
  } else {
    os.boot = { "@dev": "hd" };
  }
  const doc = {
    domain: {
      "@type": d.domainType,
      name: d.name,
      ...(d.uuid ? { uuid: d.uuid } : {}),
      ...(d.owner || d.stopMark ? { metadata: { ...(d.owner ? ownerElement(d.owner) : {}), ...(d.stopMark ? stopElement(d.stopMark) : {}) } } : {}),
      memory: { "@unit": "MiB", "#text": String(d.memoryMiB) },
      currentMemory: { "@unit": "MiB", "#text": String(d.memoryMiB) },
      vcpu: { "@placement": "static", "#text": String(d.vcpus) },
      os,
      features: { acpi: "", apic: "" },
      // KVM: the host's CPU; TCG: QEMU's default model (host-passthrough needs KVM)
      ...(d.domainType === "kvm" ? { cpu: { "@mode": "host-model" } } : {}),
      on_poweroff: "destroy",
      on_reboot: "restart",
      on_crash: "destroy",
      devices: {
        disk: [
          {
            "@type": "file",
            "@device": "disk",
            driver: { "@name": "qemu", "@type": "qcow2", "@discard": "unmap" },
            source: { "@file": d.diskPath },
            target: { "@dev": "vda", "@bus": "virtio" },
          },
          {
            // the seed as a read-only virtio disk: cloud kernels ship no AHCI driver, so a SATA cdrom stays
            // invisible and cloud-init falls back to DataSourceNone
            "@type": "file",
            "@device": "disk",
            driver: { "@name": "qemu", "@type": "raw" },
            source: { "@file": d.isoPath },
            target: { "@dev": "vdb", "@bus": "virtio" },
            readonly: "",
          },
        ],
        interface: {
          "@type": d.bridge ? "bridge" : "network",
          mac: { "@address": d.mac },
          source: d.bridge ? { "@bridge": d.bridge } : { "@network": d.network },
          model: { "@type": "virtio" },
        },
        serial: { "@type": "pty", target: { "@port": "0" } },
        console: { "@type": "pty", target: { "@type": "serial", "@port": "0" } },
        channel: {
          "@type": "unix",
          target: { "@type": "virtio", "@name": "org.qemu.guest_agent.0" },
        },
        rng: { "@model": "virtio", backend: { "@model": "random", "#text": "/dev/urandom" } },
        memballoon: { "@model": "virtio" },
      },
    },
  };
  return builder.build(doc) as string;
}

function ownerElement(o: Owner): Record<string, unknown> {
  return { "vmi:owner": { "@xmlns:vmi": OWNER_NS, "@project": o.project, "@stack": o.stack, "@resource": o.resource, "@instance": o.instance } };
}

function stopElement(m: StopMark): Record<string, unknown> {
  return { "vmistop:stop": { "@xmlns:vmistop": STOP_NS, "@by": m.by, "@at": m.at } };
}

/** The stop mark alone, for `virsh metadata --uri STOP_NS --key vmistop --set`. */
export function stopMarkXml(m: StopMark): string {
  return (builder.build({ stop: { "@by": m.by, "@at": m.at } }) as string).trim();
}

/** The stop mark in a domain's XML, if vm-infra stopped it and has not started it since. */
export function parseStopMark(xml: string): StopMark | undefined {
  const md = parser.parse(xml).domain?.metadata;
  const m = Object.entries(md ?? {}).find(([k]) => k.endsWith(":stop"))?.[1];
  if (!m || typeof m !== "object") return undefined;
  const a = m as Record<string, string>;
  return typeof a["@by"] === "string" && typeof a["@at"] === "string" ? { by: a["@by"], at: a["@at"] } : undefined;
}

/** The owner element alone, for `virsh metadata --uri OWNER_NS --key vmi --set` (libvirt adds the namespace). */
export function ownerXml(o: Owner): string {
  return (builder.build({ owner: { "@project": o.project, "@stack": o.stack, "@resource": o.resource, "@instance": o.instance } }) as string).trim();
}

/** The owner recorded in a domain's XML, if vm-infra made it. */
export function parseOwner(xml: string): Owner | undefined {
  const md = parser.parse(xml).domain?.metadata;
  const o = md?.["vmi:owner"] ?? Object.entries(md ?? {}).find(([k]) => k.endsWith(":owner"))?.[1];
  if (!o || typeof o !== "object") return undefined;
  const a = o as Record<string, string>;
  return { project: a["@project"], stack: a["@stack"], resource: a["@resource"], instance: a["@instance"] };
}

/** The UUID in a domain's XML. */
export function parseUuid(xml: string): string | undefined {
  const u = parser.parse(xml).domain?.uuid;
  return typeof u === "string" ? u : undefined;
}

/**
 * `virsh domifaddr` table -> IPv4 addresses for a MAC, in the order printed. Further addresses of the same interface
 * are printed on continuation lines whose name and MAC columns are "-" (a guest with a stale lease shows two).
 */
export function parseDomifaddr(out: string, mac: string): string[] {
  const ips: string[] = [];
  let current: string | undefined;
  for (const line of out.split("\n")) {
    const cols = line.trim().split(/\s+/);
    // Name  MAC address  Protocol  Address
    if (cols.length < 4) continue;
    if (cols[1] !== "-") current = cols[1].toLowerCase();
    if (current === mac.toLowerCase() && cols[2] === "ipv4") {
      const ip = cols[3].split("/")[0];
      if (!ip.startsWith("127.")) ips.push(ip);
    }
  }
  return ips;
}

/** `virsh dominfo` / `domjobinfo` "Key: value" lines -> record. */
export function parseKeyValues(out: string): Record<string, string> {
  const r: Record<string, string> = {};
  for (const line of out.split("\n")) {
    const i = line.indexOf(":");
    if (i > 0) r[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return r;
}

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "@" });

export interface LiveDomain {
  memoryMiB: number;
  vcpus: number;
  mac?: string;
  diskPaths: string[];
}

/** The facts vm-infra compares from `virsh dumpxml`. */
export function parseDomainXml(xml: string): LiveDomain {
  const d = parser.parse(xml).domain;
  const unitMiB: Record<string, number> = { KiB: 1 / 1024, MiB: 1, GiB: 1024 };
  const mem = d.memory;
  const memoryMiB = Math.round(Number(mem["#text"] ?? mem) * (unitMiB[mem["@unit"] ?? "KiB"] ?? 1 / 1024));
  const vcpus = Number(d.vcpu?.["#text"] ?? d.vcpu);
  const iface = [d.devices?.interface].flat().filter(Boolean)[0];
  const disks = [d.devices?.disk].flat().filter(Boolean) as Array<Record<string, Record<string, string>>>;
  return {
    memoryMiB,
    vcpus,
    mac: iface?.mac?.["@address"],
    diskPaths: disks.map((x) => x.source?.["@file"]).filter((x): x is string => typeof x === "string"),
  };
}

/** `virsh vol-dumpxml` -> the volume's own path and its backing file's path (an overlay's base), if any. */
export function parseVolumeXml(xml: string): { path?: string; backingPath?: string } {
  const v = parser.parse(xml).volume;
  const p = v?.target?.path;
  const b = v?.backingStore?.path;
  return { path: typeof p === "string" ? p : undefined, backingPath: typeof b === "string" ? b : undefined };
}
