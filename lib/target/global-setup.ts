import { readdir } from "node:fs/promises";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { loadConfig } from "../config.ts";
import { describeError, HarnessError } from "../errors.ts";
import { log, setLogLevel } from "../log.ts";
import type { TargetInfo } from "./info.ts";
import { handOver } from "./keep.ts";
import { announceDeath } from "./watch.ts";
import { readTargetInfo, startTarget, type StartedTarget } from "./start.ts";

declare module "vitest" {
  export interface ProvidedContext {
    target: TargetInfo;
    fixturesDir: string;
    slow: boolean;
  }
}

/**
 * vitest globalSetup of the conformance project: start (or attach to) one target for the whole
 * run and hand the suites only serializable facts. A target that cannot start fails the run
 * loudly; it is never skipped.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const config = loadConfig();
  if (config.debug) setLogLevel("debug");
  let target: StartedTarget | undefined;
  let info: TargetInfo;
  const attach = process.env.VKC_TARGET_INFO;
  try {
    if (attach) {
      info = await readTargetInfo(attach);
      log.debug("setup", `attached to running target ${info.runId} (${attach})`);
    } else {
      target = await startTarget(config);
      info = target.info;
      target.watch?.(announceDeath);
    }
  } catch (err) {
    const msg = describeError(err);
    const details = err instanceof HarnessError && err.details ? `\n${err.details}` : "";
    throw new Error(`target "${config.target}" could not start: ${msg}${details}`);
  }
  project.provide("target", info);
  project.provide("fixturesDir", config.fixturesDir);
  project.provide("slow", config.slow);
  return async () => {
    // --keep-on-failure and the run failed: the script keeps the target up and owns it now.
    if (handOver(target)) return;
    // Failed cases leave diagnostics bundles; then let the provider add its own (kind's logs).
    if (target?.onFailure && (await readdir(join(info.artifactsDir, "diagnostics")).catch(() => [])).length > 0) {
      await target.onFailure();
    }
    await target?.stop();
  };
}
