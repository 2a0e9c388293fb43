// npm run bench: how fast is the harness on this machine? Medians over several runs, not timed tests.
import { parseCounts } from "../lib/bench.ts";
import { runBench } from "../lib/bench/run.ts";
import { COMMON_FLAGS, runScript } from "../lib/cli.ts";
import { UsageError } from "../lib/errors.ts";

await runScript(
  {
    command: "npm run bench -- [--runs N] [--suite-runs N] [--login-ns 1,10,50] [--login-rounds N]",
    summary:
      "Measures warm time-to-ready of the local target, login throughput and latency against it,\n" +
      "and the full default conformance run's time-to-verdict and harness overhead.",
    flags: [
      ...COMMON_FLAGS,
      { flag: "--runs", value: "N", help: "target start/stop cycles (default 5)" },
      { flag: "--login-ns", value: "N,N,...", help: "service accounts logging in concurrently, per step (default 1,10,50)" },
      { flag: "--login-rounds", value: "N", help: "logins per service account per step (default 100; 0 to skip the login bench)" },
      { flag: "--suite-runs", value: "N", help: "full npm run conformance runs, traced (default 3; 0 to skip)" },
      { flag: "--matrix-runs", value: "N", help: "full npm run matrix runs, all personas (default 0)" },
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
    return runBench(config, { runs, suiteRuns, matrixRuns, loginRounds, loginNs });
  },
);
