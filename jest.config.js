/** Two projects: `unit` (pure code, mocks, fake runner; seconds) and `e2e` (real Pulumi engine and the lab). */
const base = { preset: "ts-jest", testEnvironment: "node", roots: ["<rootDir>/tests"] };
module.exports = {
  projects: [
    { ...base, displayName: "unit", testMatch: ["<rootDir>/tests/unit/**/*.test.ts"] },
    { ...base, displayName: "e2e", testMatch: ["<rootDir>/tests/e2e/**/*.test.ts"] },
  ],
};
