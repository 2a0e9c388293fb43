import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../config.ts";
import { UsageError } from "../../errors.ts";
import type { CaseResult, RunResults } from "../../report/reporter.ts";
import { diffResults, formatResultsDiff, loadResults, resultsDiffExitCode, resultsDiffHeadline } from "../results-diff.ts";

type Status = CaseResult["status"];

function c(id: string, status: Status, extra: Partial<CaseResult> = {}): CaseResult {
  return { id, project: "conformance", suite: "s", name: id, status, durationMs: 1, ...extra };
}

function run(cases: CaseResult[], extra: Partial<RunResults> = {}): RunResults {
  const totals = { passed: 0, failed: 0, skipped: 0 };
  for (const k of cases) totals[k.status]++;
  return {
    startedAt: "2026-01-01T00:00:00.000Z",
    durationMs: 1000,
    target: "local",
    flavor: "vault",
    versions: { kubernetes: "v1.36.3", vault: "1.21.1" },
    runId: "run-a",
    totals,
    cases,
    unhandledErrors: [],
    ...extra,
  };
}

describe("diffResults", () => {
  const before = run([
    c("a::still passes", "passed"),
    c("a::breaks", "passed"),
    c("a::vanishes", "passed"),
    c("a::gets fixed", "failed", { error: "old" }),
    c("a::still fails", "failed", { error: "x" }),
    c("a::was skipped now passes", "skipped"),
    c("a::was passing now skipped", "passed"),
    c("a::skipped then fails", "skipped"),
    c("a::failing then removed", "failed"),
  ]);
  const after = run(
    [
      c("a::still passes", "passed"),
      c("a::breaks", "failed", { error: "expected 200, got 403\n  at somewhere.ts:1" }),
      c("a::gets fixed", "passed"),
      c("a::still fails", "failed", { error: "y" }),
      c("a::was skipped now passes", "passed"),
      c("a::was passing now skipped", "skipped"),
      c("a::skipped then fails", "failed", { error: "boom" }),
      c("b::brand new passing", "passed"),
      c("b::brand new failing", "failed", { error: "nope" }),
    ],
    { runId: "run-b", versions: { kubernetes: "v1.36.3", vault: "1.21.4", etcd: "3.6.8" } },
  );
  const d = diffResults(before, after);

  it("classifies every kind of change", () => {
    expect(d.regressions).toEqual([
      { id: "a::breaks", before: "passed", after: "failed", error: "expected 200, got 403" },
      { id: "a::vanishes", before: "passed" },
    ]);
    expect(d.fixes).toEqual([{ id: "a::gets fixed", before: "failed", after: "passed" }]);
    expect(d.newFailures).toEqual([
      { id: "a::skipped then fails", before: "skipped", after: "failed", error: "boom" },
      { id: "b::brand new failing", after: "failed", error: "nope" },
    ]);
    expect(d.added).toEqual([{ id: "b::brand new passing", after: "passed" }]);
    expect(d.removed).toEqual([{ id: "a::failing then removed", before: "failed" }]);
    expect(d.otherChanges).toEqual([
      { id: "a::was passing now skipped", before: "passed", after: "skipped" },
      { id: "a::was skipped now passes", before: "skipped", after: "passed" },
    ]);
    // "still passes" and "still fails" (a different error is not a status change)
    expect(d.unchanged).toBe(2);
  });

  it("lists only the versions that differ, and both runs' context", () => {
    expect(d.context.versions).toEqual([
      { component: "vault", before: "1.21.1", after: "1.21.4" },
      { component: "etcd", after: "3.6.8" },
    ]);
    expect(d.context.before).toMatchObject({ target: "local", flavor: "vault", runId: "run-a" });
    expect(d.context.after).toMatchObject({ runId: "run-b" });
  });

  it("keeps only the first line of the after error, at most 200 characters", () => {
    const long = "e".repeat(500);
    const x = diffResults(run([c("t", "passed")]), run([c("t", "failed", { error: `\n${long}\nsecond line` })]));
    expect(x.regressions[0]!.error!.length).toBeLessThanOrEqual(200);
    expect(x.regressions[0]!.error).toMatch(/^e+…$/);
  });

  it("keys cases by id plus flavor", () => {
    const merged = (vault: Status, openbao: Status) =>
      run([c("s::login", vault, { flavor: "vault" }), c("s::login", openbao, { flavor: "openbao" })], { flavor: undefined });
    const x = diffResults(merged("passed", "passed"), merged("passed", "failed"));
    expect(x.regressions).toEqual([{ id: "s::login", flavor: "openbao", before: "passed", after: "failed" }]);
    expect(x.unchanged).toBe(1);

    // A case with no flavor is a different case from the same id with a flavor.
    const y = diffResults(run([c("s::login", "passed")]), run([c("s::login", "passed", { flavor: "vault" })]));
    expect(y.regressions).toEqual([{ id: "s::login", before: "passed" }]);
    expect(y.added).toEqual([{ id: "s::login", flavor: "vault", after: "passed" }]);
  });

  it("takes the worse status when a file holds the same case twice", () => {
    const x = diffResults(run([c("t", "passed")]), run([c("t", "passed"), c("t", "failed")]));
    expect(x.regressions).toHaveLength(1);
  });

  it("falls back to the cases' versions when the run has none (merged results)", () => {
    const merged = (v: string) =>
      run(
        [
          c("t", "passed", { flavor: "vault", versions: { vault: v } }),
          c("t", "passed", { flavor: "openbao", versions: { bao: "2.4.0" } }),
        ],
        {
          versions: undefined,
        },
      );
    expect(diffResults(merged("1.21.1"), merged("1.21.4")).context.versions).toEqual([
      { component: "vault", before: "1.21.1", after: "1.21.4" },
    ]);
  });
});

describe("resultsDiffExitCode", () => {
  it("is 1 on a regression", () => {
    expect(resultsDiffExitCode(diffResults(run([c("t", "passed")]), run([c("t", "failed")])))).toBe(1);
  });
  it("is 1 when a passing case disappears", () => {
    expect(resultsDiffExitCode(diffResults(run([c("t", "passed")]), run([])))).toBe(1);
  });
  it("is 1 on a new failure", () => {
    expect(resultsDiffExitCode(diffResults(run([]), run([c("t", "failed")])))).toBe(1);
  });
  it("is 0 for fixes, additions, removals, skips and unchanged failures", () => {
    const before = run([c("fix", "failed"), c("gone", "failed"), c("skip", "passed"), c("bad", "failed")]);
    const after = run([c("fix", "passed"), c("new", "passed"), c("skip", "skipped"), c("bad", "failed")]);
    expect(resultsDiffExitCode(diffResults(before, after))).toBe(0);
  });
});

describe("formatResultsDiff", () => {
  const before = run([c("s::a", "passed"), c("s::b", "passed"), c("s::c", "failed"), c("s::d", "passed")]);
  const after = run(
    [c("s::a", "failed", { error: "status 403 | denied" }), c("s::b", "passed"), c("s::c", "passed"), c("s::e", "passed")],
    {
      versions: { kubernetes: "v1.36.3", vault: "1.21.4" },
    },
  );
  const d = diffResults(before, after);
  const headline = "2 regressions, 1 fix, 1 added, 0 removed (1 unchanged)";

  it("has a one-line headline", () => {
    expect(resultsDiffHeadline(d)).toBe(headline);
    expect(resultsDiffHeadline(diffResults(run([c("x", "skipped")]), run([c("x", "passed"), c("y", "failed")])))).toBe(
      "0 regressions, 1 new failure, 0 fixes, 0 added, 0 removed, 1 other change (0 unchanged)",
    );
  });

  for (const format of ["text", "markdown"] as const)
    it(`${format}: headline, version changes, ids, and only the non-empty sections`, () => {
      const out = formatResultsDiff(d, format);
      expect(out).toContain(headline);
      expect(out).toContain("vault 1.21.1 -> 1.21.4");
      expect(out).not.toContain("kubernetes v1.36.3 ->");
      for (const id of ["s::a", "s::c", "s::d", "s::e"]) expect(out).toContain(id);
      expect(out).not.toContain("s::b");
      expect(out).toMatch(/Regressions \(2\)/);
      expect(out).toMatch(/Fixes \(1\)/);
      expect(out).toMatch(/Added \(1\)/);
      expect(out).not.toMatch(/Removed|New failures|Other status changes/);
    });

  it("text starts with the headline and shows the transition and error", () => {
    const out = formatResultsDiff(d, "text");
    expect(out.split("\n")[0]).toBe(headline);
    expect(out).toContain("passed -> failed: status 403 | denied");
    expect(out).toContain("passed -> (missing)");
  });

  it("markdown escapes table cells and shows the flavor column only when cases have one", () => {
    const out = formatResultsDiff(d, "markdown");
    expect(out).toContain("status 403 \\| denied");
    expect(out).not.toContain("| case | flavor |");
    const withFlavor = formatResultsDiff(diffResults(run([c("t", "passed", { flavor: "openbao" })]), run([])), "markdown");
    expect(withFlavor).toContain("| case | flavor | change |");
    expect(withFlavor).toContain("| openbao |");
  });

  it("says so when nothing changed", () => {
    const same = diffResults(before, before);
    expect(formatResultsDiff(same, "text").split("\n")[0]).toBe("0 regressions, 0 fixes, 0 added, 0 removed (4 unchanged)");
    expect(formatResultsDiff(same, "text")).not.toMatch(/versions:|Regressions/);
  });
});

describe("loadResults and the results:diff script", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "vkc-results-diff-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const put = async (name: string, content: unknown) => {
    const p = join(dir, name);
    await writeFile(p, typeof content === "string" ? content : JSON.stringify(content));
    return p;
  };
  const expectUsage = async (p: Promise<unknown>, message: RegExp) => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).exitCode).toBe(2);
    expect((err as UsageError).message).toMatch(message);
    expect((err as UsageError).message).not.toContain("\n");
  };

  it("reads a results file", async () => {
    const r = run([c("t", "passed")]);
    expect(await loadResults(await put("ok.json", r))).toEqual(r);
  });
  it("refuses a missing file", async () => {
    await expectUsage(loadResults(join(dir, "nope.json")), /nope\.json not found/);
  });
  it("refuses a directory", async () => {
    await expectUsage(loadResults(dir), /cannot read results file .*EISDIR/);
  });
  it("refuses invalid JSON", async () => {
    await expectUsage(loadResults(await put("bad.json", "{ not json\n\n")), /bad\.json is not JSON/);
  });
  it("refuses JSON that is not a results file", async () => {
    await expectUsage(loadResults(await put("profile.json", { schema: 1, kubernetes: {} })), /is not a results file \(no "cases" array/);
    await expectUsage(loadResults(await put("array.json", [])), /is not a results file/);
    await expectUsage(loadResults(await put("null.json", "null")), /is not a results file/);
    await expectUsage(loadResults(await put("badcase.json", { cases: [{ id: "x", status: "weird" }] })), /cases\[0\]/);
  });

  // The script as a user runs it (node + tsx), with none of our VKC_* variables leaking in.
  const script = (args: string[]) => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("VKC_")));
    return spawnSync(process.execPath, ["--import", "tsx", join(PACKAGE_ROOT, "scripts", "results-diff.ts"), ...args], {
      cwd: PACKAGE_ROOT,
      env,
      encoding: "utf8",
      timeout: 60_000,
    });
  };

  it("script: exit 1 and the regression on stdout; exit 0 for identical files; exit 2 and one error line for a missing file", async () => {
    const a = await put("before.json", run([c("suites/x.test.ts::x > logs in", "passed"), c("suites/x.test.ts::x > other", "passed")]));
    const b = await put(
      "after.json",
      run([c("suites/x.test.ts::x > logs in", "failed", { error: "403 permission denied" }), c("suites/x.test.ts::x > other", "passed")]),
    );
    const mdFile = join(dir, "summary.md");

    const changed = script([a, b, "--markdown", mdFile]);
    expect(changed.stderr).toBe("");
    expect(changed.status).toBe(1);
    expect(changed.stdout.split("\n")[0]).toBe("1 regression, 0 fixes, 0 added, 0 removed (1 unchanged)");
    expect(changed.stdout).toContain("suites/x.test.ts::x > logs in");
    expect(changed.stdout).toContain("passed -> failed: 403 permission denied");
    expect(await readFile(mdFile, "utf8")).toContain("### Regressions (1)");

    const same = script([a, a]);
    expect(same.status).toBe(0);
    expect(same.stdout.split("\n")[0]).toBe("0 regressions, 0 fixes, 0 added, 0 removed (2 unchanged)");

    const missing = script([a, join(dir, "missing.json")]);
    expect(missing.status).toBe(2);
    expect(missing.stdout).toBe("");
    const errLines = missing.stderr.trimEnd().split("\n");
    expect(errLines).toHaveLength(1);
    expect(errLines[0]).toMatch(/^error: .*missing\.json not found$/);

    const one = script([a]);
    expect(one.status).toBe(2);
    expect(one.stderr).toBe("error: results:diff needs two results.json files: BEFORE AFTER\n");
  });
});
