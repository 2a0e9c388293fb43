import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { onShutdown } from "../cleanup.ts";
import { HarnessError } from "../errors.ts";
import { pidAlive } from "../process.ts";
import { waitFor } from "../wait.ts";
import type { TargetInfo } from "./info.ts";

/** Where env:up records the running target (TargetInfo plus the owner's pid). */
export const DEFAULT_STATE_FILE = ".vkc/target.json";

export type TargetState = TargetInfo & { pid: number };

/** Asks the env:up process that owns the target to tear it down, and waits until it has. */
export async function stopRecordedTarget(file: string, timeoutMs = 60_000): Promise<"stopped" | "stale" | "none"> {
  let state: TargetState;
  try {
    state = JSON.parse(await readFile(file, "utf8")) as TargetState;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "none";
    throw new HarnessError(`cannot read ${file}: ${(err as Error).message}`, { exitCode: 2, cause: err });
  }
  if (!Number.isInteger(state.pid) || !pidAlive(state.pid)) {
    await rm(file, { force: true });
    return "stale";
  }
  process.kill(state.pid, "SIGTERM");
  await waitFor(async () => !pidAlive(state.pid), { what: `env:up process ${state.pid} exits after SIGTERM`, timeoutMs, intervalMs: 200 });
  await rm(file, { force: true });
  return "stopped";
}

/**
 * Records a target this process owns (TargetInfo plus our pid, 0600) so that `npm run env:down
 * -- --file FILE` or a suite run with VKC_TARGET_INFO=FILE can find it; the file goes with the
 * target. Returns the lines telling a person how to reach it and how to remove it.
 */
export async function recordOwnedTarget(info: TargetInfo, file: string, how: string): Promise<string> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, JSON.stringify({ ...info, pid: process.pid }, null, 2), { mode: 0o600 });
  // Registered after the target's own hook, so it runs first: the file goes before the processes.
  onShutdown(() => rm(file, { force: true }));
  return [
    `target ${info.runId} ${how} (${info.target}, kubernetes ${info.kube.version}, ${info.flavor} ${info.vault.version})`,
    `  target info:  ${file}`,
    `  kubeconfig:   ${info.kube.kubeconfigPath}`,
    `  vault:        ${info.vault.address} (root token in ${info.vault.tokenFile})`,
    `  logs:         ${dirname(Object.values(info.logs)[0] ?? info.artifactsDir)}`,
    `run suites against it:  VKC_TARGET_INFO=${file} npm run conformance`,
    `stop it:                Ctrl-C here, or npm run env:down -- --file ${file}`,
    "",
  ].join("\n");
}
