import { readFile, rm } from "node:fs/promises";
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
    throw new HarnessError(`cannot read ${file}: ${(err as Error).message}`, { exitCode: 2 });
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
