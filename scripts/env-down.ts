// npm run env:down: stop the target that npm run env:up started.
import { resolve } from "node:path";
import { noPositionals, runScript } from "../lib/cli.ts";
import { DEFAULT_STATE_FILE, stopRecordedTarget } from "../lib/lifecycle/state.ts";

await runScript(
  {
    command: "npm run env:down -- [--file FILE]",
    summary: "Stops the target started by npm run env:up (it tears down every process and temp dir).",
    flags: [{ flag: "--file", value: "FILE", help: `the env:up state file (default ${DEFAULT_STATE_FILE})` }],
    exits: {
      ok: "the target stopped, or none was running",
      failed: false,
      usage: "a state file that cannot be read",
      infra: "the env:up process did not exit within 60 s",
    },
  },
  async (_config, parsed) => {
    noPositionals(parsed, "env:down");
    const file = resolve(String(parsed.local["--file"] ?? DEFAULT_STATE_FILE));
    const result = await stopRecordedTarget(file);
    const say = {
      stopped: "target stopped",
      stale: "the recorded target was no longer running; state file removed",
      none: `no running target recorded in ${file}`,
    };
    process.stdout.write(say[result] + "\n");
  },
);
