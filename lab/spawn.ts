// Interactive passthrough for `lab exec` (stdio inherited, so ssh can use the terminal). argv only.
// eslint-disable-next-line no-restricted-imports
import { spawnSync as nodeSpawnSync } from "node:child_process";

export function spawnSync(file: string, args: string[]): number {
  const r = nodeSpawnSync(file, args, { stdio: "inherit" });
  return r.status ?? 1;
}
