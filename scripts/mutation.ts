// npm run mutation: apply each broken setup of fixtures/mutants/ to a real target; every one must be caught.
import { COMMON_FLAGS, runScript } from "../lib/cli.ts";
import { runMutation } from "../lib/gate/mutation-run.ts";

await runScript(
  {
    command: "npm run mutation -- [--only a,b] [options]",
    summary:
      "Runs the fixture cases against a real local target once as they are (the baseline) and once per mutant\n" +
      "(fixtures/mutants/*.yaml). Writes mutation.json and mutation.md under --reports.",
    flags: [...COMMON_FLAGS, { flag: "--only", value: "FILES", help: "comma-separated mutant files (default: all)" }],
    exits: {
      ok: "every mutant was killed (a case failed under it)",
      failed: "a mutant survived: no case failed under it",
      usage: "the unmutated cases do not pass (nothing can be judged)",
    },
  },
  (config, parsed) =>
    runMutation(config, typeof parsed.local["--only"] === "string" ? String(parsed.local["--only"]).split(",").filter(Boolean) : undefined),
);
