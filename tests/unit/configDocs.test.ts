// The README's option tables and Pulumi.yaml's config block are generated from config/schema.ts: they cannot drift.
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { withConfig, withTables } from "../../scripts/configDocs";

const root = path.join(__dirname, "..", "..");
test.each([["README.md", withTables], ["Pulumi.yaml", withConfig]] as const)("%s is what `npm run docs:config` writes from the schema", (file, f) => {
  const text = readFileSync(path.join(root, file), "utf8");
  expect(f(text)).toBe(text);
});
