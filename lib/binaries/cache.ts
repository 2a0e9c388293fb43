import { randomBytes } from "node:crypto";
import { chmod, mkdir, open, readFile, rename, rm, stat, writeFile, copyFile } from "node:fs/promises";
import { join } from "node:path";
import { onShutdown } from "../cleanup.ts";
import { log } from "../log.ts";
import { pidAlive } from "../process.ts";
import type { Component } from "./pins.ts";

/** What the cache holds: the local target's components, and the kind CLI for the kind target. */
export type CachedTool = Component | "kind";

export type Source = "env" | "kubebuilder-assets" | "cache" | "download" | "registry" | "build";

interface Marker {
  component: CachedTool;
  version: string;
  source: Source;
  size: number;
  mtimeMs: number;
  installedAt: string;
}

export function cachePath(cacheDir: string, component: CachedTool, version: string): string {
  return join(cacheDir, component, version, component);
}

/**
 * A cached binary, if its install completed. The marker is written last, inside the temp dir
 * that is renamed into place, so a half-written binary never has one. Size and mtime (not a
 * hash: hashing 360 MB on every run would cost seconds) must still match the marker.
 */
export async function cached(
  cacheDir: string,
  component: CachedTool,
  version: string,
): Promise<{ path: string; source: Source } | undefined> {
  const path = cachePath(cacheDir, component, version);
  try {
    const marker = JSON.parse(await readFile(join(cacheDir, component, version, ".complete"), "utf8")) as Marker;
    const st = await stat(path);
    if (st.size !== marker.size || Math.round(st.mtimeMs) !== Math.round(marker.mtimeMs)) return undefined;
    return { path, source: marker.source };
  } catch {
    return undefined;
  }
}

/** Installs a binary (bytes or a file) into the cache atomically. Returns its cached path. */
export async function install(
  cacheDir: string,
  component: CachedTool,
  version: string,
  from: Buffer | string,
  source: Source,
): Promise<string> {
  const parent = join(cacheDir, component);
  await mkdir(parent, { recursive: true });
  const tmp = join(parent, `.${version}.tmp-${randomBytes(4).toString("hex")}`);
  await mkdir(tmp);
  try {
    const bin = join(tmp, component);
    if (typeof from === "string") {
      // rename when on the same filesystem (a build under the cache), copy otherwise
      await rename(from, bin).catch(() => copyFile(from, bin));
    } else {
      await writeFile(bin, from);
    }
    await chmod(bin, 0o755);
    const st = await stat(bin);
    const marker: Marker = { component, version, source, size: st.size, mtimeMs: st.mtimeMs, installedAt: new Date().toISOString() };
    await writeFile(join(tmp, ".complete"), JSON.stringify(marker, null, 2));
    const final = join(parent, version);
    // A final dir without a valid marker is debris (a binary changed by hand): replace it.
    if (!(await cached(cacheDir, component, version))) await rm(final, { recursive: true, force: true });
    try {
      await rename(tmp, final);
    } catch (err) {
      // Another run installed it first: keep theirs.
      if (!(await cached(cacheDir, component, version))) throw err;
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return cachePath(cacheDir, component, version);
}

/**
 * One provisioner per product and version at a time across processes: an O_EXCL lock file
 * holding the owner's pid; a lock whose owner is dead is stale and taken over.
 */
export async function withLock<T>(
  cacheDir: string,
  name: string,
  fn: () => Promise<T>,
  o: { pollMs?: number; signal?: AbortSignal } = {},
): Promise<T> {
  const dir = join(cacheDir, "locks");
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${name}.lock`);
  let said = false;
  for (;;) {
    try {
      const fh = await open(file, "wx");
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const owner = Number((await readFile(file, "utf8").catch(() => "")).trim());
      if (!owner || !pidAlive(owner)) {
        await rm(file, { force: true });
        continue;
      }
      if (!said) {
        log.info("provision", `${name}: another run (pid ${owner}) is provisioning it; waiting`);
        said = true;
      }
      if (o.signal?.aborted) throw new Error(`aborted while waiting for ${name}`);
      await new Promise((r) => setTimeout(r, o.pollMs ?? 2000));
    }
  }
  // Ctrl-C exits without running `finally`: the lock goes with the shutdown hooks too.
  const unlisten = onShutdown(() => rm(file, { force: true }));
  try {
    return await fn();
  } finally {
    unlisten();
    await rm(file, { force: true });
  }
}
