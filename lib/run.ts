import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startVitest } from "vitest/node";
import { PACKAGE_ROOT, type Config } from "./config.ts";
import { HarnessError } from "./errors.ts";
import { redact } from "./redact.ts";
import { ResultsReporter, type RunResults } from "./report/reporter.ts";

/**
 * Runs vitest projects in this process (so the conformance globalSetup, and its teardown on
 * Ctrl-C, live here) with the default, JUnit and results reporters. The verdict is ours, not
 * vitest's exit code alone: zero cases executed is a failure, never a pass.
 */
export async function runVitest(config: Config, projects: string[], filters: string[] = []): Promise<RunResults> {
  const results = new ResultsReporter(config.reportsDir);
  const junit = join(config.reportsDir, "junit.xml");
  const vitest = await startVitest("test", filters, {
    run: true,
    watch: false,
    project: projects,
    reporters: ["default", ["junit", { outputFile: junit }], results],
    passWithNoTests: false,
  });
  await vitest.close();
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
export function verdict(r: Pick<RunResults, "totals">, label: string): number {
  const { passed, failed, skipped } = r.totals;
  process.stdout.write(`\n${label}: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}\n`);
  if (passed + failed === 0) {
    process.stderr.write("error: no test case was executed; that is not a pass\n");
    return 1;
  }
  return failed === 0 ? 0 : 1;
}

/**
 * `npm run conformance` in a child process (its own vitest, its own target unless
 * VKC_TARGET_INFO says otherwise), output to `<reportsDir>/output.log`. `onChild` receives the
 * process so a caller's shutdown hook can stop it. Results are undefined when the run wrote none.
 */
export async function runConformanceChild(o: {
  reportsDir: string;
  filters: string[];
  env: Record<string, string>;
  onChild?: (child: ChildProcess) => void;
}): Promise<{ code: number | null; results: RunResults | undefined; logFile: string }> {
  await mkdir(o.reportsDir, { recursive: true });
  const logFile = join(o.reportsDir, "output.log");
  const out = createWriteStream(logFile);
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", join(PACKAGE_ROOT, "scripts", "conformance.ts"), "--reports", o.reportsDir, ...o.filters],
      { cwd: process.cwd(), env: { ...process.env, ...o.env }, stdio: ["ignore", "pipe", "pipe"] },
    );
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
