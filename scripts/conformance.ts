// npm run conformance: provision, start the target, run the conformance suites, write reports.
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { COMMON_FLAGS, runScript } from "../lib/cli.ts";
import type { RunResults } from "../lib/report/reporter.ts";
import { runVitest, startOwnedTarget, verdict } from "../lib/run.ts";
import { announcePlan, dryRun } from "../lib/auth-setup/dry-run.ts";
import { preflight, startTarget } from "../lib/lifecycle/start.ts";
import { recordOwnedTarget } from "../lib/lifecycle/state.ts";

await runScript(
  {
    command: "npm run conformance -- [options] [suite filter...]",
    summary: "Runs the conformance suites against a target. Reports: junit.xml, results.json, summary.md under --reports.",
    flags: COMMON_FLAGS,
    exits: {
      ok: "every case passed (--dry-run: the credentials allow all the run needs)",
      failed: "a case failed, no case ran, or a component died mid-run (--dry-run: a permission is missing)",
    },
  },
  async (config, parsed) => {
    if (config.dryRun) return dryRun(config);
    await preflight(config);
    await announcePlan(config);
    const label = (r: RunResults) => `conformance (${r.target ?? config.target}, ${r.flavor ?? config.flavor})`;
    // Attached to a target someone else owns (npm run env:up): theirs to stop.
    if (config.targetInfoFile) {
      const r = await runVitest(config, ["conformance"], parsed.positionals);
      return verdict(r, label(r));
    }
    // This script owns the target: started before vitest (while vitest's modules load), handed to
    // the suites, stopped (or kept) afterwards. One that cannot start is one line and exit code 3.
    const [target] = await Promise.all([startOwnedTarget(config, startTarget), import("vitest/node")]);
    let kept = false;
    try {
      const r = await runVitest(config, ["conformance"], parsed.positionals, { target });
      const code = verdict(r, label(r));
      if (code !== 0 && target.onFailure && (await readdir(join(target.info.artifactsDir, "diagnostics")).catch(() => [])).length > 0)
        await target.onFailure(); // failed cases left diagnostics: the provider adds its own (kind's logs)
      if (code !== 0 && config.keepOnFailure) {
        // --keep-on-failure: stay up as the target's owner; Ctrl-C or env:down tears it down.
        kept = true;
        const file = join(config.reportsDir, "kept-target.json");
        process.stdout.write(`\n--keep-on-failure: the run failed; the target stays up for you to inspect.\n`);
        process.stdout.write(await recordOwnedTarget(target.info, file, "is kept"));
        await new Promise(() => undefined); // the shutdown hook stops the target and exits
      }
      return code;
    } finally {
      if (!kept) await target.stop();
    }
  },
);
