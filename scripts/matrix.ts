// npm run matrix: personas x Vault issuer modes on the local target -> a compatibility table.
import { COMMON_FLAGS, runScript } from "../lib/cli.ts";
import { runMatrix } from "../lib/gate/matrix-run.ts";

await runScript(
  {
    command: "npm run matrix -- [--personas a,b] [--flavor vault|openbao]",
    summary:
      "For each persona (fixtures/personas/) starts the local target and runs the issuer, login and issuer-matrix\n" +
      "suites; writes matrix.md and matrix.json under --reports.",
    flags: [...COMMON_FLAGS, { flag: "--personas", value: "NAMES", help: "comma-separated personas (default: all)" }],
    exits: {
      ok: "every persona's suites passed and every cell matched its prediction",
      failed: "a suite failed, a cell disagreed with its prediction, or a persona's run gave no results",
    },
  },
  (config, parsed) =>
    runMatrix(
      config,
      typeof parsed.local["--personas"] === "string" ? String(parsed.local["--personas"]).split(",").filter(Boolean) : undefined,
    ),
);
