// npm run bench: how fast is the harness on this machine? Medians over several runs, not timed tests.
import { spawn } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { measure, stats, type Stats } from "../lib/bench.ts";
import { COMMON_FLAGS, runScript } from "../lib/cli.ts";
import { PACKAGE_ROOT } from "../lib/config.ts";
import { log } from "../lib/log.ts";
import { provisionLocal } from "../lib/target/start.ts";
import { startLocalTarget } from "../lib/providers/local.ts";

await runScript(
  {
    command: "npm run bench -- [--runs N] [--suite-runs N]",
    summary: "Measures warm time-to-ready of the local target and the full default conformance run's time-to-verdict.",
    flags: [
      ...COMMON_FLAGS,
      { flag: "--runs", value: "N", help: "target start/stop cycles (default 5)" },
      { flag: "--suite-runs", value: "N", help: "full npm run conformance runs (default 3; 0 to skip)" },
      { flag: "--matrix-runs", value: "N", help: "full npm run matrix runs, all personas (default 0)" },
    ],
  },
  async (config, parsed) => {
    const runs = Number(parsed.local["--runs"] ?? 5);
    const suiteRuns = Number(parsed.local["--suite-runs"] ?? 3);
    const matrixRuns = Number(parsed.local["--matrix-runs"] ?? 0);
    const binaries = await provisionLocal(config); // warm: provisioning is not part of the figure
    const ready: number[] = [];
    const teardown: number[] = [];
    await measure(runs, async () => {
      const t = await startLocalTarget({ config, binaries });
      ready.push(t.startupMs);
      const t0 = performance.now();
      await t.stop();
      teardown.push(performance.now() - t0);
    });
    const result: Record<string, Stats | string | number> = {
      machine: `${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`,
      flavor: config.flavor,
      targetReady: stats(ready),
      targetTeardown: stats(teardown),
    };
    // A whole script run in a child process, spawn to exit, as a user waits for it.
    const timeScript = (name: string) => async () => {
      const code = await new Promise<number | null>((resolve) => {
        const child = spawn(
          process.execPath,
          ["--import", "tsx", join(PACKAGE_ROOT, "scripts", name), "--reports", join(config.reportsDir, "bench-run")],
          {
            cwd: PACKAGE_ROOT,
            stdio: "ignore",
          },
        );
        child.on("exit", resolve);
      });
      if (code !== 0) log.warn("bench", `a ${name} run exited ${code}`);
    };
    if (suiteRuns > 0) result.conformanceTimeToVerdict = await measure(suiteRuns, timeScript("conformance.ts"));
    if (matrixRuns > 0) result.matrixTimeToVerdict = await measure(matrixRuns, timeScript("matrix.ts"));
    await mkdir(config.reportsDir, { recursive: true });
    await writeFile(join(config.reportsDir, "bench.json"), JSON.stringify(result, null, 2) + "\n");
    const fmt = (s: Stats) =>
      `median ${(s.medianMs / 1000).toFixed(2)}s (min ${(s.minMs / 1000).toFixed(2)}s, max ${(s.maxMs / 1000).toFixed(2)}s, n=${s.runs})`;
    process.stdout.write(`machine: ${result.machine}; flavor ${config.flavor}\n`);
    process.stdout.write(`local target time-to-ready:      ${fmt(result.targetReady as Stats)}\n`);
    process.stdout.write(`local target teardown:           ${fmt(result.targetTeardown as Stats)}\n`);
    if (result.conformanceTimeToVerdict)
      process.stdout.write(`npm run conformance (warm, full): ${fmt(result.conformanceTimeToVerdict as Stats)}\n`);
    if (result.matrixTimeToVerdict)
      process.stdout.write(`npm run matrix (warm, all personas): ${fmt(result.matrixTimeToVerdict as Stats)}\n`);
  },
);
