// npm run conformance: provision, start the target, run the conformance suites, write reports.
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { COMMON_FLAGS, runScript } from "../lib/cli.ts";
import { onShutdown } from "../lib/cleanup.ts";
import { describeError, HarnessError, UsageError } from "../lib/errors.ts";
import { runVitest, verdict } from "../lib/run.ts";
import { announcePlan, dryRun } from "../lib/target/dry-run.ts";
import { preflight, startTarget, type StartedTarget } from "../lib/target/start.ts";
import { recordOwnedTarget } from "../lib/target/state.ts";
import { announceDeath } from "../lib/target/watch.ts";

/** Exit code of a run whose target could not start: not a case that failed, not bad input. */
export const TARGET_FAILED = 3;

await runScript(
  {
    command: "npm run conformance -- [options] [suite filter...]",
    summary:
      "Runs the conformance suites against a target. Exit 0 only if every case passed, 1 if a case failed,\n" +
      "2 for bad input, 3 if the target could not start. Reports: junit.xml, results.json, summary.md under --reports.",
    flags: COMMON_FLAGS,
  },
  async (config, parsed) => {
    if (config.dryRun) return dryRun(config);
    await preflight(config);
    await announcePlan(config);
    if (config.targetInfoFile) return finish(await runVitest(config, ["conformance"], parsed.positionals), config);

    // This script owns the target: it starts it before vitest (while vitest's modules load), hands
    // the suites its TargetInfo through a 0600 file, and stops it (or keeps it) afterwards. A target
    // that cannot start is one line and exit code 3, before any test runner output.
    const [started] = await Promise.all([
      startTarget(config).catch((err: unknown) => {
        if (err instanceof UsageError) throw err;
        const details = err instanceof HarnessError ? err.details : undefined;
        throw new HarnessError(`target "${config.target}" could not start: ${describeError(err)}`, {
          cause: err,
          exitCode: TARGET_FAILED,
          ...(details ? { details } : {}),
        });
      }),
      import("vitest/node"),
    ]);
    const target: StartedTarget = started;
    let kept = false;
    const work = await mkdtemp(join(tmpdir(), "vkc-handover-"));
    onShutdown(() => rm(work, { recursive: true, force: true }));
    try {
      const file = join(work, "target.json");
      await writeFile(file, JSON.stringify(target.info), { mode: 0o600 });
      target.watch?.(announceDeath);
      const r = await runVitest({ ...config, targetInfoFile: file }, ["conformance"], parsed.positionals);
      const code = finish(r, config);
      if (code !== 0 && target.onFailure && (await readdir(join(target.info.artifactsDir, "diagnostics")).catch(() => [])).length > 0)
        await target.onFailure(); // failed cases left diagnostics: the provider adds its own (kind's logs)
      if (code !== 0 && config.keepOnFailure && config.target === "local") {
        // --keep-on-failure: stay up as the target's owner; Ctrl-C or env:down tears it down.
        kept = true;
        const kf = join(config.reportsDir, "kept-target.json");
        process.stdout.write(`\n--keep-on-failure: the run failed; the target stays up for you to inspect.\n`);
        process.stdout.write(await recordOwnedTarget(target.info, kf, "is kept"));
        await new Promise(() => undefined); // the shutdown hook stops the target and exits
      }
      return code;
    } finally {
      if (!kept) await target.stop();
      await rm(work, { recursive: true, force: true });
    }
  },
);

function finish(r: Awaited<ReturnType<typeof runVitest>>, config: { target: string; flavor: string }): number {
  return verdict(r, `conformance (${r.target ?? config.target}, ${r.flavor ?? config.flavor})`);
}
