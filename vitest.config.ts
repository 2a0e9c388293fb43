import { defineConfig } from "vitest/config";

// Two projects: `unit` (plumbing, fakes allowed, no target) and `conformance` (real Vault and
// real Kubernetes; one target per run, started by the globalSetup and shared through provide).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["lib/**/*.test.ts"],
          testTimeout: 30_000,
        },
      },
      {
        // The harness's own end-to-end behaviour (scripts, signals, cleanup), on real processes.
        test: {
          name: "harness",
          include: ["scripts/**/*.e2e.test.ts"],
          testTimeout: 180_000,
        },
      },
      {
        test: {
          name: "conformance",
          include: ["suites/**/*.test.ts"],
          globalSetup: ["lib/target/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          // Suites are independent (unique namespaces, mounts, roles); 2 workers fit 2 cores.
          maxWorkers: 2,
        },
      },
    ],
  },
});
