import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { copyFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { onShutdown } from "../cleanup.ts";
import { HarnessError } from "../errors.ts";
import { formatDuration, log } from "../log.ts";
import { expand, type Component, type Pins, type ProductPin } from "./pins.ts";

/**
 * Builds pinned components from Go modules in a throwaway wrapper module: the upstream module
 * is required as a dependency, its go.sum is carried over (so downloads are checked against
 * the release's own hashes), and its replace directives are translated:
 *   - kubernetes: each `k8s.io/X => ./staging/src/k8s.io/X` becomes `k8s.io/X => k8s.io/X v0.<minor>.<patch>`
 *   - vault: non-local replaces are kept; the local ones (./api, ./sdk) are dropped and the modules
 *     listed in `pinRequired` are pinned to exactly the version Vault's go.mod requires.
 */
export function wrapperGoMod(product: keyof Pins, pin: ProductPin, upstreamGoMod: string): string {
  const b = pin.build!;
  const version = pin.version;
  const moduleVersion = expand(b.moduleVersion, version, "");
  const lines = ["module vkc.local/build", "", "go 1.26.0", "", `require ${b.module} ${moduleVersion}`, ""];
  const replaces = parseReplaces(upstreamGoMod);
  if (product === "kubernetes") {
    const staging = expand(b.stagingVersion ?? "v0.{minor}.{patch}", version, "");
    for (const r of replaces) if (r.to.startsWith("./staging/")) lines.push(`replace ${r.from} => ${r.from} ${staging}`);
  } else {
    for (const r of replaces)
      if (!r.to.startsWith("./") && !r.to.startsWith("../"))
        lines.push(`replace ${r.from}${r.fromVersion ? ` ${r.fromVersion}` : ""} => ${r.to}${r.toVersion ? ` ${r.toVersion}` : ""}`);
    for (const mod of b.pinRequired ?? []) {
      const v = requiredVersion(upstreamGoMod, mod);
      if (!v) throw new HarnessError(`${b.module}'s go.mod does not require ${mod}`);
      lines.push(`replace ${mod} => ${mod} ${v}`);
    }
  }
  return lines.join("\n") + "\n";
}

interface Replace {
  from: string;
  fromVersion?: string;
  to: string;
  toVersion?: string;
}

export function parseReplaces(goMod: string): Replace[] {
  const out: Replace[] = [];
  const parse = (line: string) => {
    const m = /^\s*(\S+)(?:\s+(v\S+))?\s+=>\s+(\S+)(?:\s+(v\S+))?\s*(?:\/\/.*)?$/.exec(line);
    if (m) out.push({ from: m[1]!, fromVersion: m[2], to: m[3]!, toVersion: m[4] });
  };
  let inBlock = false;
  for (const raw of goMod.split("\n")) {
    const line = raw.replace(/\/\/.*$/, "").trimEnd();
    if (inBlock) {
      if (/^\s*\)/.test(line)) inBlock = false;
      else parse(line);
    } else if (/^replace\s*\($/.test(line.trim())) {
      inBlock = true;
    } else if (line.startsWith("replace ")) {
      parse(line.slice("replace ".length));
    }
  }
  return out;
}

export function requiredVersion(goMod: string, mod: string): string | undefined {
  const esc = mod.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`^\\s*(?:require\\s+)?${esc}\\s+(v\\S+)`, "m").exec(goMod)?.[1];
}

export function ldflags(product: keyof Pins, version: string): string {
  const flags = ["-s", "-w"];
  if (product === "kubernetes") {
    const [major, minor] = version.split(".");
    for (const pkg of ["k8s.io/component-base/version", "k8s.io/client-go/pkg/version"]) {
      flags.push(
        `-X ${pkg}.gitVersion=v${version}`,
        `-X ${pkg}.gitMajor=${major}`,
        `-X ${pkg}.gitMinor=${minor}`,
        `-X ${pkg}.gitTreeState=clean`,
      );
    }
  }
  return flags.join(" ");
}

let sumdbReachable: Promise<boolean> | undefined;
async function checksumDbReachable(): Promise<boolean> {
  sumdbReachable ??= fetch("https://sum.golang.org/lookup/golang.org/x/text@v0.3.0", { signal: AbortSignal.timeout(5000) })
    .then((r) => r.ok)
    .catch(() => false);
  return sumdbReachable;
}

/**
 * Go's environment for the build. The user's own GOSUMDB/GONOSUMDB/GOPRIVATE/GOFLAGS win; when
 * they set none and the checksum database is unreachable (as on our machines), GOSUMDB=off:
 * the carried go.sum still pins every module the release itself used.
 */
let warned = false;
export async function goEnv(env: NodeJS.ProcessEnv): Promise<NodeJS.ProcessEnv> {
  const out: NodeJS.ProcessEnv = {
    ...env,
    CGO_ENABLED: "0",
    GOTOOLCHAIN: env.GOTOOLCHAIN ?? "local",
    GOFLAGS: [env.GOFLAGS, "-mod=mod"].filter(Boolean).join(" "),
  };
  const userChoice = ["GOSUMDB", "GONOSUMDB", "GOPRIVATE", "GONOSUMCHECK"].some((k) => env[k]) || /-insecure/.test(env.GOFLAGS ?? "");
  if (!userChoice && !(await checksumDbReachable())) {
    if (!warned)
      log.warn(
        "provision",
        "the Go checksum database (sum.golang.org) is unreachable: building with GOSUMDB=off; downloads are still checked against the carried go.sum",
      );
    warned = true;
    out.GOSUMDB = "off";
  }
  return out;
}

function run(
  cmd: string,
  args: string[],
  o: { cwd: string; env: NodeJS.ProcessEnv; logFile: string; signal?: AbortSignal },
): Promise<string> {
  return new Promise((resolve, reject) => {
    const out = createWriteStream(o.logFile, { flags: "a" });
    out.write(`\n$ ${cmd} ${args.join(" ")}\n`);
    const child = spawn(cmd, args, { cwd: o.cwd, env: o.env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d;
      out.write(d);
    });
    child.stderr.on("data", (d: Buffer) => out.write(d));
    const kill = () => {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // gone
      }
    };
    const unlisten = onShutdown(async () => kill());
    o.signal?.addEventListener("abort", kill, { once: true });
    child.on("error", (err) => {
      unlisten();
      out.end();
      reject(err);
    });
    child.on("exit", (code, sig) => {
      unlisten();
      out.end(() => (code === 0 ? resolve(stdout) : reject(new Error(`${cmd} ${args[0]} exited with ${code ?? sig}`))));
    });
  });
}

async function tail(file: string, n = 20): Promise<string> {
  const text = await readFile(file, "utf8").catch(() => "");
  return text.trimEnd().split("\n").slice(-n).join("\n");
}

export async function goAvailable(env: NodeJS.ProcessEnv): Promise<boolean> {
  return new Promise((resolve) => {
    const c = spawn("go", ["version"], { env, stdio: "ignore" });
    c.on("error", () => resolve(false));
    c.on("exit", (code) => resolve(code === 0));
  });
}

/**
 * Builds `components` of `product` and returns the paths of the built binaries (inside a
 * temp build dir under the cache, on the cache's filesystem so install() can rename them).
 * Progress on stderr every 20 s; the full go output goes to <cacheDir>/logs/.
 */
export async function goBuild(
  product: keyof Pins,
  pin: ProductPin,
  components: Component[],
  o: { cacheDir: string; env: NodeJS.ProcessEnv; signal?: AbortSignal },
): Promise<{ binaries: Map<Component, string>; cleanup: () => Promise<void> }> {
  const b = pin.build;
  if (!b) throw new HarnessError(`${product} has no Go build recipe`);
  const version = pin.version;
  const logDir = join(o.cacheDir, "logs");
  await mkdir(logDir, { recursive: true });
  const logFile = join(logDir, `${product}-${version}.log`);
  const work = join(o.cacheDir, ".build", `${product}-${version}-${randomBytes(4).toString("hex")}`);
  await mkdir(join(work, "bin"), { recursive: true });
  // On a signal this runs beside the hook that kills the build's process group: a compiler that
  // has not died yet may still write here, so the removal retries (ENOTEMPTY) for a while.
  const cleanup = () => rm(work, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
  const unlisten = onShutdown(cleanup);
  const env = await goEnv(o.env);
  const started = Date.now();
  let step = "download modules";
  const label = `${product} ${version}`;
  log.info("provision", `${label}: building ${components.join(", ")} from Go modules (log: ${logFile})`);
  const ticker = setInterval(() => log.info("provision", `${label}: ${step} (${formatDuration(Date.now() - started)} elapsed)`), 20_000);
  try {
    const moduleVersion = expand(b.moduleVersion, version, "");
    const info = JSON.parse(
      await run("go", ["mod", "download", "-json", `${b.module}@${moduleVersion}`], { cwd: work, env, logFile, signal: o.signal }),
    ) as { Dir?: string; GoMod?: string; Error?: string };
    if (info.Error || !info.GoMod || !info.Dir) throw new Error(info.Error ?? "go mod download gave no module path");
    await writeFile(join(work, "go.mod"), wrapperGoMod(product, pin, await readFile(info.GoMod, "utf8")));
    await copyFile(join(info.Dir, "go.sum"), join(work, "go.sum")).catch(() => undefined);
    const pkgs = components.map((c) => {
      const p = b.packages[c];
      if (!p) throw new HarnessError(`${product} has no package for ${c}`);
      return p;
    });
    await writeFile(
      join(work, "tools.go"),
      `//go:build tools\n\npackage tools\n\nimport (\n${pkgs.map((p) => `\t_ "${p}"\n`).join("")})\n`,
    );
    await run("go", ["get", `${b.module}@${moduleVersion}`], { cwd: work, env, logFile, signal: o.signal });
    step = "go build";
    const binaries = new Map<Component, string>();
    if (components.length === 1) {
      const out = join(work, "bin", components[0]!);
      await run("go", ["build", "-trimpath", "-ldflags", ldflags(product, version), "-o", out, pkgs[0]!], {
        cwd: work,
        env,
        logFile,
        signal: o.signal,
      });
      binaries.set(components[0]!, out);
    } else {
      await run("go", ["build", "-trimpath", "-ldflags", ldflags(product, version), "-o", join(work, "bin") + "/", ...pkgs], {
        cwd: work,
        env,
        logFile,
        signal: o.signal,
      });
      for (const c of components) binaries.set(c, join(work, "bin", c));
    }
    log.info("provision", `${label}: built in ${formatDuration(Date.now() - started)}`);
    return { binaries, cleanup };
  } catch (err) {
    await cleanup();
    throw new HarnessError(`building ${label} failed during "${step}": ${(err as Error).message} (full log: ${logFile})`, {
      cause: err,
      details: await tail(logFile),
    });
  } finally {
    clearInterval(ticker);
    unlisten();
  }
}
