// npm run results:diff: which cases changed status between two runs' results.json.
import { appendToFile, runScript } from "../lib/cli.ts";
import { UsageError } from "../lib/errors.ts";
import { diffResults, formatResultsDiff, loadResults, resultsDiffExitCode } from "../lib/gate/results-diff.ts";

await runScript(
  {
    command: "npm run results:diff -- BEFORE AFTER [--markdown FILE]",
    summary: "Compares two results.json (npm run conformance, under --reports): which cases changed status.",
    flags: [{ flag: "--markdown", value: "FILE", help: "also write the report as Markdown" }],
    exits: {
      ok: "no regression (fixes, new passing cases and removed failing ones are not)",
      failed: "a regression: a case that passed now fails or is gone, or a case fails that did not fail before",
    },
  },
  async (_config, parsed) => {
    if (parsed.positionals.length !== 2) throw new UsageError("results:diff needs two results.json files: BEFORE AFTER");
    const [before, after] = await Promise.all(parsed.positionals.map((p) => loadResults(p)));
    const d = diffResults(before!, after!);
    process.stdout.write(formatResultsDiff(d, "text"));
    const md = parsed.local["--markdown"];
    // Appends, so --markdown "$GITHUB_STEP_SUMMARY" adds to the job summary.
    if (typeof md === "string") await appendToFile(md, formatResultsDiff(d, "markdown"), "--markdown");
    return resultsDiffExitCode(d);
  },
);
