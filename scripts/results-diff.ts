// npm run results:diff: which cases changed status between two runs' results.json.
import { writeFile } from "node:fs/promises";
import { runScript } from "../lib/cli.ts";
import { UsageError } from "../lib/errors.ts";
import { diffResults, formatResultsDiff, loadResults, resultsDiffExitCode } from "../lib/gate/results-diff.ts";

await runScript(
  {
    command: "npm run results:diff -- BEFORE AFTER [--markdown FILE]",
    summary:
      "Compares two results.json (npm run conformance, under --reports). Exit 1 if a case that passed now fails or is gone,\n" +
      "or a case fails that did not fail before; 2 for bad input; 0 otherwise.",
    flags: [{ flag: "--markdown", value: "FILE", help: "also write the report as Markdown" }],
  },
  async (_config, parsed) => {
    if (parsed.positionals.length !== 2) throw new UsageError("results:diff needs two results.json files: BEFORE AFTER");
    const [before, after] = await Promise.all(parsed.positionals.map((p) => loadResults(p)));
    const d = diffResults(before!, after!);
    process.stdout.write(formatResultsDiff(d, "text"));
    const md = parsed.local["--markdown"];
    if (typeof md === "string") {
      // Appends, like profile:diff, so --markdown "$GITHUB_STEP_SUMMARY" adds to the job summary.
      try {
        await writeFile(md, formatResultsDiff(d, "markdown"), { flag: "a" });
      } catch (err) {
        throw new UsageError(`cannot write ${md}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    }
    return resultsDiffExitCode(d);
  },
);
