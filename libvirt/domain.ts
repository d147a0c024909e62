// Pure: placement inputs -> libvirt domain XML (through an XML library, so names and paths are escaped by it),
// and parsers for what virsh prints. No I/O.
import { XMLBuilder, XMLParser } from "fast-xml-parser";
import type { DomainType } from "../config/spec";

export interface DomainInputs {
  name: string;
  /** Keep the existing domain's UUID on redefine (libvirt refuses a same-name define with a new UUID). */
  uuid?: string;
  domainType: DomainType;
  vcpus: number;
  memoryMiB: number;
  /** Absolute paths on the host (from `virsh vol-path`). */
  diskPath: string;
  isoPath: string;
  network: string;
  /** A host bridge instead of the libvirt network. */
  bridge?: string;
  mac: string;
  kernel?: string;
  initrd?: string;
  cmdline?: string;
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
