// Local files vm-infra reads to decide what changed: a directory's content as one hash.
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import * as path from "node:path";

/** What never counts as content: byte-code and retry files tools leave beside the sources. */
const IGNORED = (name: string) => name === "__pycache__" || name.endsWith(".pyc") || name.endsWith(".retry");

/** sha256 over every file under `dir` (relative path and bytes, in sorted order): any edit, addition or removal changes it. */
export async function hashTree(dir: string): Promise<string> {
  const h = createHash("sha256");
  const walk = async (rel: string): Promise<void> => {
    const entries = (await readdir(path.join(dir, rel), { withFileTypes: true })).filter((e) => !IGNORED(e.name)).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      const r = path.join(rel, e.name);
      if (e.isDirectory()) await walk(r);
      else if (e.isFile()) {
        const bytes = await readFile(path.join(dir, r));
        h.update(`${r}\0${bytes.length}\0`).update(bytes);
      }
    }
  };
  await walk("");
  return h.digest("hex");
}
