import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditReport } from "../../lib/access/audit.ts";
import type { AccessReport } from "../../lib/access/report.ts";
import { authConfigFor, connect, enableKubernetesAuth, writeAuthConfig, writeRole } from "../../lib/auth-setup/steps.ts";
import type { Profile } from "../../lib/gate/types.ts";
import type { TargetInfo } from "../../lib/lifecycle/info.ts";
import type { RunResults } from "../../lib/report/reporter.ts";
import { SCHEMA_MARKERS, validate } from "../../lib/schemas.ts";
import { fixturesWithCase, script, waitForOutput } from "./helpers.ts";

// The files real runs write, against the JSON Schemas shipped in schemas/: results.json and
// access.json of a short conformance run (with a case that fails on purpose, so a failed record
// with its error is in the file too), a profile (with --with-suites, so its `cases` part is), and
// an audit.json of a --probe audit of a live local target.

const readJson = <T>(file: string) => JSON.parse(readFileSync(file, "utf8")) as T;

describe("the reports real runs write match their JSON Schemas", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "vkc-schemas-"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("conformance with a case that fails: results.json and access.json", async () => {
    // One fixture case that fails: the role admits the ServiceAccount, the case expects a 403.
    const fixtures = fixturesWithCase(dir, "zz-fails.yaml", [
      "name: fails on purpose",
      "serviceAccounts: [app]",
      'roles: { app: { bound_service_account_names: [app], bound_service_account_namespaces: ["${namespace}"] } }',
      "logins: [{ role: app, serviceAccount: app, expect: { status: 403, error: permission denied } }]",
      "intent: { app: { login: [{ serviceAccount: app }] } }",
    ]);
    const reports = join(dir, "run");
    const run = script("conformance.ts", ["--reports", reports, "--fixtures", fixtures, "suites/smoke", "suites/fixture-cases"]);
    expect(await run.exited, run.output()).toBe(1);

    const results = readJson<RunResults>(join(reports, "results.json"));
    expect(validate("results", results)).toEqual([]);
    expect(Object.keys(results)[0]).toBe("schema");
    expect(results.schema).toBe(SCHEMA_MARKERS.results);
    expect(results.totals.failed).toBe(1);
    expect(results.totals.passed).toBeGreaterThanOrEqual(10);
    expect(results.cases.find((c) => c.status === "failed")).toMatchObject({ target: "local", error: expect.any(String) });

    const access = readJson<AccessReport>(join(reports, "access.json"));
    expect(validate("access", access)).toEqual([]);
    expect(access).toMatchObject({ schema: SCHEMA_MARKERS.access, version: 1 });
    expect(access.access.length).toBeGreaterThanOrEqual(4);
    expect(access.capabilities.length).toBeGreaterThan(0);
    expect(access.identity.length).toBeGreaterThan(0);
    expect(access.access.reduce((n, a) => n + a.entries.length, 0)).toBeGreaterThan(20);
    // The copy embedded in results.json is the same report.
    expect(results.access).toEqual(access);

    // And the schema really reads these files: a drifted copy of each fails.
    const drifted = structuredClone(results) as any;
    drifted.cases[0].status = "error";
    delete drifted.access.capabilities[0].via;
    expect(validate("results", drifted)).toEqual([
      '/cases/0/status: must be equal to one of the allowed values ("passed", "failed", "skipped")',
      "/access/capabilities/0: must have required property 'via'",
    ]);
  });

  it("npm run profile --with-suites: the profile", async () => {
    const out = join(dir, "p.json");
    const run = script("profile.ts", ["--out", out, "--reports", join(dir, "profile-reports"), "--with-suites", "suites/smoke"]);
    expect(await run.exited, run.output()).toBe(0);
    const profile = readJson<Profile>(out);
    expect(validate("profile", profile)).toEqual([]);
    expect(profile.schema).toBe(SCHEMA_MARKERS.profile);
    expect(profile.vault.mounts.length).toBe(1);
    expect(profile.cases?.totals).toEqual({ passed: 2, failed: 0, skipped: 0 });
  });

  it("npm run audit --probe: audit.json", async () => {
    const out = join(dir, "target.json");
    const up = script("env-up.ts", ["--out", out, "--reports", join(dir, "up")], { VKC_TARGET: "" });
    try {
      await waitForOutput(up, /is up/);
      const info = readJson<TargetInfo>(out);
      const c = await connect(info);
      await c.kube.createNamespace("sch-sys", info.runId);
      await c.kube.createServiceAccount("sch-sys", "reviewer");
      await c.kube.create({
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRoleBinding",
        metadata: { name: "sch-auth-delegator" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "system:auth-delegator" },
        subjects: [{ kind: "ServiceAccount", name: "reviewer", namespace: "sch-sys" }],
      } as never);
      await c.kube.createNamespace("sch-app", info.runId);
      await c.kube.createServiceAccount("sch-app", "app");
      await enableKubernetesAuth(c.vault, "k8s-schemas");
      await writeAuthConfig(
        c.vault,
        "k8s-schemas",
        authConfigFor(info, await c.kube.requestToken("sch-sys", "reviewer", { expirationSeconds: 3600 })),
      );
      await writeRole(c.vault, "k8s-schemas", "app", {
        bound_service_account_names: ["app"],
        bound_service_account_namespaces: ["sch-app"],
      } as never);
      await writeRole(c.vault, "k8s-schemas", "cidr", {
        bound_service_account_names: ["*"],
        bound_service_account_namespaces: ["sch-*"],
        token_bound_cidrs: ["10.255.0.0/16"],
      } as never);

      const file = join(dir, "audit.json");
      const audit = script("audit.ts", ["--probe", "--mount", "k8s-schemas", "--out", file], {
        KUBECONFIG: info.kube.kubeconfigPath,
        VAULT_ADDR: info.vault.address,
        VAULT_TOKEN: readFileSync(info.vault.tokenFile, "utf8").trim(),
        VKC_TARGET: "",
      });
      expect(await audit.exited, audit.output()).toBe(0);
      const report = readJson<AuditReport>(file);
      expect(validate("audit", report)).toEqual([]);
      expect(report).toMatchObject({ schema: SCHEMA_MARKERS.audit, mode: "probe" });
      const roles = report.mounts["k8s-schemas"]!.roles;
      expect(Object.keys(roles).sort()).toEqual(["app", "cidr"]);
      expect(roles.app!.probe?.accepted).toEqual([{ namespace: "sch-app", serviceAccount: "app" }]);
      expect(roles.cidr!.cidr?.excludesAuditHost).toBe(true);
    } finally {
      up.child.kill("SIGTERM");
      await up.exited;
    }
  });
});
