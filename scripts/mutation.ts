// npm run mutation: apply each broken setup of fixtures/mutants/ to a real target; every one must be caught.
import { COMMON_FLAGS, runScript } from "../lib/cli.ts";
import { runMutation } from "../lib/gate/mutation-run.ts";

await runScript(
  {
    command: "npm run mutation -- [--only a,b] [options]",
    summary:
      "Runs the fixture cases against a real local target once as they are (the baseline) and once per mutant\n" +
      "(fixtures/mutants/*.yaml). Writes mutation.json and mutation.md under --reports. Exit 0 only if every mutant is killed.",
    flags: [...COMMON_FLAGS, { flag: "--only", value: "FILES", help: "comma-separated mutant files (default: all)" }],
  },
  (config, parsed) =>
    runMutation(config, typeof parsed.local["--only"] === "string" ? String(parsed.local["--only"]).split(",").filter(Boolean) : undefined),
);
