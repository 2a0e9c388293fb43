// npm run conformance: provision, start the target, run the conformance suites, write reports.
import { COMMON_FLAGS, runScript } from "../lib/cli.ts";
import { announcePlan, dryRun } from "../lib/target/dry-run.ts";
import { preflight } from "../lib/target/start.ts";
import { runVitest, verdict } from "../lib/run.ts";

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
    return verdict(r, `conformance (${r.target ?? config.target}, ${r.flavor ?? config.flavor})`);
  },
);
