import { spawn } from "node:child_process";
import { cpSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../../lib/config.ts";
import { pidAlive } from "../../lib/process.ts";

/** Runs one of our scripts as a user would (node + tsx), collecting its output. */
export function script(name: string, args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ["--import", "tsx", join(PACKAGE_ROOT, "scripts", name), ...args], {
    cwd: PACKAGE_ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const exited = new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
  return { child, exited, output: () => output };
}

/** Waits until the script printed `pattern`; fails if it exits first or takes too long. */
export async function waitForOutput(run: ReturnType<typeof script>, pattern: RegExp, timeoutMs = 120_000): Promise<void> {
  const t0 = Date.now();
  while (!pattern.test(run.output())) {
    if (run.child.exitCode !== null) throw new Error(`exited (${run.child.exitCode}) before printing ${pattern}:\n${run.output()}`);
    if (Date.now() - t0 > timeoutMs) throw new Error(`no ${pattern} after ${timeoutMs}ms:\n${run.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Live processes whose command line names `needle` (a run id: its work dir is in the components' flags) or whose pid is given. */
export function liveProcesses(needle: string, pids: number[] = []): number[] {
  const found = new Set(pids.filter(pidAlive));
  for (const name of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    try {
      if (Number(name) !== process.pid && readFileSync(`/proc/${name}/cmdline`, "utf8").includes(needle) && pidAlive(Number(name)))
        found.add(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return [...found];
}

export interface ProcInfo {
  pid: number;
  comm: string;
  cmdline: string;
}

/** Every live process below `pid` (children, their children...), from /proc. */
export function descendants(pid: number): ProcInfo[] {
  const parent = new Map<number, number>();
  const info = new Map<number, ProcInfo>();
  for (const name of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const m = /^(\d+) \((.*)\) (\S) (\d+)/.exec(stat);
      if (!m || m[3] === "Z") continue;
      parent.set(Number(m[1]), Number(m[4]));
      info.set(Number(m[1]), {
        pid: Number(m[1]),
        comm: m[2]!,
        cmdline: readFileSync(`/proc/${name}/cmdline`, "utf8").replace(/\0/g, " "),
      });
    } catch {
      // exited meanwhile
    }
  }
  const out: ProcInfo[] = [];
  const walk = (p: number) => {
    for (const [child, pp] of parent) {
      if (pp === p && !out.some((o) => o.pid === child)) {
        out.push(info.get(child)!);
        walk(child);
      }
    }
  };
  walk(pid);
  return out;
}

/** Polls until `fn` returns a value; fails after `timeoutMs`. */
export async function until<T>(what: string, fn: () => T | undefined, timeoutMs = 60_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A copy of the package's fixtures/ under `dir` with one more case file (YAML lines); returns the copy's path. */
export function fixturesWithCase(dir: string, file: string, yaml: string[]): string {
  const fixtures = join(dir, "fixtures");
  cpSync(join(PACKAGE_ROOT, "fixtures"), fixtures, { recursive: true });
  writeFileSync(join(fixtures, "cases", file), yaml.join("\n") + "\n");
  return fixtures;
}

/** A 0600 kubeconfig whose cluster does not answer (https://127.0.0.1:1): for runs that must fail before any cluster call. */
export function writeUnreachableKubeconfig(path: string): string {
  writeFileSync(
    path,
    [
      "apiVersion: v1",
      "kind: Config",
      'clusters: [{ name: none, cluster: { server: "https://127.0.0.1:1" } }]',
      "users: [{ name: none, user: { token: not-used } }]",
      "contexts: [{ name: none, context: { cluster: none, user: none } }]",
      "current-context: none",
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  return path;
}
