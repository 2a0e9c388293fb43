import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../config.ts";
import { validate } from "../../schemas.ts";
import {
  annotations,
  baselineKind,
  caseFile,
  errorCommand,
  escapeData,
  escapeProperty,
  formatOutput,
  runOutputs,
  runVerdict,
  type AnnotateOptions,
} from "../github.ts";
import type { RunResults } from "../reporter.ts";

const FIXTURE = join(import.meta.dirname, "results.fixture.json");
const fixture = () => JSON.parse(readFileSync(FIXTURE, "utf8")) as RunResults;

/** Reads $GITHUB_OUTPUT's format back: `name=value` and `name<<DELIM ... DELIM`. */
function parseOutputs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line) continue;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const end = lines.indexOf(heredoc[2]!, i + 1);
      out[heredoc[1]!] = lines.slice(i + 1, end).join("\n");
      i = end;
    } else {
      const eq = line.indexOf("=");
      out[line.slice(0, eq)] = line.slice(eq + 1);
    }
  }
  return out;
}

describe("GitHub workflow commands", () => {
  it("the fixture is a valid results.json (schemas/results.v1.schema.json)", () => {
    expect(validate("results", fixture())).toEqual([]);
  });

  it.for([
    ["100%", "100%25", "100%25"],
    ["a\r\nb", "a%0D%0Ab", "a%0D%0Ab"],
    ["a: b, c", "a: b, c", "a%3A b%2C c"],
    ["%0A stays literal", "%250A stays literal", "%250A stays literal"],
  ])("escapes %j as data %j and as a property %j", ([raw, data, prop]) => {
    expect(escapeData(raw!)).toBe(data);
    expect(escapeProperty(raw!)).toBe(prop);
  });

  it("builds ::error with escaped properties and message, leaving out empty properties", () => {
    expect(errorCommand("x: 1,\n2%", { file: "a,b:c.ts", title: "t: 1" })).toBe("::error file=a%2Cb%3Ac.ts,title=t%3A 1::x: 1,%0A2%25");
    expect(errorCommand("plain", { file: undefined, title: "" })).toBe("::error::plain");
  });
});

describe("annotations of a run", () => {
  const opts = (files: string[] = []): AnnotateOptions => ({
    codeRoot: "/ws",
    fixturesDir: "/ws/my-fixtures",
    cwd: "/ws",
    exists: (p) => files.includes(p),
  });

  it("gives one ::error per failed case, with the case as title and its error as message", () => {
    const lines = annotations(fixture(), opts(["/ws/suites/login-rejected.test.ts", "/ws/my-fixtures/cases/hardened-payments.yaml"]));
    expect(lines).toEqual([
      "::error file=suites/login-rejected.test.ts,title=login-rejected > name not bound%3A 403%2C service account name not authorized::" +
        "expected 200 to be 403 // Object.is equality%0D%0APOST auth/k8s-1/login: 100%25 of 1 attempts, errors: a, b",
      "::error file=my-fixtures/cases/hardened-payments.yaml,title=payments service (hardened-payments.yaml) > access%3A role payments lets in exactly its intended identities::" +
        "role payments accepts kube-system/payments, which intent does not name: drop kube-system from bound_service_account_namespaces of role payments",
      "::error title=policy > (setup)::failed (no error message)",
    ]);
  });

  it("links no file outside the workspace or that is not there", () => {
    const o = { ...opts(["/elsewhere/suites/smoke.test.ts"]), codeRoot: "/elsewhere" };
    expect(caseFile({ id: "suites/smoke.test.ts::smoke > x", suite: "smoke" }, o)).toBeUndefined();
    expect(caseFile({ id: "suites/smoke.test.ts::smoke > x", suite: "smoke" }, opts())).toBeUndefined();
  });

  it("points a compiled suite (dist/suites/*.js) at its TypeScript source when that is in the workspace", () => {
    const o = { ...opts(["/ws/suites/smoke.test.ts", "/ws/dist/suites/smoke.test.js"]), codeRoot: "/ws/dist" };
    expect(caseFile({ id: "suites/smoke.test.js::smoke > x", suite: "smoke" }, o)).toBe("suites/smoke.test.ts");
  });

  it("annotates an aborted run and unhandled errors, and a run with no case at all", () => {
    const r = {
      ...fixture(),
      cases: [],
      totals: { passed: 0, failed: 1, skipped: 0 },
      aborted: "vault (pid 7) exited: code 1",
      unhandledErrors: ["boom\nat x"],
    };
    expect(annotations(r, opts())).toEqual([
      "::error title=vault-k8s-conformance%3A run aborted::vault (pid 7) exited: code 1",
      "::error title=vault-k8s-conformance%3A unhandled error::boom%0Aat x",
    ]);
    const empty = { ...fixture(), cases: [], totals: { passed: 0, failed: 0, skipped: 0 } };
    expect(annotations(empty, opts())).toEqual(["::error title=vault-k8s-conformance::no test case was executed; that is not a pass"]);
  });

  it("stops at max errors (GitHub shows 10 per step) and counts the rest in one ::notice", () => {
    const lines = annotations(fixture(), { ...opts(), max: 1 });
    expect(lines).toHaveLength(2);
    expect(lines[1]).toBe("::notice title=vault-k8s-conformance::2 more errors: see the step summary and results.json");
  });

  it("gives no annotation for a passing run", () => {
    const r = { ...fixture(), cases: fixture().cases.filter((c) => c.status !== "failed"), totals: { passed: 2, failed: 0, skipped: 1 } };
    expect(annotations(r, opts())).toEqual([]);
    expect(runVerdict(r)).toBe("pass");
  });
});

describe("step outputs", () => {
  it("writes name=value, and a multi-line value between delimiters absent from the value", () => {
    expect(formatOutput("passed", "2")).toBe("passed=2\n");
    const ids = ["d1", "d2"];
    expect(formatOutput("failed-cases", "a\nd1\nb", () => ids.shift()!)).toBe("failed-cases<<d2\na\nd1\nb\nd2\n");
    expect(() => formatOutput("bad name", "x")).toThrow(/not an output name/);
  });

  it("gives the verdict, counts and failed case ids of the fixture run", () => {
    const o = runOutputs(fixture());
    expect(o).toMatchObject({ verdict: "fail", passed: "2", failed: "3", skipped: "1" });
    expect(o["failed-cases"]!.split("\n")).toHaveLength(3);
    expect(
      parseOutputs(
        Object.entries(o)
          .map(([k, v]) => formatOutput(k, v))
          .join(""),
      ),
    ).toEqual(o);
  });

  it("fails an aborted run and a run with no executed case, whatever the counts", () => {
    expect(runVerdict({ totals: { passed: 5, failed: 0, skipped: 0 }, aborted: "died" })).toBe("fail");
    expect(runVerdict({ totals: { passed: 0, failed: 0, skipped: 4 } })).toBe("fail");
  });

  it.for([
    [{ schema: "vault-k8s-conformance/results/v1" }, "results"],
    [{ schema: "vault-k8s-conformance/profile/v1" }, "profile"],
    [{ schema: "vault-k8s-conformance/audit/v1" }, "audit"],
    [{ schema: "vault-k8s-conformance/access/v1" }, undefined],
    [[], undefined],
    [null, undefined],
  ] as const)("tells a baseline %j is a %s", ([doc, kind]) => {
    expect(baselineKind(doc)).toBe(kind);
  });
});

// The command the action runs (`vault-k8s-conformance gh-report`), from the sources, in a workspace
// of its own (tsx by path: the workspace has no node_modules).
const TSX = import.meta.resolve("tsx");

describe("gh-report", () => {
  let dir: string;
  const run = (...args: string[]) =>
    spawnSync(process.execPath, ["--import", TSX, join(PACKAGE_ROOT, "scripts", "gh-report.ts"), ...args], {
      cwd: dir,
      encoding: "utf8",
      timeout: 30_000,
      env: { PATH: process.env.PATH, HOME: dir },
    });
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "vkc-gh-"));
    await mkdir(join(dir, "reports"));
    await writeFile(join(dir, "reports", "results.json"), readFileSync(FIXTURE));
    await writeFile(join(dir, "reports", "summary.md"), "## vault-k8s-conformance: FAIL\n");
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("annotates, writes the outputs and appends summary.md to the step summary", async () => {
    const r = run("--results", "reports/results.json", "--output", "out.txt", "--step-summary", "summary.txt");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.split("\n").filter((l) => l.startsWith("::error "))).toHaveLength(3);
    const out = parseOutputs(await readFile(join(dir, "out.txt"), "utf8"));
    expect(out).toMatchObject({ verdict: "fail", passed: "2", failed: "3", skipped: "1", results: join(dir, "reports", "results.json") });
    expect(out.junit).toBe(join(dir, "reports", "junit.xml"));
    expect(await readFile(join(dir, "summary.txt"), "utf8")).toBe("## vault-k8s-conformance: FAIL\n");
  });

  it("makes a missing results.json a fail verdict with one annotation, not an error", async () => {
    const r = run("--results", "nowhere/results.json", "--output", "missing.txt");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      `::error title=vault-k8s-conformance::no ${join(dir, "nowhere", "results.json")}: the run ended before reporting results (see the run step's log)\n`,
    );
    expect(parseOutputs(await readFile(join(dir, "missing.txt"), "utf8"))).toMatchObject({ verdict: "fail", passed: "0", failed: "0" });
  });

  it("tells the kind of a baseline; an audit needs the existing target", async () => {
    await writeFile(join(dir, "audit.json"), JSON.stringify({ schema: "vault-k8s-conformance/audit/v1" }));
    const ok = run("--baseline", "reports/results.json", "--output", "kind.txt");
    expect(ok.status, ok.stderr).toBe(0);
    expect(parseOutputs(await readFile(join(dir, "kind.txt"), "utf8"))).toEqual({ "baseline-kind": "results" });
    const audit = run("--baseline", "audit.json", "--target", "local");
    expect(audit.status).toBe(2);
    expect(audit.stderr).toBe("error: baseline audit.json is an audit: audits need --target existing (got local)\n");
    expect(run("--baseline", "audit.json", "--target", "existing").status).toBe(0);
  });

  it.for([
    [["--baseline", "none.json"], "error: baseline none.json not found\n"],
    [["--baseline", "summary.txt"], "error: baseline summary.txt is not readable JSON: "],
    [[], "error: gh-report needs one of --results FILE or --baseline FILE\n"],
    [["--results", "a", "--baseline", "b"], "error: gh-report needs one of --results FILE or --baseline FILE\n"],
    [["--results", "reports/results.json", "--max-annotations", "x"], "error: --max-annotations must be a whole number (got x)\n"],
  ] as const)("bad input %j is one line and exit 2", ([args, line]) => {
    const r = run(...args);
    expect(r.status).toBe(2);
    expect(r.stderr.split("\n").filter(Boolean)).toHaveLength(1);
    expect(r.stderr.startsWith(line)).toBe(true);
  });
});
