import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../lib/config.ts";
import { writeUnreachableKubeconfig } from "./helpers.ts";

// The exit-code contract of every command (README "Exit codes", lib/errors.ts EXIT): 0 success,
// 1 the command's negative verdict, 2 bad input, 3 no verdict (the target or an infrastructure
// call failed), 130/143 interrupted. Run as a user runs the installed command (lib/main.ts, which
// rewrites `npm run X --` in the help), each with the cheapest real trigger. Triggers that need a
// running target are tested where that target already runs, and only referenced here:
//   conformance 0, 3 (a target that cannot start), 130, 143 ... conformance-run.e2e.test.ts
//   conformance 1 (a case fails) ................................ schemas.e2e.test.ts, secrets.e2e.test.ts
//   conformance 1 (a component dies mid-run), 130/143 per phase . faults.e2e.test.ts
//   conformance --dry-run 1 (a permission missing), existing target
//     unreachable / bad token / unknown context 2 .............. existing-target.e2e.test.ts
//   conformance 2 (fixtures, sealed Vault) ...................... bad-input.e2e.test.ts
//   audit 0, 1 (deviation, disagreement), 2; audit-diff 0, 1, 2 . audit.e2e.test.ts
//   mutation 1 (a mutant survives), 2 ........................... mutation.e2e.test.ts
//   diff 1 (two personas' profiles), 2 .......................... upgrade-gate.e2e.test.ts
//   env up 130, 143 ............................................. env-lifecycle.e2e.test.ts
// Not triggered anywhere (each needs a full target or a failing download/build): matrix 1,
// profile --with-suites 1, setup 3, env down 3 (an env:up that outlives 60 s after SIGTERM).

const BIN = "vault-k8s-conformance";
const dir = mkdtempSync(join(tmpdir(), "vkc-exit-codes-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// None of the outer run's settings: the defaults apply unless a case sets them.
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("VKC_") && !k.startsWith("npm_")));

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(PACKAGE_ROOT, "lib", "main.ts"), ...args], {
    cwd: PACKAGE_ROOT, // where `--import tsx` resolves; every case names its files and reports dir
    env: { ...cleanEnv, ...env },
    encoding: "utf8",
    timeout: 90_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** One line on stderr, nothing on stdout, no stack trace. */
function expectOneLine(r: ReturnType<typeof cli>, code: number, line: string) {
  expect(r.stderr.trim(), r.stdout + r.stderr).toBe(line);
  expect(r.code).toBe(code);
  expect(r.stdout).toBe("");
  expect(r.stderr).not.toMatch(/^\s+at /m);
}

// Each command: the start of its usage line, and its exit 1 row (false: it never exits 1; null:
// its help lists no exit codes yet, scripts/bench.ts being outside this change).
const COMMANDS: [command: string, usage: string, failed: string | false | null][] = [
  ["conformance", "conformance [options] [suite filter...]", "a case failed, no case ran, or a component died mid-run"],
  ["profile", "profile --out FILE", "--with-suites: a case failed"],
  ["diff", "diff BEFORE AFTER", "the change breaks logins for a recorded Vault config"],
  ["results-diff", "results-diff BEFORE AFTER", "a regression: a case that passed now fails or is gone"],
  ["audit", "audit [--probe]", "a static/probe disagreement (--probe) or a deviation from --intent"],
  ["audit-diff", "audit-diff BEFORE AFTER", "a role gained an identity, namespace or capability"],
  ["mutation", "mutation [--only a,b]", "a mutant survived"],
  ["matrix", "matrix [--personas a,b]", "a suite failed"],
  ["env up", "env up [options]", false],
  ["env down", "env down [--file FILE]", false],
  ["setup", "setup [--flavor vault|openbao|all]", false],
  ["bench", "bench [--runs N]", null],
  ["gh-report", "gh-report (--results FILE | --baseline FILE)", false],
];

describe("--help and bad flags, for every command", () => {
  it("the table names every command of `--help`", () => {
    const r = cli(["--help"]);
    expect(r.code).toBe(0);
    const listed = r.stdout
      .split("commands:\n")[1]!
      .split("\n\n")[0]!
      .split("\n")
      .map((l) => l.slice(2, 16).trim());
    expect(listed.length).toBeGreaterThanOrEqual(12);
    expect(COMMANDS.map(([c]) => c).sort()).toEqual([...listed].sort());
  });

  it.each(COMMANDS)("%s --help: its usage and flags, under the command's own name, exit 0", (command, usage, failed) => {
    const r = cli([...command.split(" "), "--help"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout.startsWith(`usage: ${BIN} ${usage}`)).toBe(true);
    expect(r.stdout).toContain("\noptions:\n");
    expect(r.stdout).toContain("  --help ");
    expect(r.stdout, "an npm script name left in the command's help").not.toMatch(/npm run [\w:-]/);
    if (failed === null) return;
    const codes = r.stdout.split("\nexit codes:\n")[1] ?? "";
    expect(codes).toMatch(/^ {2}2 {8}bad input /m);
    expect(codes).toMatch(/^ {2}3 {8}no verdict: the target could not start/m);
    expect(codes).toMatch(/^ {2}130\/143 {2}stopped by SIGINT \(Ctrl-C\)/m);
    if (failed) expect(codes).toContain(`  1        ${failed}`);
    else expect(codes).not.toMatch(/^ {2}1 /m);
  });

  it.each(COMMANDS)("%s --bogus: one line, exit 2", (command) => {
    expectOneLine(cli([...command.split(" "), "--bogus"]), 2, "error: unknown flag --bogus (see --help)");
  });

  it.each([
    [["nonsense"], `error: unknown command "nonsense" (see ${BIN} --help)`],
    [["env", "sideways"], `error: ${BIN} env needs up or down (see ${BIN} --help)`],
    [["env", "up", "keep"], "error: env:up takes no positional arguments (got keep)"],
    [["env", "down", "now"], "error: env:down takes no positional arguments (got now)"],
    [["setup", "vault"], "error: setup takes no positional arguments (got vault)"],
    [["audit", "--out"], "error: --out needs a value (FILE)"],
    [["results-diff", "only-one.json"], "error: results:diff needs two results.json files: BEFORE AFTER"],
  ])("%j: one line, exit 2", (args, line) => {
    expectOneLine(cli(args), 2, line);
  });
});

describe("the diff commands: 0 no difference, 1 what they gate on, 2 a file that is not theirs", () => {
  const put = (name: string, doc: unknown) => {
    const f = join(dir, name);
    writeFileSync(f, typeof doc === "string" ? doc : JSON.stringify(doc));
    return f;
  };

  const results = (status: "passed" | "failed") => ({
    startedAt: "2026-01-01T00:00:00.000Z",
    durationMs: 1000,
    target: "local",
    flavor: "vault",
    runId: "run-a",
    totals: { passed: status === "passed" ? 1 : 0, failed: status === "failed" ? 1 : 0, skipped: 0 },
    cases: [{ id: "suites/x.test.ts::x > logs in", project: "conformance", suite: "x", name: "logs in", status, durationMs: 1 }],
    unhandledErrors: [],
  });

  // A Vault config that checks the issuer (kind's), and the same cluster after a move to an EKS-style issuer.
  const KIND = "https://kubernetes.default.svc.cluster.local";
  const EKS = "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC";
  const profile = (iss: string, mounts: unknown[]) => {
    const token = { kid: "kid-1", alg: "RS256", iss, aud: [iss], requestedSeconds: 3607, lifetimeSeconds: 3607, warnAfterSeconds: null };
    return {
      schema: "vault-k8s-conformance/profile/v1",
      createdAt: "2026-11-23T00:00:00Z",
      runId: "r",
      target: "existing",
      kubernetes: {
        version: "v1.35.8",
        server: "https://api.example:6443",
        hostForVault: "https://api.example:6443",
        caFingerprints: ["ca1"],
        issuer: { discovery: iss, jwksUri: null, boundToken: iss, legacyToken: "kubernetes/serviceaccount", configured: [] },
        jwks: [{ kid: "kid-1", alg: "RS256", kty: "RSA" }],
        defaultAudiences: [iss],
        boundToken: { ...token, kubernetesClaims: ["namespace", "serviceaccount"] },
        podBoundToken: { ...token, kubernetesClaims: ["namespace", "pod", "serviceaccount", "warnafter"] },
        longRequest: { requestedSeconds: 172800, grantedSeconds: 172800 },
        tokenSecretsAutoCreated: false,
        anonymousDiscoveryStatus: 403,
      },
      vault: { flavor: "vault", version: "1.21.1", mounts },
    };
  };
  const strict = {
    path: "kubernetes",
    source: "read",
    config: {
      kubernetes_host: "https://api.example:6443",
      issuer: KIND,
      disable_iss_validation: false,
      disable_local_ca_jwt: true,
      token_reviewer_jwt_set: true,
      caFingerprints: ["ca1"],
      pemKeyIds: [],
    },
    roles: [],
  };

  const audit = (namespaces: string[]) => ({
    schema: "vault-k8s-conformance/audit/v1",
    generatedAt: "2026-01-01T00:00:00.000Z",
    mode: "static",
    vault: { address: "http://127.0.0.1:8200", version: "1.21.1" },
    kube: { server: "https://127.0.0.1:6443", context: "ctx", serviceAccounts: 2, namespaces: { prod: {}, dev: {} } },
    identities: [
      { namespace: "prod", serviceAccount: "app" },
      { namespace: "dev", serviceAccount: "app" },
    ],
    auditHost: "127.0.0.1",
    mounts: {
      kubernetes: {
        probedPaths: 1,
        roles: {
          app: {
            definition: {
              names: ["app"],
              namespaces,
              token_bound_cidrs: [],
              policies: ["default"],
              shape: "names exact, namespaces exact",
            },
            accepted: namespaces.map((namespace) => ({ namespace, serviceAccount: "app", why: `name app, namespace ${namespace}` })),
            refused: {},
            capabilities: {},
          },
        },
      },
    },
    timings: { total: 1 },
  });

  it("results-diff: a regression -> 1, the same run -> 0", () => {
    const before = put("before-results.json", results("passed"));
    const after = put("after-results.json", results("failed"));
    const changed = cli(["results-diff", before, after]);
    expect(changed.code, changed.stderr).toBe(1);
    expect(changed.stdout.split("\n")[0]).toBe("1 regression, 0 fixes, 0 added, 0 removed (0 unchanged)");
    const same = cli(["results-diff", before, before]);
    expect(same.code, same.stderr).toBe(0);
    expect(same.stdout.split("\n")[0]).toBe("0 regressions, 0 fixes, 0 added, 0 removed (1 unchanged)");
  });

  it("diff: an issuer change that breaks a recorded Vault config -> 1, none -> 0, nothing recorded to judge -> 2", () => {
    const before = put("before-profile.json", profile(KIND, [strict]));
    const after = put("after-profile.json", profile(EKS, []));
    const breaks = cli(["diff", before, after]);
    expect(breaks.code, breaks.stdout + breaks.stderr).toBe(1);
    expect(breaks.stdout).toMatch(/BREAK/);
    const same = cli(["diff", before, before]);
    expect(same.code, same.stdout + same.stderr).toBe(0);
    const nothing = cli(["diff", after, after]);
    expect(nothing.code, nothing.stdout + nothing.stderr).toBe(2);
  });

  it("audit-diff: a role that gained a namespace -> 1, one that lost it -> 0", () => {
    const narrow = put("narrow-audit.json", audit(["prod"]));
    const wide = put("wide-audit.json", audit(["prod", "dev"]));
    const gained = cli(["audit-diff", narrow, wide]);
    expect(gained.code, gained.stderr).toBe(1);
    expect(gained.stdout).toContain("1 gained, 0 lost");
    expect(gained.stdout).toContain("+ namespaces: dev");
    const lost = cli(["audit-diff", wide, narrow]);
    expect(lost.code, lost.stderr).toBe(0);
    expect(lost.stdout).toContain("0 gained, 1 lost");
  });

  it.each([
    ["results-diff", () => results("passed")],
    ["diff", () => profile(KIND, [strict])],
    ["audit-diff", () => audit(["prod"])],
  ])("%s --markdown into a directory that does not exist: one line, exit 2", (command, doc) => {
    const file = put(`markdown-${command}.json`, doc());
    const md = join(dir, "no-such-dir", "summary.md");
    const r = cli([command, file, file, "--markdown", md]);
    expect(r.stderr).toBe(`error: cannot write ${md} (--markdown): ENOENT\n`);
    expect(r.code).toBe(2);
  });

  it.each([
    ["results-diff", "is not a results file"],
    ["diff", "is not a profile written by"],
    ["audit-diff", "is not an audit"],
  ])("%s of a file that is not its kind: one line, exit 2", (command, message) => {
    const other = put(`not-${command}.json`, { something: "else" });
    const r = cli([command, other, other]);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/^error: /);
    expect(r.stderr).toContain(message);
    expect(r.code).toBe(2);
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });
});

describe("3: the target could not start (not a case, not bad input)", () => {
  // The kind target with a docker that answers like a running engine holding every image, and a
  // kind whose `create cluster` fails: cheap, and no Docker is touched (DOCKER_HOST goes nowhere).
  const bin = join(dir, "fake-bin");
  mkdirSync(bin);
  const calls = join(bin, "calls.log");
  writeFileSync(
    join(bin, "docker"),
    `#!/bin/sh\necho "docker $*" >> "${calls}"\ncase "$1" in\n  info) echo 27.0.0 ;;\n  network) echo 0 ;;\n  ps) ;;\n  *) echo sha256:${"0".repeat(64)} ;;\nesac\n`,
  );
  writeFileSync(
    join(bin, "kind"),
    `#!/bin/sh\necho "kind $*" >> "${calls}"\ncase "$1" in\n  version) echo "kind v0.33.0 go1.24.0 linux/amd64" ;;\n  create) echo "ERROR: failed to create cluster: no cluster today" >&2; exit 1 ;;\nesac\n`,
  );
  for (const f of ["docker", "kind"]) chmodSync(join(bin, f), 0o755);
  const env = {
    PATH: [bin, dirname(process.execPath), "/usr/bin", "/bin"].join(":"),
    KIND_BIN: join(bin, "kind"),
    DOCKER_HOST: "unix:///nonexistent/docker.sock",
  };

  it.each([
    ["env up", ["--out", join(dir, "up.json")], `error: ${join(bin, "kind")} create cluster exited 1`],
    ["profile", ["--out", join(dir, "profile.json")], `error: target "kind" could not start: ${join(bin, "kind")} create cluster exited 1`],
    ["conformance", ["suites/smoke"], `error: target "kind" could not start: ${join(bin, "kind")} create cluster exited 1`],
  ])("%s --target kind: one line and kind's own, exit 3; the cluster it may have left is deleted", (command, args, line) => {
    rmSync(calls, { force: true });
    const reports = join(dir, `reports-${command.replace(" ", "-")}`);
    const r = cli([...command.split(" "), "--target", "kind", "--reports", reports, ...args], env);
    const out = r.stdout + r.stderr;
    expect(r.code, out).toBe(3);
    expect(r.stderr.split("\n").filter((l) => l.startsWith("error: "))).toEqual([line]);
    expect(r.stderr).toContain("  ERROR: failed to create cluster: no cluster today");
    expect(out).not.toMatch(/^\s+at /m);
    expect(out).not.toMatch(/RUN\s+v\d|No test files/);
    const log = readFileSync(calls, "utf8");
    const name = /kind create cluster --name (\S+)/.exec(log)?.[1];
    expect(name, log).toBeDefined();
    expect(log).toContain(`kind delete cluster --name ${name}`);
    expect(readdirSync(tmpdir()).filter((n) => n.startsWith(name!))).toEqual([]);
    if (command === "profile") expect(existsSync(join(dir, "profile.json"))).toBe(false);
  });
});

describe("2: bad input, which includes an address of yours that does not answer", () => {
  it("audit with a Vault that does not answer: one line, exit 2, before any cluster call", () => {
    const kubeconfig = join(dir, "kubeconfig");
    writeUnreachableKubeconfig(kubeconfig);
    const r = cli(["audit", "--reports", join(dir, "audit-reports")], {
      KUBECONFIG: kubeconfig,
      VAULT_ADDR: "http://127.0.0.1:1",
      VAULT_TOKEN: "exit-codes-test-token",
    });
    const errors = r.stderr.split("\n").filter((l) => l.startsWith("error: "));
    expect(errors, r.stdout + r.stderr).toHaveLength(1);
    expect(errors[0]).toMatch(/^error: cannot reach Vault at http:\/\/127\.0\.0\.1:1/);
    expect(r.code).toBe(2);
    expect(r.stdout + r.stderr).not.toContain("exit-codes-test-token");
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });

  it("profile --out in a place that cannot exist: one line, exit 2, before any target", () => {
    const blocker = join(dir, "a-file");
    writeFileSync(blocker, "");
    expectOneLine(
      cli(["profile", "--out", join(blocker, "profile.json"), "--reports", join(dir, "profile-reports")]),
      2,
      `error: cannot write --out ${join(blocker, "profile.json")}: a parent of it is a file, not a directory`,
    );
    expect(existsSync(join(dir, "profile-reports"))).toBe(false);
  });

  it("env down with a state file that is not JSON: one line, exit 2; with none: exit 0", () => {
    const file = join(dir, "state.json");
    writeFileSync(file, "{ not json");
    const r = cli(["env", "down", "--file", file]);
    expect(r.stderr.trim()).toMatch(new RegExp(`^error: cannot read ${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: `));
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.code).toBe(2);
    const none = cli(["env", "down", "--file", join(dir, "no-state.json")]);
    expect(none.code, none.stderr).toBe(0);
    expect(none.stdout).toBe(`no running target recorded in ${join(dir, "no-state.json")}\n`);
  });
});
