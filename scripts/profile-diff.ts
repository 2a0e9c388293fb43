// npm run profile:diff: what changed between two profiles and which Vault configs it breaks.
import { appendToFile, runScript } from "../lib/cli.ts";
import { UsageError } from "../lib/errors.ts";
import { diffExitCode, diffProfiles, formatDiff, loadProfile } from "../lib/gate/diff.ts";

await runScript(
  {
    command: "npm run profile:diff -- BEFORE AFTER [--markdown FILE]",
    summary: "Compares two profiles (npm run profile): what changed, and which recorded Vault configs it breaks.",
    flags: [{ flag: "--markdown", value: "FILE", help: "also write the report as Markdown (e.g. $GITHUB_STEP_SUMMARY)" }],
    exits: {
      ok: "the change breaks no recorded Vault config",
      failed: "the change breaks logins for a recorded Vault config",
      usage: "no Vault config recorded in BEFORE (nothing to judge)",
    },
  },
  async (_config, parsed) => {
    if (parsed.positionals.length !== 2) throw new UsageError("profile:diff needs two profiles: BEFORE AFTER");
    const [before, after] = await Promise.all(parsed.positionals.map(loadProfile));
    const d = diffProfiles(before!, after!);
    process.stdout.write(formatDiff(d, "text"));
    const md = parsed.local["--markdown"];
    if (typeof md === "string") await appendToFile(md, formatDiff(d, "markdown"), "--markdown");
    return diffExitCode(d);
  },
);
