// npm run env:up: start a target, write its TargetInfo to a file, stay up until Ctrl-C.
import { resolve } from "node:path";
import { COMMON_FLAGS, noPositionals, runScript } from "../lib/cli.ts";
import { log } from "../lib/log.ts";
import { startTarget } from "../lib/lifecycle/start.ts";
import { DEFAULT_STATE_FILE, recordOwnedTarget } from "../lib/lifecycle/state.ts";

await runScript(
  {
    command: "npm run env:up -- [options]",
    summary:
      "Starts a target and keeps it up until Ctrl-C (or npm run env:down), then tears it down and exits 130 (143).\n" +
      "Writes its TargetInfo to --out.",
    flags: [...COMMON_FLAGS, { flag: "--out", value: "FILE", help: `where to write TargetInfo (default ${DEFAULT_STATE_FILE})` }],
    // Up until stopped: 130/143 (Ctrl-C, env:down's SIGTERM) is its normal end, after the teardown.
    exits: { ok: false, failed: false },
  },
  async (config, parsed) => {
    noPositionals(parsed, "env:up");
    const out = resolve(String(parsed.local["--out"] ?? DEFAULT_STATE_FILE));
    const target = await startTarget(config);
    process.stdout.write(await recordOwnedTarget(target.info, out, "is up"));
    log.info("env:up", "up; waiting for Ctrl-C");
    await new Promise(() => undefined); // the shutdown hook exits the process
  },
);
