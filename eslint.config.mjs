import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "jest.config.js"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // every external program goes through host/runner.ts with an argv array
      "no-restricted-imports": ["error", { paths: [
        { name: "child_process", message: "run programs through host/runner.ts" },
        { name: "node:child_process", message: "run programs through host/runner.ts" },
      ] }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", ignoreRestSiblings: true }],
    },
  },
  { files: ["host/runner.ts"], rules: { "no-restricted-imports": "off" } },
);
