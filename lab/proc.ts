// The lab's daemons (libvirtd, sshd) by their PID files.
import { existsSync, readFileSync } from "node:fs";

/** The PID in `pidFile` when that process is alive (not gone, not a zombie), else undefined. */
export function pidAlive(pidFile: string): number | undefined {
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  try {
    // a killed daemon can linger as a zombie until its parent reaps it: signal 0 still reaches it, it serves nothing
    const state = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ").pop()?.[0];
    return state === "Z" || state === "X" ? undefined : pid;
  } catch {
    return undefined;
  }
}
