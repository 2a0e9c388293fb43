import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { HarnessError } from "../errors.ts";
import { formatDuration, log } from "../log.ts";
import { cached, install, withLock } from "./cache.ts";
import { goAvailable, goEnv } from "./gobuild.ts";

/**
 * The kind CLI for the kind target, in this order: `KIND_BIN` (`kindBin`); the project cache
 * (`<cache>/kind/<version>/kind`); `kind` on PATH; or, when asked to install, `go install
 * sigs.k8s.io/kind@<version>` into the cache (kind is a plain Go module; no GitHub download).
 * Node images are supported with the kind release they were built for, so the version comes
 * from fixtures/kind.json (or the legacy image's own kind release).
 */
export async function resolveKind(o: {
  cacheDir: string;
  version: string;
  /** KIND_BIN (config.kindBin). */
  kindBin?: string;
  /** The environment PATH is searched in and `go install` runs with (`childEnv(config)`). */
  env: NodeJS.ProcessEnv;
  install?: boolean;
}): Promise<{ path: string; source: "env" | "cache" | "path" | "build" } | undefined> {
  const env = o.env;
  if (o.kindBin) return { path: o.kindBin, source: "env" };
  const hit = await cached(o.cacheDir, "kind", o.version);
  if (hit) return { path: hit.path, source: "cache" };
  if (onPath("kind", env) && !o.install) return { path: "kind", source: "path" };
  if (!o.install) return undefined;
  if (!(await goAvailable(env)))
    throw new HarnessError(
      `cannot install kind ${o.version}: no Go toolchain on PATH; install kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation) or set KIND_BIN`,
      { exitCode: 2 },
    );
  return withLock(o.cacheDir, `kind-${o.version}`, async () => {
    const again = await cached(o.cacheDir, "kind", o.version);
    if (again) return { path: again.path, source: "cache" as const };
    const t0 = Date.now();
    await mkdir(o.cacheDir, { recursive: true });
    const gobin = await mkdtemp(join(o.cacheDir, ".kind-build-"));
    try {
      log.info("provision", `kind ${o.version}: go install sigs.k8s.io/kind@${o.version}`);
      const genv = { ...(await goEnv(env)), GOBIN: gobin };
      await new Promise<void>((resolve, reject) => {
        const c = spawn("go", ["install", `sigs.k8s.io/kind@${o.version}`], { env: genv, stdio: ["ignore", "ignore", "pipe"] });
        let err = "";
        c.stderr.on("data", (d: Buffer) => (err += d));
        c.on("error", reject);
        c.on("exit", (code) =>
          code === 0
            ? resolve()
            : reject(new HarnessError(`go install sigs.k8s.io/kind@${o.version} failed`, { details: err.slice(-2000) })),
        );
      });
      const path = await install(o.cacheDir, "kind", o.version, join(gobin, "kind"), "build");
      log.info("provision", `kind ${o.version}: built in ${formatDuration(Date.now() - t0)}`);
      return { path, source: "build" as const };
    } finally {
      await rm(gobin, { recursive: true, force: true });
    }
  });
}

function onPath(cmd: string, env: NodeJS.ProcessEnv): boolean {
  return (env.PATH ?? "").split(delimiter).some((d) => d && existsSync(join(d, cmd)));
}
