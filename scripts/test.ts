// npm test: the unit tests and the conformance suites on the local target.
import { COMMON_FLAGS, runScript } from "../lib/cli.ts";
import { provisionFor } from "../lib/target/start.ts";
import { runVitest, verdict } from "../lib/run.ts";

await runScript(
  {
    command: "npm test -- [options] [file filter...]",
    summary: "Unit tests plus the conformance suites (local target unless --target says otherwise).",
    flags: COMMON_FLAGS,
  },
  async (config, parsed) => {
    // Provision first, with progress, so a first run on a fresh machine shows what it builds.
    await provisionFor(config);
    const r = await runVitest(config, ["unit", "conformance"], parsed.positionals);
    return verdict(r, "npm test");
  },
);
