// Pure: what a move looks like (the plan line preview prints), the exact `virsh migrate` argv for each mode, and the
// parsers for the job statistics virsh prints. No I/O; providers/migrate.ts runs these.
import type { MigrationSpec } from "../config/spec";
import { parseKeyValues } from "./domain";

export type StorageMove = "shared" | "copy";

export interface MoveShape {
  name: string;
  fromHost: string;
  toHost: string;
  storage: StorageMove;
  migration: MigrationSpec;
  memoryMiB: number;
  diskGiB: number;
}

/** One line for preview and the log: mode, from -> to, memory and disk to move. Uses only inputs (no host call). */
export function planLine(m: MoveShape): string {
  const mode = m.migration.mode === "live" && m.migration.postcopy ? "live (post-copy)" : m.migration.mode;
  const disk = m.storage === "shared" ? "disk stays on shared storage" : `overlay copied (at most ${m.diskGiB} GiB)`;
  const memory = m.migration.mode === "offline" ? "no memory (shut down first)" : `${m.memoryMiB} MiB memory`;
  return `${m.name}: migrate ${mode} ${m.fromHost} -> ${m.toHost}: ${memory}, ${disk}`;
}

/** Completion deadline: completionSecondsPerGiB per GiB of RAM, plus the disk's GiB when it is copied. */
export function completionTimeoutMs(m: MoveShape): number {
  const gib = m.memoryMiB / 1024 + (m.storage === "copy" ? m.diskGiB : 0);
  return Math.ceil(Math.max(1, gib) * m.migration.completionSecondsPerGiB * 1000);
}

export interface MigrateCall {
  name: string;
  /** Where the source connects: the destination's own URI (direct) or its migration URI (peer-to-peer). */
  destUri: string;
  p2p: boolean;
  storage: StorageMove;
  migration: MigrationSpec;
  /** Domain XML for the destination when its disk paths differ from the source's. */
  xmlFile?: string;
  /** Disk targets to copy (copy storage); read-only seeds are never copied, they are placed beforehand. */
  copyDisks?: string[];
}

/** `virsh migrate` arguments after `-c <source>` (live and paused modes; offline moves do not use virsh migrate). */
export function migrateArgs(c: MigrateCall): string[] {
  const m = c.migration;
  const a = ["migrate", "--persistent", "--undefinesource", "--abort-on-error"];
  if (m.mode === "live") a.push("--live");
  if (c.p2p) a.push("--p2p");
  // libvirt cannot tell storage that is shared from a directory that merely has the same path; vm-infra has
  // checked that the target sees the very same volume before it gets here
  if (c.storage === "shared") a.push("--unsafe");
  else a.push("--copy-storage-inc", "--migrate-disks", (c.copyDisks ?? ["vda"]).join(","));
  if (m.mode === "live" && m.autoConverge) a.push("--auto-converge");
  if (m.mode === "live" && m.postcopy) a.push("--postcopy", "--postcopy-after-precopy");
  if (m.bandwidthMiBs > 0) a.push("--bandwidth", String(m.bandwidthMiBs));
  if (c.xmlFile) a.push("--xml", c.xmlFile, "--persistent-xml", c.xmlFile);
  a.push("--", c.name, c.destUri);
  return a;
}

export interface JobInfo {
  active: boolean;
  elapsedMs?: number;
  processedBytes?: number;
  remainingBytes?: number;
  totalBytes?: number;
  downtimeMs?: number;
  fileRemainingBytes?: number;
}

const UNITS: Record<string, number> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 };

/** "123.456 MiB" -> bytes; "1234 ms" -> 1234. */
export function parseQuantity(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const m = /^([\d.]+)\s*([A-Za-z]*)/.exec(s.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  if (m[2] === "ms" || m[2] === "") return n;
  const u = UNITS[m[2]];
  return u === undefined ? undefined : Math.round(n * u);
}

/** `virsh domjobinfo` (or `--completed`) -> the numbers vm-infra reports and acts on. */
export function parseJobInfo(out: string): JobInfo {
  const kv = parseKeyValues(out);
  const type = kv["Job type"] ?? "None";
  return {
    // a job of any other type than None is still held by libvirt: running (Bounded, Unbounded), or cancelled or
    // failed and still winding down (a p2p migration whose network went away stays "Cancelled" for minutes); a
    // `--completed` report says Completed. Found by the fault matrix: a Cancelled job was taken for none
    active: type !== "None" && type !== "Completed",
    elapsedMs: parseQuantity(kv["Time elapsed"]),
    processedBytes: parseQuantity(kv["Data processed"]),
    remainingBytes: parseQuantity(kv["Data remaining"]),
    totalBytes: parseQuantity(kv["Data total"]),
    downtimeMs: parseQuantity(kv["Total downtime"]),
    fileRemainingBytes: parseQuantity(kv["File remaining"]),
  };
}

/** Rewrites disk source paths in a domain XML (exact attribute values only). Paths come from `virsh vol-path`. */
export function rewriteDiskPaths(xml: string, map: Record<string, string>): string {
  let out = xml;
  for (const [from, to] of Object.entries(map)) {
    if (from === to) continue;
    for (const q of ["'", '"']) out = out.split(`file=${q}${xmlAttr(from)}${q}`).join(`file=${q}${xmlAttr(to)}${q}`);
  }
  return out;
}

const xmlAttr = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/'/g, "&apos;").replace(/"/g, "&quot;");

/** Human-readable bytes for progress lines. */
export function mib(bytes: number | undefined): string {
  return bytes === undefined ? "?" : `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}
