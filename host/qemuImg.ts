// What `qemu-img info` says a local file is: vm-infra uploads only files that are disk images (a config naming any
// readable file, /etc/shadow say, with a matching sha256 would otherwise upload it to every host).
import { stat } from "node:fs/promises";
import { run, Runner } from "./runner";

/** The image format of a regular file ("qcow2", "raw"...), or why it is not a disk image vm-infra will upload. */
export async function localImageFormat(file: string, runner: Runner = run): Promise<{ format?: string; problem?: string }> {
  const st = await stat(file).catch(() => undefined);
  if (!st) return { problem: `${file} does not exist` };
  if (!st.isFile()) return { problem: `${file} is not a regular file` };
  try {
    const r = await runner("qemu-img", ["info", "--output=json", "-U", "--", file], { timeoutMs: 30_000 });
    const format = (JSON.parse(r.stdout) as { format?: string }).format;
    if (format !== "qcow2") return { problem: `${file} is ${format ?? "not a disk image"} to qemu-img, not a qcow2 image` };
    return { format };
  } catch (e) {
    return { problem: `qemu-img cannot read ${file}: ${e instanceof Error ? e.message.slice(-200) : e}` };
  }
}
