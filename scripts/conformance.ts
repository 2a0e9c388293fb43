// npm run conformance: provision, start the target, run the conformance suites, write reports.
import { COMMON_FLAGS, runScript } from "../lib/cli.ts";
import { announcePlan, dryRun } from "../lib/target/dry-run.ts";
import { preflight } from "../lib/target/start.ts";
import { join } from "node:path";
import { runVitest, verdict } from "../lib/run.ts";
import { keptTarget } from "../lib/target/keep.ts";
import { recordOwnedTarget } from "../lib/target/state.ts";

await runScript(
  {
    command: "npm run conformance -- [options] [suite filter...]",
    summary:
      "Runs the conformance suites against a target. Exit 0 only if every case passed.\nReports: junit.xml, results.json, summary.md under --reports.",
    flags: COMMON_FLAGS,
  },
  async (config, parsed) => {
    if (config.dryRun) return dryRun(config);
    await preflight(config);
    await announcePlan(config);
    const r = await runVitest(config, ["conformance"], parsed.positionals);
    const code = verdict(r, `conformance (${r.target ?? config.target}, ${r.flavor ?? config.flavor})`);
    const kept = keptTarget();
    if (kept) {
      // --keep-on-failure: stay up as the target's owner; Ctrl-C or env:down tears it down.
      const file = join(config.reportsDir, "kept-target.json");
      process.stdout.write(`\n--keep-on-failure: the run failed; the target stays up for you to inspect.\n`);
      process.stdout.write(await recordOwnedTarget(kept.info, file, "is kept"));
      await new Promise(() => undefined); // the shutdown hook stops the target and exits
    }
    return code;
  },
);
