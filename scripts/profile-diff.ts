// npm run profile:diff: what changed between two profiles and which Vault configs it breaks.
import { writeFile } from "node:fs/promises";
import { runScript } from "../lib/cli.ts";
import { UsageError } from "../lib/errors.ts";
import { diffExitCode, diffProfiles, formatDiff, loadProfile } from "../lib/gate/diff.ts";

await runScript(
  {
    command: "npm run profile:diff -- BEFORE AFTER [--markdown FILE]",
    summary:
      "Compares two profiles (npm run profile). Exit 1 if the change breaks logins for a recorded Vault config,\n" +
      "2 if no Vault config was recorded (nothing to judge) or for bad input, 0 otherwise.",
    flags: [{ flag: "--markdown", value: "FILE", help: "also write the report as Markdown (e.g. $GITHUB_STEP_SUMMARY)" }],
  },
  async (_config, parsed) => {
    if (parsed.positionals.length !== 2) throw new UsageError("profile:diff needs two profiles: BEFORE AFTER");
    const [before, after] = await Promise.all(parsed.positionals.map(loadProfile));
    const d = diffProfiles(before!, after!);
    process.stdout.write(formatDiff(d, "text"));
    const md = parsed.local["--markdown"];
    if (typeof md === "string") await writeFile(md, formatDiff(d, "markdown"), { flag: "a" });
    return diffExitCode(d);
  },
);
