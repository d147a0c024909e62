// Private scratch space for values handed to programs as files (XML, keys, volumes in transit): a fresh 0700
// directory per use, removed afterwards whatever happens.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";

export async function withPrivateDir<T>(f: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), "vm-infra-"));
  try {
    return await f(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Writes `content` to a 0600 file named `name` in a private directory and passes its path to `f`. */
export function withPrivateFile<T>(content: string | Buffer, f: (file: string) => Promise<T>, name = "data"): Promise<T> {
  return withPrivateDir(async (dir) => {
    const file = path.join(dir, name);
    await writeFile(file, content, { mode: 0o600 });
    return f(file);
  });
}
