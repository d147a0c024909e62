// The README's option tables and Pulumi.yaml's config block are generated from config/schema.ts: they cannot drift.
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { withConfig, withTables } from "../../scripts/configDocs";

const root = path.join(__dirname, "..", "..");
test.each([["README.md", withTables], ["Pulumi.yaml", withConfig]] as const)("%s is what `npm run docs:config` writes from the schema", (file, f) => {
  const text = readFileSync(path.join(root, file), "utf8");
  expect(f(text)).toBe(text);
});

// the engine refuses a stack that lacks a declared key without a default ("missing configuration value"): every key a
// stack may leave out has one, so adding a key never breaks existing stacks (vm-infra:migrationLimits once did)
test("every config key but the four a stack must set has a default in Pulumi.yaml", async () => {
  const { pulumiConfig } = await import("../../config/docs");
  const keys = Object.entries(pulumiConfig()).filter(([, v]) => (v as { default?: unknown }).default === undefined).map(([k]) => k);
  expect(keys.sort()).toEqual(["vm-infra:hosts", "vm-infra:image", "vm-infra:readiness", "vm-infra:vms"]);
});
