import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startVitest, type TestModule, type Vitest } from "vitest/node";
import { childEnv, CODE_ROOT, COMPILED, withVitestEnv, type Config } from "./config.ts";
import { describeError, HarnessError, UsageError } from "./errors.ts";
import { onExitSync, onShutdown, ownSignals } from "./cleanup.ts";
import { log } from "./log.ts";
import { pidAlive } from "./process.ts";
import { redact } from "./redact.ts";
import type { StartedTarget } from "./lifecycle/start.ts";
import { describeDeath, type ComponentDeath } from "./lifecycle/watch.ts";
import { ResultsReporter, type RunResults } from "./report/reporter.ts";

/** Exit code of a run whose target could not start: not a case that failed, not bad input. */
const TARGET_FAILED = 3;

/**
 * The one way a script gets a target for its suites: starts it (the script owns it from then on,
 * and stops it) and says so in one line with exit code 3 when it cannot start.
 */
export async function startOwnedTarget(config: Config, start: (c: Config) => Promise<StartedTarget>): Promise<StartedTarget> {
  try {
    const target = await start(config);
    // Ctrl-C: the owner's stop runs (the existing target's sweep of what the suites left, kind's
    // cluster removal), after the runner has stopped; a normal stop takes the hook away again.
    let stopped: Promise<void> | undefined;
    const original = target.stop.bind(target);
    const stop = () => (stopped ??= original());
    const unhook = onShutdown(stop);
    return Object.assign(target, {
      stop: () => {
        unhook();
        return stop();
      },
    });
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const details = err instanceof HarnessError ? err.details : undefined;
    throw new HarnessError(`target "${config.target}" could not start: ${describeError(err)}`, {
      cause: err,
      exitCode: TARGET_FAILED,
      ...(details ? { details } : {}),
    });
  }
}

/**
 * Runs vitest projects in this process with the default, JUnit and results reporters. The
 * conformance project's globalSetup only attaches: to `target`, which the caller owns (its
 * TargetInfo is handed over in a 0600 file), or to `config.targetInfoFile` (env:up). The verdict
 * is ours, not vitest's exit code alone: zero cases executed is a failure, never a pass.
 */
export async function runVitest(
  config: Config,
  projects: string[],
  filters: string[] = [],
  o: { target?: Pick<StartedTarget, "info" | "watch">; allowNoTests?: boolean } = {},
): Promise<RunResults> {
  // A component that dies mid-run cancels the run (tests in flight end, no new file starts) and
  // becomes the verdict's first line, instead of a minute of connection errors.
  let died: ComponentDeath | undefined;
  let running: Vitest | undefined;
  let active = true;
  o.target?.watch?.((d) => {
    if (died || !active) return;
    died = d;
    log.error("run", describeDeath(d));
    void running?.cancelCurrentRun("test-failure");
  });
  let handover: string | undefined;
  let infoFile = config.targetInfoFile;
  if (o.target) {
    handover = await mkdtemp(join(tmpdir(), "vkc-handover-"));
    infoFile = join(handover, "target.json");
    await writeFile(infoFile, JSON.stringify(o.target.info), { mode: 0o600 });
  }
  const dropHandover = () => (handover ? rm(handover, { recursive: true, force: true }) : Promise.resolve());
  const unhookHandover = onShutdown(dropHandover);
  const unhookHandoverSync = onExitSync(() => handover && rmSync(handover, { recursive: true, force: true }));
  // vitest's forks pool keeps module copies in TMPDIR/<random> dirs, one per project, which its
  // close() removes once. After a Ctrl-C under load that close can outlast our wait, or its remove
  // can race a copy still being written (ENOTEMPTY, which it ignores): a CI run was left with one.
  // So we remove them again once the workers are gone, and at exit.
  const dropVitestTemp = () => {
    if (!running) return;
    const v = running;
    const dirs = new Set([v.getRootProject().tmpDir, ...v.projects.map((p) => p.tmpDir)]);
    for (const d of dirs) {
      if (!d || !existsSync(d)) continue;
      try {
        rmSync(d, { recursive: true, force: true, maxRetries: 3 });
        log.debug("run", `removed vitest's temp dir ${d} (its close had not)`);
      } catch (err) {
        log.warn("run", `could not remove vitest's temp dir ${d}: ${describeError(err)}`);
      }
    }
  };
  const unhookVitestTemp = onExitSync(dropVitestTemp);
  // Ctrl-C: stop the runner (no worker creates anything any more) before targets are torn down.
  const unhook = onShutdown(
    async () => {
      await Promise.race([running?.close(), new Promise((r) => setTimeout(r, 3000).unref())]);
      await stopChildren((cmdline) => cmdline.includes("vitest"));
      dropVitestTemp();
    },
    { first: true },
  );
  const results = new ResultsReporter(config.reportsDir, () => (died ? describeDeath(died) : undefined));
  const junit = join(config.reportsDir, "junit.xml");
  // The globalSetup, which vitest loads in this process, reads where to attach from the
  // environment of the run (its workers inherit it): the config's, with that file.
  const vitestEnv = childEnv(config, { VKC_TARGET_INFO: infoFile });
  const vitest = await withVitestEnv(vitestEnv, () =>
    startVitest("test", filters, {
      // The harness's own config and suites (the repository's, or the installed package's dist/),
      // whatever the user's working directory is.
      root: CODE_ROOT,
      config: join(CODE_ROOT, `vitest.config.${COMPILED ? "js" : "ts"}`),
      // The installed package's config is JavaScript: imported as it is, not bundled into
      // node_modules/.vite-temp (a Job's read-only root filesystem has no room for that).
      ...(COMPILED ? { configLoader: "native" as const } : {}),
      run: true,
      watch: false,
      project: projects,
      reporters: [
        "default",
        ["junit", { outputFile: junit }],
        results,
        {
          onInit: (v: Vitest) => {
            running = v;
            ownSignals();
            if (died) void v.cancelCurrentRun("test-failure"); // a component died while vitest started
          },
        },
      ],
      passWithNoTests: o.allowNoTests === true,
    }),
  ).finally(() => {
    active = false;
    unhook();
  });
  await vitest.close();
  unhookVitestTemp();
  unhookHandover();
  unhookHandoverSync();
  await dropHandover();
  // The JUnit reporter writes what assertions printed; pass it through redaction too.
  try {
    await writeFile(junit, redact(await readFile(junit, "utf8")));
  } catch {
    // no junit file: the run failed before reporting; the results check below says so
  }
  const r = results.results;
  if (!r) throw new HarnessError("vitest finished without reporting results (see the output above)");
  return r;
}

/** The plain closing line CI reads, then the exit code: 0 only if cases ran and none failed. */
export function verdict(r: Pick<RunResults, "totals" | "aborted">, label: string): number {
  const { passed, failed, skipped } = r.totals;
  process.stdout.write(`\n${label}: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}\n`);
  if (r.aborted) {
    process.stderr.write(`error: ${r.aborted}\n`);
    return 1;
  }
  if (passed + failed === 0) {
    process.stderr.write("error: no test case was executed; that is not a pass\n");
    return 1;
  }
  return failed === 0 ? 0 : 1;
}

/**
 * `npm run conformance` in a child process (its own vitest, its own target unless
 * VKC_TARGET_INFO says otherwise), output to `<reportsDir>/output.log`. Its environment is the
 * config's plus `env`. `onChild` receives the process so a caller's shutdown hook can stop it.
 * Results are undefined when the run wrote none.
 */
export async function runConformanceChild(o: {
  config: Pick<Config, "env">;
  reportsDir: string;
  filters: string[];
  env: Record<string, string>;
  onChild?: (child: ChildProcess) => void;
  /** Another script of scripts/ to run the same way (npm run bench times `matrix.ts` too). */
  script?: string;
}): Promise<{ code: number | null; results: RunResults | undefined; logFile: string }> {
  await mkdir(o.reportsDir, { recursive: true });
  const logFile = join(o.reportsDir, "output.log");
  const out = createWriteStream(logFile);
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, [...scriptArgv(o.script ?? "conformance.ts"), "--reports", o.reportsDir, ...o.filters], {
      cwd: process.cwd(),
      env: childEnv(o.config, o.env),
      stdio: ["ignore", "pipe", "pipe"],
    });
    o.onChild?.(child);
    child.stdout!.pipe(out, { end: false });
    child.stderr!.pipe(out, { end: false });
    child.on("exit", resolve);
  });
  out.end();
  try {
    return { code, results: JSON.parse(await readFile(join(o.reportsDir, "results.json"), "utf8")) as RunResults, logFile };
  } catch {
    return { code, results: undefined, logFile };
  }
}

/**
 * Node's arguments to run a script of scripts/ (named `conformance.ts`): the source under tsx from
 * the repository, the compiled `.js` from the package's build (no TypeScript loader there).
 */
export function scriptArgv(script: string): string[] {
  const file = join(CODE_ROOT, "scripts", script);
  return COMPILED ? [file.replace(/\.ts$/, ".js")] : ["--import", "tsx", file];
}

/**
 * Stops this process's child processes whose command line matches (vitest's workers, which
 * outlive a closing runner by a moment otherwise): SIGTERM, then SIGKILL after 2 s. Linux /proc
 * only; elsewhere the workers end when their IPC channel closes.
 */
async function stopChildren(match: (cmdline: string) => boolean): Promise<void> {
  const children = (): number[] => {
    const out: number[] = [];
    for (const name of existsSync("/proc") ? readdirSync("/proc").filter((n) => /^\d+$/.test(n)) : []) {
      try {
        const stat = readFileSync(`/proc/${name}/stat`, "utf8");
        const ppid = Number(/^\d+ \(.*\) \S (\d+)/.exec(stat)?.[1]);
        if (ppid === process.pid && match(readFileSync(`/proc/${name}/cmdline`, "utf8"))) out.push(Number(name));
      } catch {
        // exited meanwhile
      }
    }
    return out;
  };
  const signal = (pids: number[], sig: NodeJS.Signals) => {
    for (const pid of pids) {
      try {
        process.kill(pid, sig);
      } catch {
        // gone
      }
    }
  };
  let left = children();
  signal(left, "SIGTERM");
  for (let i = 0; i < 40 && (left = children().filter(pidAlive)).length; i++) await new Promise((r) => setTimeout(r, 50));
  signal(left, "SIGKILL");
}
