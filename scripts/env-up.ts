// npm run env:up: start a target, write its TargetInfo to a file, stay up until Ctrl-C.
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { COMMON_FLAGS, runScript } from "../lib/cli.ts";
import { onShutdown } from "../lib/cleanup.ts";
import { log } from "../lib/log.ts";
import { startTarget } from "../lib/target/start.ts";
import { DEFAULT_STATE_FILE } from "../lib/target/state.ts";

await runScript(
  {
    command: "npm run env:up -- [options]",
    summary: "Starts a target and keeps it up until Ctrl-C (or npm run env:down). Writes its TargetInfo to --out.",
    flags: [...COMMON_FLAGS, { flag: "--out", value: "FILE", help: `where to write TargetInfo (default ${DEFAULT_STATE_FILE})` }],
  },
  async (config, parsed) => {
    const out = resolve(String(parsed.local["--out"] ?? DEFAULT_STATE_FILE));
    const target = await startTarget(config);
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, JSON.stringify({ ...target.info, pid: process.pid }, null, 2), { mode: 0o600 });
    // Registered after the target's own hook, so it runs first: the file goes before the processes.
    onShutdown(() => rm(out, { force: true }));
    const i = target.info;
    process.stdout.write(
      [
        `target ${i.runId} is up (${i.target}, kubernetes ${i.kube.version}, ${i.flavor} ${i.vault.version})`,
        `  target info:  ${out}`,
        `  kubeconfig:   ${i.kube.kubeconfigPath}`,
        `  vault:        ${i.vault.address} (root token in ${i.vault.tokenFile})`,
        `  logs:         ${dirname(Object.values(i.logs)[0] ?? i.artifactsDir)}`,
        `run suites against it:  VKC_TARGET_INFO=${out} npm run conformance`,
        `stop it:                Ctrl-C here, or npm run env:down`,
        "",
      ].join("\n"),
    );
    log.info("env:up", "up; waiting for Ctrl-C");
    await new Promise(() => undefined); // the shutdown hook exits the process
  },
);
