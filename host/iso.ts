// Builds a NoCloud seed ISO (volume label "cidata") through the runner: the documents are written as files into a
// private directory, the ISO tool gets argv only, and the result is renamed into place so no reader ever sees a
// half-written ISO. Like virt-manager, it uses whichever of xorriso and genisoimage is installed.
import { createHash } from "node:crypto";
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { CommandError, run, Runner } from "./runner";
import { withPrivateDir } from "./tempFiles";

export const ISO_TIMEOUT_MS = 60_000;

/** The seed's files, by the names cloud-init's NoCloud datasource reads. */
export type SeedFiles = Record<"user-data" | "meta-data" | "network-config", string>;

/**
 * argv for the ISO tool (pure): the same options for both tools, which share mkisofs's. No `--` (xorriso's mkisofs
 * emulation ends at it): every path is absolute, inside vm-infra's private temp directory, so none reads as an option.
 */
export function isoArgv(tool: "xorriso" | "genisoimage", out: string, files: string[]): [string, string[]] {
  if (![out, ...files].every((f) => path.isAbsolute(f))) throw new Error(`iso: paths must be absolute: ${[out, ...files].join(" ")}`);
  const opts = ["-quiet", "-output", out, "-volid", "cidata", "-joliet", "-rock", ...files];
  return tool === "xorriso" ? ["xorriso", ["-as", "mkisofs", ...opts]] : ["genisoimage", opts];
}

async function pickTool(runner: Runner): Promise<"xorriso" | "genisoimage"> {
  try {
    await runner("xorriso", ["-version"], { timeoutMs: 10_000 });
    return "xorriso";
  } catch (e) {
    if (e instanceof CommandError && e.exitCode === null && !e.timedOut) return "genisoimage"; // not installed
    throw e;
  }
}

/** Writes the ISO to `out` (mode 0600 in a 0700 directory: it carries the guest's private host key); returns its sha256. Secrets in the documents never reach an argv or a message. */
export async function buildSeedIso(files: SeedFiles, out: string, runner: Runner = run): Promise<string> {
  await mkdir(path.dirname(out), { recursive: true, mode: 0o700 });
  const tool = await pickTool(runner);
  return withPrivateDir(async (dir) => {
    const names = Object.keys(files) as (keyof SeedFiles)[];
    for (const n of names) await writeFile(path.join(dir, n), files[n], { mode: 0o600 });
    const tmp = path.join(dir, "seed.iso");
    const [file, args] = isoArgv(tool, tmp, names.map((n) => path.join(dir, n)));
    await runner(file, args, { timeoutMs: ISO_TIMEOUT_MS, secrets: Object.values(files) });
    await chmod(tmp, 0o600);
    const sum = await sha256File(tmp);
    await rename(tmp, out).catch(async () => { // another filesystem: copy, then rename within the target directory
      const next = `${out}.${process.pid}.tmp`;
      await writeFile(next, await readFile(tmp), { mode: 0o600 });
      await rename(next, out);
    });
    return sum;
  });
}

export async function sha256File(file: string): Promise<string> {
  return createHash("sha256").update(await readFile(file)).digest("hex");
}
