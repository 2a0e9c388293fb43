import { readFile } from "node:fs/promises";
import type { Config } from "../config.ts";
import { HarnessError, UsageError } from "../errors.ts";
import type { Component } from "../binaries/index.ts";
import { attachExistingTarget } from "../providers/existing.ts";
import { startLocalTarget, type LocalTargetOptions } from "../providers/local.ts";
import type { TargetInfo } from "./info.ts";

export interface StartedTarget extends AsyncDisposable {
  info: TargetInfo;
  startupMs: number;
  stop(): Promise<void>;
  /** A component that died since start (local target), for failure messages. */
  deadComponent?(): { name: string; logFile: string } | undefined;
}

export function componentsFor(config: Pick<Config, "flavor">): Component[] {
  return ["etcd", "kube-apiserver", "kube-controller-manager", config.flavor === "openbao" ? "bao" : "vault"];
}

/** Binaries for the local target, from the user's paths, the cache, downloads or Go builds. */
export async function provisionLocal(config: Config, signal?: AbortSignal) {
  // Loaded on demand: attaching to a running target never needs the provisioning code.
  const { provision } = await import("../binaries/index.ts");
  const bins = await provision(componentsFor(config), {
    cacheDir: config.cacheDir,
    overrides: config.overrides,
    offline: config.offline,
    noBuild: config.noBuild,
    signal,
  });
  const path = (c: Component) => {
    const b = bins[c];
    if (!b) throw new HarnessError(`provisioning returned no ${c}`);
    return b.path;
  };
  return {
    etcd: path("etcd"),
    kubeApiserver: path("kube-apiserver"),
    kubeControllerManager: path("kube-controller-manager"),
    vault: path(config.flavor === "openbao" ? "bao" : "vault"),
  };
}

/**
 * Before vitest starts: provision the local target's binaries (with progress), or check that an
 * existing cluster and Vault are reachable and usable, so that bad input is one clear line and
 * exit code 2 from the script instead of a failed test run.
 */
export async function preflight(config: Config): Promise<void> {
  if (process.env.VKC_TARGET_INFO) return;
  if (config.target === "local") await provisionLocal(config);
  if (config.target === "existing") await (await attachExistingTarget(config)).stop();
  if (config.target === "kind") await startTarget(config);
}

/**
 * config -> provider -> started target. `VKC_TARGET_INFO` (an env:up file) attaches to a target
 * that is already running instead of starting one; its owner tears it down.
 */
export async function startTarget(config: Config, extra: Partial<LocalTargetOptions> = {}): Promise<StartedTarget> {
  switch (config.target) {
    case "local": {
      const binaries = await provisionLocal(config);
      return startLocalTarget({ config, binaries, ...extra });
    }
    case "kind":
      throw new HarnessError("the kind target is not available yet in this version (it needs Docker and kind); use --target local", {
        exitCode: 2,
      });
    case "existing":
      return attachExistingTarget(config);
  }
}

export async function readTargetInfo(path: string): Promise<TargetInfo> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as TargetInfo;
  } catch (err) {
    throw new UsageError(`cannot read target info ${path}: ${(err as Error).message}`, { cause: err });
  }
}
