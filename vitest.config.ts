import { defineConfig } from "vitest/config";

// Three projects, run in this order: `unit` (plumbing, fakes allowed, no target), `harness` (the
// scripts' own behaviour on real processes: signals, cleanup, bad input) and `conformance` (real
// Vault and real Kubernetes; one target per run, started by the globalSetup and shared through
// provide/inject).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["lib/**/*.test.ts"],
          sequence: { groupOrder: 0 },
          testTimeout: 30_000,
        },
      },
      {
        // The harness's own end-to-end behaviour (scripts, signals, cleanup), on real processes.
        test: {
          name: "harness",
          include: ["scripts/**/*.e2e.test.ts"],
          sequence: { groupOrder: 1 },
          // Each test starts whole targets: one at a time on a 2-core machine.
          maxWorkers: 1,
          testTimeout: 180_000,
        },
      },
      {
        test: {
          name: "conformance",
          include: ["suites/**/*.test.ts"],
          globalSetup: ["lib/vitest/global-setup.ts"],
          setupFiles: ["lib/vitest/diagnostics-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          sequence: { groupOrder: 2 },
          // Suites are independent (unique namespaces, mounts, roles); 2 workers fit 2 cores.
          maxWorkers: 2,
          // Suite files share no mutable module state (each builds its own SuiteContext), so a
          // worker keeps its loaded modules between files: @kubernetes/client-node alone takes
          // ~1.5 s to load per file. Measured: full run 35.8 s -> 25-27 s.
          isolate: false,
        },
      },
    ],
  },
});
