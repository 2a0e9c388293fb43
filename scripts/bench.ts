// npm run bench: how fast is the harness on this machine? Medians over several runs, not timed tests.
import { parseCounts } from "../lib/bench.ts";
import { parseKindModes } from "../lib/bench/kind.ts";
import { runBench } from "../lib/bench/run.ts";
import { COMMON_FLAGS, runScript } from "../lib/cli.ts";
import { UsageError } from "../lib/errors.ts";

await runScript(
  {
    command:
      "npm run bench -- [--runs N] [--suite-runs N] [--login-ns 1,10,50] [--login-rounds N] [--with-kind [--kind-runs N] [--node-image I --vault-image I]]",
    summary:
      "Measures warm time-to-ready of the local target, login throughput and latency against it,\n" +
      "and the full default conformance run's time-to-verdict and harness overhead; with --with-kind,\n" +
      "the kind target's time-to-ready and time-to-verdict (Vault as a container and in the cluster) beside them.",
    flags: [
      ...COMMON_FLAGS,
      { flag: "--runs", value: "N", help: "target start/stop cycles (default 5)" },
      { flag: "--login-ns", value: "N,N,...", help: "service accounts logging in concurrently, per step (default 1,10,50)" },
      { flag: "--login-rounds", value: "N", help: "logins per service account per step (default 100; 0 to skip the login bench)" },
      { flag: "--suite-runs", value: "N", help: "full npm run conformance runs, traced (default 3; 0 to skip)" },
      { flag: "--matrix-runs", value: "N", help: "full npm run matrix runs, all personas (default 0)" },
      {
        flag: "--with-kind",
        help: "also full conformance runs on the kind target (needs Docker and the images; fails if they are missing)",
      },
      { flag: "--kind-runs", value: "N", help: "with --with-kind: conformance runs per Vault mode (default 3)" },
      { flag: "--kind-vault", value: "MODES", help: "with --with-kind: container,in-cluster (default both)" },
    ],
  },
  async (config, parsed) => {
    const count = (flag: string, dflt: number) => {
      const v = String(parsed.local[flag] ?? dflt);
      if (!/^\d+$/.test(v)) throw new UsageError(`${flag} needs a non-negative integer (got "${v}")`);
      return Number(v);
    };
    const runs = count("--runs", 5);
    const suiteRuns = count("--suite-runs", 3);
    const matrixRuns = count("--matrix-runs", 0);
    const loginRounds = count("--login-rounds", 100);
    let loginNs: number[];
    try {
      loginNs = parseCounts(String(parsed.local["--login-ns"] ?? "1,10,50"), "--login-ns");
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const withKind = parsed.local["--with-kind"] === true;
    if (!withKind && (parsed.local["--kind-runs"] !== undefined || parsed.local["--kind-vault"] !== undefined))
      throw new UsageError("--kind-runs and --kind-vault apply with --with-kind");
    let kind: { runs: number; modes: ReturnType<typeof parseKindModes> } | undefined;
    if (withKind) {
      const kindRuns = count("--kind-runs", 3);
      if (kindRuns < 1) throw new UsageError("--kind-runs needs at least 1");
      try {
        kind = { runs: kindRuns, modes: parseKindModes(String(parsed.local["--kind-vault"] ?? "container,in-cluster")) };
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
    }
    return runBench(config, { runs, suiteRuns, matrixRuns, loginRounds, loginNs, ...(kind ? { kind } : {}) });
  },
);
