// The real engine runs this project's patterns: a vm-infra dynamic provider (loaded through providers/shim.ts) that
// runs programs through host/runner.ts: preview, up, up (no changes), the upgrade from the generic dynamic type to a
// type token of its own (no replacement), an in-place update, destroy.
import { existsSync, mkdtempSync, readFileSync, statSync } from "node:fs";
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
  // first as stacks were made before type tokens: the generic dynamic type
  await initStack(h, { dir, content: "first $(touch /tmp/pwned) 'quoted'", typed: "false" });

  const steps = await previewSteps(h);
  const planned = steps.filter((s) => s.op === "create").map((s) => `${urnName(s.urn)} ${s.urn.split("::")[2]}`).sort();
  expect(planned).toEqual(["file pulumi-nodejs:dynamic:Resource", `vm-infra-smoke-${h.stack} pulumi:pulumi:Stack`]);
  expect(existsSync(path.join(dir, "provider.txt"))).toBe(false); // preview touched nothing

  await up(h);
  const file = path.join(dir, "provider.txt");
  expect(readFileSync(file, "utf8")).toBe("first $(touch /tmp/pwned) 'quoted'");
  expect(existsSync("/tmp/pwned")).toBe(false);
  expect((await outputs(h)).fileSha256).toBe(sha("first $(touch /tmp/pwned) 'quoted'"));
  await up(h, ["--expect-no-changes"]);

  // the type token of its own, with the alias: the resource is renamed in the state, nothing is replaced or rewritten
  const written = statSync(file).mtimeMs;
  await pulumi(h, ["config", "set", "typed", "--", "true"]);
  const upgrade = await previewSteps(h);
  expect(upgrade.filter((s) => s.op !== "same").map((s) => s.op)).toEqual([]); // (unchanged steps are not listed at all)
  await up(h, ["--expect-no-changes"]);
  expect(statSync(file).mtimeMs).toBe(written);
  const { stdout } = await pulumi(h, ["stack", "export"]);
  expect((JSON.parse(stdout).deployment.resources as { urn: string }[]).map((r) => r.urn.split("::")[2]).sort())
    .toEqual(["pulumi-nodejs:dynamic/vm-infra:SmokeFile", "pulumi:providers:pulumi-nodejs", "pulumi:pulumi:Stack"]);

  await pulumi(h, ["config", "set", "content", "--", "second"]);
  const steps2 = await previewSteps(h);
  const ops = Object.fromEntries(steps2.filter((s) => s.op !== "same").map((s) => [urnName(s.urn), s.op]));
  expect(ops).toEqual({ file: "update" }); // the provider updates in place
  await up(h);
  expect(readFileSync(file, "utf8")).toBe("second");
  expect((await outputs(h)).fileSha256).toBe(sha("second"));

  await pulumi(h, ["destroy", "--yes", "--skip-preview"]);
  expect(existsSync(file)).toBe(false);
});
