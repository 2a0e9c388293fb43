// npm run env:down: stop the target that npm run env:up started.
import { resolve } from "node:path";
import { runScript } from "../lib/cli.ts";
import { DEFAULT_STATE_FILE, stopRecordedTarget } from "../lib/lifecycle/state.ts";

await runScript(
  {
    command: "npm run env:down -- [--file FILE]",
    summary: "Stops the target started by npm run env:up (it tears down every process and temp dir).",
    flags: [{ flag: "--file", value: "FILE", help: `the env:up state file (default ${DEFAULT_STATE_FILE})` }],
  },
  async (_config, parsed) => {
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
