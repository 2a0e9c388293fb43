// vault-k8s-conformance gh-report: a run's results for GitHub Actions (used by action.yml).
import { existsSync } from "node:fs";
import { appendFile, readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { COMMON_FLAGS, noPositionals, runScript } from "../lib/cli.ts";
import { CODE_ROOT } from "../lib/config.ts";
import { UsageError } from "../lib/errors.ts";
import { annotations, baselineKind, errorCommand, formatOutput, runOutputs } from "../lib/report/github.ts";
import type { RunResults } from "../lib/report/reporter.ts";
import { SCHEMA_MARKERS } from "../lib/schemas.ts";

const flag = (name: string) => COMMON_FLAGS.find((f) => f.flag === name)!;

await runScript(
  {
    command: "npm run gh:report -- (--results FILE | --baseline FILE) [--output FILE] [--step-summary FILE] [options]",
    summary:
      "For GitHub Actions. --results: prints an ::error annotation per failed case of a results.json, writes the outputs\n" +
      "verdict, passed, failed, skipped, failed-cases and the report paths to --output ($GITHUB_OUTPUT) and appends\n" +
      "summary.md to --step-summary ($GITHUB_STEP_SUMMARY); a missing results.json is a fail verdict, not an error.\n" +
      "--baseline: checks a baseline (results.json, profile or audit.json) and writes its kind as baseline-kind.",
    flags: [
      { flag: "--results", value: "FILE", help: "a results.json (npm run conformance, under --reports)" },
      { flag: "--baseline", value: "FILE", help: "a baseline to diff against: a results.json, a profile or an audit.json" },
      { flag: "--output", value: "FILE", help: "append step outputs to FILE (e.g. $GITHUB_OUTPUT)" },
      { flag: "--step-summary", value: "FILE", help: "append summary.md (next to --results) to FILE (e.g. $GITHUB_STEP_SUMMARY)" },
      { flag: "--max-annotations", value: "N", help: "at most N ::error lines, then one ::notice (default 10, GitHub's limit per step)" },
      flag("--target"),
      flag("--fixtures"),
      flag("--debug"),
    ],
    exits: { ok: "reported, whatever the verdict (the verdict is the step output)", failed: false },
  },
  async (config, parsed) => {
    const results = parsed.local["--results"];
    const baseline = parsed.local["--baseline"];
    noPositionals(parsed, "gh-report");
    if ((typeof results === "string") === (typeof baseline === "string"))
      throw new UsageError("gh-report needs one of --results FILE or --baseline FILE");
    const max = parsed.local["--max-annotations"] === undefined ? 10 : Number(parsed.local["--max-annotations"]);
    if (!Number.isInteger(max) || max < 0)
      throw new UsageError(`--max-annotations must be a whole number (got ${String(parsed.local["--max-annotations"])})`);
    const out = typeof parsed.local["--output"] === "string" ? String(parsed.local["--output"]) : undefined;
    const write = async (file: string | undefined, text: string) => {
      if (!file || !text) return;
      try {
        await appendFile(file, text);
      } catch (err) {
        throw new UsageError(`cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    };

    if (typeof baseline === "string") {
      let doc: unknown;
      try {
        doc = JSON.parse(await readFile(baseline, "utf8"));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        throw new UsageError(
          code === "ENOENT"
            ? `baseline ${baseline} not found`
            : `baseline ${baseline} is not readable JSON: ${code ?? (err as Error).message.split("\n")[0]}`,
        );
      }
      const kind = baselineKind(doc);
      if (!kind)
        throw new UsageError(
          `baseline ${baseline} is not a results.json, profile or audit.json (its "schema" is none of ${[SCHEMA_MARKERS.results, SCHEMA_MARKERS.profile, SCHEMA_MARKERS.audit].join(", ")})`,
        );
      // An audit reads a live Vault and cluster: only the existing target has one that outlives the run.
      if (kind === "audit" && config.target !== "existing")
        throw new UsageError(`baseline ${baseline} is an audit: audits need --target existing (got ${config.target})`);
      process.stdout.write(`baseline ${baseline}: ${kind}\n`);
      await write(out, formatOutput("baseline-kind", kind));
      return 0;
    }

    const file = resolve(String(results));
    const dir = dirname(file);
    const paths = { results: file, summary: join(dir, "summary.md"), junit: join(dir, "junit.xml") };
    let run: RunResults | undefined;
    try {
      run = JSON.parse(await readFile(file, "utf8")) as RunResults;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT") throw new UsageError(`${file} is not readable JSON: ${code ?? (err as Error).message.split("\n")[0]}`);
    }
    if (run && (!Array.isArray(run.cases) || typeof run.totals !== "object"))
      throw new UsageError(`${file} is not a results file (expected the results.json of npm run conformance)`);
    if (!run) {
      // The run ended before reporting (bad input, a target that did not start): its log says why.
      process.stdout.write(
        errorCommand(`no ${file}: the run ended before reporting results (see the run step's log)`, { title: "vault-k8s-conformance" }) +
          "\n",
      );
      const none = { verdict: "fail", passed: "0", failed: "0", skipped: "0", "failed-cases": "" };
      await write(
        out,
        Object.entries({ ...none, ...paths })
          .map(([k, v]) => formatOutput(k, v))
          .join(""),
      );
      return 0;
    }
    const lines = annotations(run, { codeRoot: CODE_ROOT, fixturesDir: config.fixturesDir, cwd: process.cwd(), exists: existsSync, max });
    if (lines.length) process.stdout.write(lines.join("\n") + "\n");
    await write(
      out,
      Object.entries({ ...runOutputs(run), ...paths })
        .map(([k, v]) => formatOutput(k, v))
        .join(""),
    );
    const summary = typeof parsed.local["--step-summary"] === "string" ? String(parsed.local["--step-summary"]) : undefined;
    if (summary && existsSync(paths.summary)) await write(summary, await readFile(paths.summary, "utf8"));
    return 0;
  },
);
