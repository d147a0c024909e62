/** Two projects: `unit` (pure code, mocks, fake runner; seconds) and `e2e` (real Pulumi engine and the lab). */
const base = { preset: "ts-jest", testEnvironment: "node", roots: ["<rootDir>/tests"] };
module.exports = {
  projects: [
    { ...base, displayName: "unit", testMatch: ["<rootDir>/tests/unit/**/*.test.ts"] },
    // rawVirsh (a VM by hand with virsh: the lab's own proof, and the benchmarks' floor) runs with `npm run test:lab`;
    // every other e2e suite proves the lab too, and CI's time budget keeps it out of the default run
    { ...base, displayName: "e2e", testMatch: ["<rootDir>/tests/e2e/**/*.test.ts"],
      testPathIgnorePatterns: process.env.VM_INFRA_LAB_PROOF ? [] : ["/tests/e2e/rawVirsh"] },
  ],
};
