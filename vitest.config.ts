import { defineConfig } from "vitest/config";

// Loaded from the repository (vitest.config.ts, sources run as TypeScript) or from the installed
// package's build (dist/vitest.config.js, next to dist/suites/*.test.js): the same projects either way.
const ext = new URL(import.meta.url).pathname.endsWith(".js") ? "js" : "ts";

// Projects, run in this order: `unit` (plumbing, fakes allowed, no target), `harness` (the
// scripts' own behaviour on real processes: signals, cleanup, bad input) and `conformance` (real
// Vault and real Kubernetes; one target per run, started by the script that runs vitest, which the
// globalSetup attaches to and shares through provide/inject); `kind` (the kind target's lifecycle,
// Docker needed) runs only when named.
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
          // Hooks start targets too (env:up in a beforeAll): 10 s is not enough on a loaded machine.
          hookTimeout: 180_000,
        },
      },
      {
        // The kind target's own lifecycle on a real kind cluster and a real Docker engine (dry run,
        // Ctrl-C at each phase, --keep, logs export on failure, bad engines). Not part of `npm test`
        // (scripts/test.ts names its projects): kit/ci.sh runs it with `npx vitest run --project kind`.
        // Without Docker it fails, it never skips.
        test: {
          name: "kind",
          include: ["scripts/**/*.kind.test.ts"],
          sequence: { groupOrder: 3 },
          // Each test creates a kind cluster: one at a time.
          maxWorkers: 1,
          testTimeout: 420_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: "conformance",
          include: [`suites/**/*.test.${ext}`],
          globalSetup: [`lib/vitest/global-setup.${ext}`],
          setupFiles: [`lib/vitest/diagnostics-setup.${ext}`],
          // Case titles are ids in results.json: $-interpolated values are never truncated.
          chaiConfig: { truncateThreshold: 0 },
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
