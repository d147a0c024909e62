// The ISO build script is constant; values reach it only through the environment. Run it for real with hostile
// values and check that they end up as bytes in the ISO and nowhere else (no command ran, no file escaped its dir).
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { run } from "../../host/runner";
import { BUILD_ISO_SCRIPT } from "../../cloud-init/buildIso";

const dir = mkdtempSync(path.join(tmpdir(), "vmi-iso-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("hostile user-data, meta-data and names stay data", async () => {
  const canary = path.join(dir, "pwned");
  const hostile = `#cloud-config\n# $(touch ${canary}) \`touch ${canary}\` '; touch ${canary}; '\n"; touch ${canary}; "\n\\\n%s%n\n`;
  const r = await run("/bin/sh", ["-c", BUILD_ISO_SCRIPT], {
    timeoutMs: 60_000,
    env: { VMI_ISO_DIR: path.join(dir, "out"), VMI_ISO_NAME: "seed.iso", VMI_USER_DATA: hostile, VMI_META_DATA: `instance-id: $(touch ${canary})\n`, VMI_NETWORK_CONFIG: "version: 2\n" },
  });
  expect(r.stdout).toBe(path.join(dir, "out", "seed.iso"));
  expect(existsSync(canary)).toBe(false);
  expect(readdirSync(path.join(dir, "out"))).toEqual(["seed.iso"]); // no temp file left, nothing else written
  expect(statSync(r.stdout).mode & 0o777).toBe(0o640);
  // the exact bytes are in the ISO (xorriso/genisoimage store files uncompressed)
  const { stdout } = await run("isoinfo", ["-i", r.stdout, "-R", "-x", "/user-data"], { timeoutMs: 30_000 }).catch(async () =>
    run("xorriso", ["-osirrox", "on", "-indev", r.stdout, "-extract", "/user-data", "/dev/stdout"], { timeoutMs: 30_000 }));
  expect(stdout).toContain(hostile);
});
