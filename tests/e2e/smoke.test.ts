// The real engine runs this project's patterns: a @pulumi/command local.Command and a vm-infra dynamic provider
// (loaded through providers/shim.ts) that runs programs through host/runner.ts. preview, up, up (no changes), an
// in-place update, destroy.
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { initStack, outputs, previewSteps, pulumi, up, urnName } from "../support/pulumiCli";

jest.setTimeout(10 * 60_000);

const h = { dir: path.join(__dirname, "..", "smoke"), stack: `smoke-${process.pid}` };
const dir = mkdtempSync(path.join(tmpdir(), "vm-infra-smoke-"));
const sha = (s: string) => createHash("sha256").update(s).digest("hex");

afterAll(async () => {
  await pulumi(h, ["stack", "rm", "--yes", "--force"]).catch(() => undefined);
});

test("preview, up, up again, update, destroy on the real engine", async () => {
  await initStack(h, { dir, content: "first $(touch /tmp/pwned) 'quoted'" });

  const steps = await previewSteps(h);
  const planned = steps.filter((s) => s.op === "create").map((s) => urnName(s.urn)).sort();
  expect(planned).toEqual(["file", "stamp", "vm-infra-smoke-" + h.stack]);
  expect(existsSync(path.join(dir, "provider.txt"))).toBe(false); // preview touched nothing

  await up(h);
  expect(readFileSync(path.join(dir, "command.txt"), "utf8")).toBe("first $(touch /tmp/pwned) 'quoted'");
  expect(readFileSync(path.join(dir, "provider.txt"), "utf8")).toBe("first $(touch /tmp/pwned) 'quoted'");
  expect((await outputs(h)).fileSha256).toBe(sha("first $(touch /tmp/pwned) 'quoted'"));

  await up(h, ["--expect-no-changes"]);

  await pulumi(h, ["config", "set", "content", "--", "second"]);
  const steps2 = await previewSteps(h);
  // the provider updates in place; the command's trigger changed, so it is replaced (re-run)
  const ops = Object.fromEntries(steps2.filter((s) => s.op !== "same").map((s) => [urnName(s.urn), s.op]));
  expect(ops).toEqual({ file: "update", stamp: "replace" });
  await up(h);
  expect(readFileSync(path.join(dir, "provider.txt"), "utf8")).toBe("second");
  expect(readFileSync(path.join(dir, "command.txt"), "utf8")).toBe("second");
  expect((await outputs(h)).fileSha256).toBe(sha("second"));

  await pulumi(h, ["destroy", "--yes", "--skip-preview"]);
  expect(existsSync(path.join(dir, "provider.txt"))).toBe(false);
  expect(existsSync(path.join(dir, "command.txt"))).toBe(false);
});
