/* global process, module, require, __dirname */
// The pack's entry point as CrossGuard runs it (package.json main). @pulumi/policy reads the pack's version from
// package.json in the working directory, which the Node language host sets to the project's main directory (dist/):
// so this directory first. The pack itself is policy/pack.ts, compiled by `npm run build`.
process.chdir(__dirname);
// eslint-disable-next-line @typescript-eslint/no-require-imports
module.exports = require("../dist/policy/pack.js");
