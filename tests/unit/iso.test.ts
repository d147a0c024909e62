// The seed ISO builder, run for real: hostile documents end up as bytes in the ISO and nowhere else (no command ran,
// no file escaped), the documents never reach an argv, the file is 0600 and appears only complete.
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { buildSeedIso, isoArgv, sha256File } from "../../host/iso";
import { Runner, run } from "../../host/runner";

const dir = mkdtempSync(path.join(tmpdir(), "vmi-iso-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("argv: the same mkisofs options for both tools; relative paths are refused", () => {
  expect(isoArgv("xorriso", "/t/seed.iso", ["/t/user-data", "/t/meta-data"])).toEqual(["xorriso",
    ["-as", "mkisofs", "-quiet", "-output", "/t/seed.iso", "-volid", "cidata", "-joliet", "-rock", "/t/user-data", "/t/meta-data"]]);
  expect(isoArgv("genisoimage", "/t/seed.iso", ["/t/user-data"])).toEqual(["genisoimage",
    ["-quiet", "-output", "/t/seed.iso", "-volid", "cidata", "-joliet", "-rock", "/t/user-data"]]);
  expect(() => isoArgv("xorriso", "seed.iso", ["-help"])).toThrow("iso: paths must be absolute: seed.iso -help");
});

test("hostile user-data and meta-data stay data; no document reaches an argv", async () => {
  const canary = path.join(dir, "pwned");
  const hostile = `#cloud-config\n# $(touch ${canary}) \`touch ${canary}\` '; touch ${canary}; '\n"; touch ${canary}; "\n\\\n%s%n\n-help\n`;
  const seen: string[][] = [];
  const recording: Runner = (file, args, opts) => {
    seen.push([file, ...args]);
    return run(file, args, opts);
  };
  const out = path.join(dir, "out", "seed.iso");
  const sum = await buildSeedIso({ "user-data": hostile, "meta-data": `instance-id: $(touch ${canary})\n`, "network-config": "version: 2\n" }, out, recording);
  expect(existsSync(canary)).toBe(false);
  expect(readdirSync(path.join(dir, "out"))).toEqual(["seed.iso"]); // nothing else written beside it
  expect(statSync(out).mode & 0o777).toBe(0o600);
  expect(sum).toBe(await sha256File(out));
  expect(seen.flat().some((a) => a.includes("touch"))).toBe(false);
  const { stdout } = await run("xorriso", ["-osirrox", "on", "-indev", out, "-extract", "/user-data", path.join(dir, "ud")], { timeoutMs: 30_000 })
    .then(() => run("cat", [path.join(dir, "ud")], { timeoutMs: 5000 }));
  expect(stdout).toBe(hostile);
  const label = await run("xorriso", ["-indev", out, "-pvd_info"], { timeoutMs: 30_000 });
  expect(label.stdout + label.stderr).toMatch(/Volume Id\s*:\s*cidata/);
});
