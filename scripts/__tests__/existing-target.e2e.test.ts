import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../lib/config.ts";
import { Kube, RUN_LABEL } from "../../lib/kube/client.ts";
import type { RunResults } from "../../lib/report/reporter.ts";
import type { TargetInfo } from "../../lib/lifecycle/info.ts";
import { VaultClient } from "../../lib/vault/client.ts";
import { writeFile } from "node:fs/promises";
import { adminKubeconfig } from "../../lib/kube/kubeconfig.ts";
import { liveProcesses, script, waitForOutput } from "./helpers.ts";

// --target existing must not know the difference between a managed cluster and a local target:
// the full suites pass through it, and everything they create is gone afterwards.

describe("--target existing against a running local target", () => {
  let dir: string;
  let up: ReturnType<typeof script>;
  let info: TargetInfo;
  let token: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "vkc-existing-"));
    const out = join(dir, "target.json");
    up = script("env-up.ts", ["--out", out, "--reports", join(dir, "up")], { VKC_TARGET: "" });
    await waitForOutput(up, /is up/);
    info = JSON.parse(readFileSync(out, "utf8"));
    token = readFileSync(info.vault.tokenFile, "utf8").trim();
  });
  afterAll(async () => {
    up?.child.kill("SIGTERM");
    await up?.exited;
    await rm(dir, { recursive: true, force: true });
  });

  it("passes the full suites and leaves no labelled namespace, binding, auth mount or policy behind", async () => {
    const kube = Kube.fromFile(info.kube.kubeconfigPath);
    const vault = new VaultClient({ address: info.vault.address, token });
    const mountsBefore = Object.keys((await vault.read("sys/auth")).body.data).sort();
    const policiesBefore = (await vault.list("sys/policies/acl")).body.data.keys.sort();
    const reports = join(dir, "reports");
    const run = script("conformance.ts", ["--target", "existing", "--reports", reports], {
      KUBECONFIG: info.kube.kubeconfigPath,
      VAULT_ADDR: info.vault.address,
      VAULT_TOKEN: token,
      VKC_FLAVOR: info.flavor,
    });
    expect(await run.exited, run.output().slice(-3000)).toBe(0);
    const results = JSON.parse(readFileSync(join(reports, "results.json"), "utf8")) as RunResults;
    expect(results.target).toBe("existing");
    expect(results.totals.failed).toBe(0);
    expect(results.totals.passed).toBeGreaterThanOrEqual(45);
    // The plan was printed before anything was created, with the run id the run then used.
    const suites = readdirSync(join(PACKAGE_ROOT, "suites")).filter((f) => f.endsWith(".test.ts")).length;
    expect(run.output()).toContain(`plan of run ${results.runId}: ${suites} suites`);
    // Namespaces are deleted (possibly still terminating), bindings gone, Vault as before.
    const selector = `${RUN_LABEL}=${results.runId}`;
    const namespaces = await kube.core.listNamespace({ labelSelector: selector });
    expect(namespaces.items.filter((n) => !n.metadata?.deletionTimestamp).map((n) => n.metadata?.name)).toEqual([]);
    const bindings = await kube.rbac.listClusterRoleBinding({ labelSelector: selector });
    expect(bindings.items.map((b) => b.metadata?.name)).toEqual([]);
    expect(Object.keys((await vault.read("sys/auth")).body.data).sort()).toEqual(mountsBefore);
    expect((await vault.list("sys/policies/acl")).body.data.keys.sort()).toEqual(policiesBefore);
  });

  it("two runs at once on the same cluster and Vault both pass: neither's cleanup or sweep touches the other's objects", async () => {
    const vault = new VaultClient({ address: info.vault.address, token });
    const mountsBefore = Object.keys((await vault.read("sys/auth")).body.data).sort();
    const env = { KUBECONFIG: info.kube.kubeconfigPath, VAULT_ADDR: info.vault.address, VAULT_TOKEN: token, VKC_FLAVOR: info.flavor };
    const suites = ["suites/policy", "suites/login-accepted", "suites/fixture-cases"];
    const runs = ["a", "b"].map((n) =>
      script("conformance.ts", ["--target", "existing", "--reports", join(dir, `twin-${n}`), ...suites], env),
    );
    const codes = await Promise.all(runs.map((r) => r.exited));
    expect(codes, runs.map((r) => r.output().slice(-2000)).join("\n----\n")).toEqual([0, 0]);
    const results = ["a", "b"].map((n) => JSON.parse(readFileSync(join(dir, `twin-${n}`, "results.json"), "utf8")) as RunResults);
    expect(results[0]!.runId).not.toBe(results[1]!.runId);
    for (const r of results) expect(r.totals).toMatchObject({ failed: 0, passed: expect.any(Number) });
    expect(results[0]!.totals.passed).toBe(results[1]!.totals.passed);
    // Each run's own cleanup left nothing for its sweep, and Vault is as before.
    for (const r of runs) expect(r.output()).not.toMatch(/object\(s\) the suites left/);
    expect(Object.keys((await vault.read("sys/auth")).body.data).sort()).toEqual(mountsBefore);
  });

  it("Ctrl-C in the middle of a run on your cluster and Vault: every namespace, binding, mount and policy of the run is swept", async () => {
    const kube = Kube.fromFile(info.kube.kubeconfigPath);
    const vault = new VaultClient({ address: info.vault.address, token });
    const snapshot = async () => ({
      auth: Object.keys((await vault.read("sys/auth")).body.data).sort(),
      mounts: Object.keys((await vault.read("sys/mounts")).body.data).sort(),
      policies: (await vault.list("sys/policies/acl")).body.data.keys.sort(),
      defaultPolicy: (await vault.read("sys/policies/acl/default")).body.data.policy,
    });
    const before = await snapshot();
    const run = script("conformance.ts", ["--target", "existing", "--reports", join(dir, "int"), "suites/policy", "suites/fixture-cases"], {
      KUBECONFIG: info.kube.kubeconfigPath,
      VAULT_ADDR: info.vault.address,
      VAULT_TOKEN: token,
      VKC_FLAVOR: info.flavor,
    });
    await waitForOutput(run, /plan of run (vkc-\d{14}-[0-9a-f]{6})/);
    const runId = /plan of run (vkc-\d{14}-[0-9a-f]{6})/.exec(run.output())![1]!;
    const mark = `vault-k8s-conformance run ${runId}`;
    // Interrupt once the run has objects in both systems.
    const t0 = Date.now();
    for (;;) {
      const secrets = Object.values((await vault.read("sys/mounts")).body.data as Record<string, { description?: string }>);
      const namespaces = await kube.core.listNamespace({ labelSelector: `${RUN_LABEL}=${runId}` });
      if (secrets.some((m) => m.description === mark) && namespaces.items.length > 0) break;
      if (run.child.exitCode !== null || Date.now() - t0 > 60_000) throw new Error(`no objects of ${runId} appeared:\n${run.output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    run.child.kill("SIGINT");
    expect(await run.exited).toBe(130);
    // The sweep ran (whether the interrupted suites had left objects depends on when they stopped).
    expect(run.output()).toMatch(new RegExp(`${runId}: (removed \\d+ object\\(s\\) the suites left|swept; the suites left nothing)`));
    for (const settle of [0, 3000]) {
      await new Promise((r) => setTimeout(r, settle)); // and nothing comes back later from a worker
      expect(await snapshot()).toEqual(before);
      const namespaces = await kube.core.listNamespace({ labelSelector: `${RUN_LABEL}=${runId}` });
      expect(namespaces.items.filter((n) => !n.metadata?.deletionTimestamp).map((n) => n.metadata?.name)).toEqual([]);
      const bindings = await kube.rbac.listClusterRoleBinding({ labelSelector: `${RUN_LABEL}=${runId}` });
      expect(bindings.items.map((b) => b.metadata?.name)).toEqual([]);
    }
  });

  it("profile on your Vault only reads: it records your kubernetes auth mount as configured and changes nothing", async () => {
    const kube = Kube.fromFile(info.kube.kubeconfigPath);
    const vault = new VaultClient({ address: info.vault.address, token });
    // The user's own mount, set up before the upgrade.
    const mount = `users-k8s-${Date.now()}`;
    await vault.must("POST", `sys/auth/${mount}`, { type: "kubernetes" });
    await vault.must("POST", `auth/${mount}/config`, {
      kubernetes_host: info.kube.server,
      kubernetes_ca_cert: info.kube.caCertForVault,
      issuer: "https://kubernetes.default.svc.cluster.local",
      disable_iss_validation: false,
      disable_local_ca_jwt: true,
    });
    await vault.must("POST", `auth/${mount}/role/payments`, {
      bound_service_account_names: ["payments"],
      bound_service_account_namespaces: ["shop"],
      audience: "vault",
    });
    try {
      const mountsBefore = Object.keys((await vault.read("sys/auth")).body.data).sort();
      const configBefore = (await vault.read(`auth/${mount}/config`)).body.data;
      const out = join(dir, "profile.json");
      const run = script("profile.ts", ["--target", "existing", "--mount", mount, "--out", out, "--reports", join(dir, "profile")], {
        KUBECONFIG: info.kube.kubeconfigPath,
        VAULT_ADDR: info.vault.address,
        VAULT_TOKEN: token,
      });
      expect(await run.exited, run.output()).toBe(0);
      const p = JSON.parse(readFileSync(out, "utf8"));
      expect(p.target).toBe("existing");
      expect(p.vault.mounts).toEqual([
        {
          path: mount,
          source: "read",
          config: expect.objectContaining({
            issuer: "https://kubernetes.default.svc.cluster.local",
            disable_iss_validation: false,
            token_reviewer_jwt_set: false,
            caFingerprints: [expect.stringMatching(/^[0-9a-f]{64}$/)],
            pemKeyIds: [],
          }),
          roles: [expect.objectContaining({ name: "payments", audience: "vault", bound_service_account_namespaces: ["shop"] })],
        },
      ]);
      expect(p.kubernetes.caFingerprints).toEqual(p.vault.mounts[0].config.caFingerprints);
      // Read only: Vault as before; the probe namespace is on its way out.
      expect(Object.keys((await vault.read("sys/auth")).body.data).sort()).toEqual(mountsBefore);
      expect((await vault.read(`auth/${mount}/config`)).body.data).toEqual(configBefore);
      const left = await kube.core.listNamespace({ labelSelector: `${RUN_LABEL}=${p.runId}` });
      expect(left.items.filter((n) => !n.metadata?.deletionTimestamp)).toEqual([]);
    } finally {
      await vault.must("DELETE", `sys/auth/${mount}`);
    }
  });

  it("--dry-run prints the plan and the permission checks, and creates nothing", async () => {
    const kube = Kube.fromFile(info.kube.kubeconfigPath);
    const vault = new VaultClient({ address: info.vault.address, token });
    const namespacesBefore = (await kube.core.listNamespace()).items.map((n) => n.metadata?.name).sort();
    const mountsBefore = Object.keys((await vault.read("sys/auth")).body.data).sort();
    const run = script("conformance.ts", ["--target", "existing", "--dry-run", "--reports", join(dir, "dry")], {
      KUBECONFIG: info.kube.kubeconfigPath,
      VAULT_ADDR: info.vault.address,
      VAULT_TOKEN: token,
    });
    expect(await run.exited, run.output()).toBe(0);
    const suites = readdirSync(join(PACKAGE_ROOT, "suites")).filter((f) => f.endsWith(".test.ts")).length;
    expect(run.output()).toMatch(new RegExp(`plan of run vkc-\\S+: ${suites} suites`));
    expect(run.output()).toContain("ClusterRoleBindings role-tokenreview-binding-<suffix> of ServiceAccount vault-auth");
    expect(run.output()).toContain("ok   bind clusterrole system:auth-delegator");
    expect(run.output()).toContain("ok   enable/disable auth mounts (sys/auth)");
    expect(run.output()).toContain("ok   get namespaces (for the reviewer of namespace selectors)");
    expect(run.output()).toContain("dry run: nothing created; the credentials allow all 18 operations the run needs");
    expect(run.output()).not.toContain(token);
    // (namespaces of the previous test may still be terminating: only look for new ones)
    const namespacesAfter = (await kube.core.listNamespace()).items.map((n) => n.metadata?.name);
    expect(namespacesAfter.filter((n) => !namespacesBefore.includes(n))).toEqual([]);
    expect(Object.keys((await vault.read("sys/auth")).body.data).sort()).toEqual(mountsBefore);
  });

  it("--dry-run with credentials that may not do it names each missing permission and exits 1", async () => {
    // A ServiceAccount without RBAC on the cluster, a token with only the default policy in Vault.
    const kube = Kube.fromFile(info.kube.kubeconfigPath);
    const vault = new VaultClient({ address: info.vault.address, token });
    const ns = `dry-${Date.now()}`;
    await kube.createNamespace(ns, "dry-run-test");
    try {
      await kube.createServiceAccount(ns, "nobody");
      const saToken = await kube.requestToken(ns, "nobody");
      const kubeconfig = join(dir, "nobody.kubeconfig");
      await writeFile(
        kubeconfig,
        adminKubeconfig({ name: "nobody", server: info.kube.server, caCert: info.kube.caCertForVault, token: saToken }),
        { mode: 0o600 },
      );
      const limited = (await vault.write("auth/token/create", { policies: ["default"], ttl: "5m" })).body.auth.client_token as string;
      const run = script("conformance.ts", ["--target", "existing", "--dry-run", "--reports", join(dir, "dry2")], {
        KUBECONFIG: kubeconfig,
        VAULT_ADDR: info.vault.address,
        VAULT_TOKEN: limited,
      });
      expect(await run.exited, run.output()).toBe(1);
      expect(run.output()).toContain("DENY create namespaces");
      expect(run.output()).toContain("DENY create clusterrolebindings");
      expect(run.output()).toMatch(/DENY enable\/disable auth mounts \(sys\/auth\) \(capabilities on sys\/auth\/\S+: deny\)/);
      expect(run.output()).toContain("DENY get namespaces (for the reviewer of namespace selectors)");
      expect(run.output()).toMatch(/dry run: 1[0-9] of 18 permissions missing; a real run would fail/);
      expect(run.output()).not.toContain(limited);
    } finally {
      await kube.deleteNamespace(ns);
    }
  });

  it("--vault process: the harness starts its own dev Vault pointed at the cluster, and stops it", async () => {
    const devVaults = () => liveProcesses("-dev-root-token-id=");
    const before = devVaults();
    const reports = join(dir, "own-vault");
    const run = script("conformance.ts", ["--target", "existing", "--vault", "process", "--reports", reports, "smoke", "login-accepted"], {
      KUBECONFIG: info.kube.kubeconfigPath,
      VAULT_ADDR: "",
      VAULT_TOKEN: "",
      VKC_FLAVOR: info.flavor,
    });
    expect(await run.exited, run.output().slice(-3000)).toBe(0);
    expect(run.output()).toMatch(/started (vault|openbao) \S+ dev server at http:\/\/127\.0\.0\.1:\d+/);
    const results = JSON.parse(readFileSync(join(reports, "results.json"), "utf8")) as RunResults;
    expect(results.target).toBe("existing");
    expect(results.totals.failed).toBe(0);
    expect(results.totals.passed).toBeGreaterThanOrEqual(10);
    expect(devVaults().filter((p) => !before.includes(p))).toEqual([]);
  });

  it.each([
    [{ VAULT_ADDR: "", VAULT_TOKEN: "" }, "error: the existing target needs VAULT_ADDR and VAULT_TOKEN"],
    [{ VAULT_TOKEN: "not-a-valid-token-at-all" }, "error: VAULT_TOKEN is not valid for"],
    [{ VAULT_ADDR: "http://127.0.0.1:9" }, "error: cannot reach Vault at http://127.0.0.1:9"],
    [{ VKC_CONTEXT: "no-such-context" }, "error: kubeconfig"],
  ])("bad input %j -> one clear line, exit 2", async (env, line) => {
    const run = script("conformance.ts", ["--target", "existing", "--reports", join(dir, "bad")], {
      KUBECONFIG: info.kube.kubeconfigPath,
      VAULT_ADDR: info.vault.address,
      VAULT_TOKEN: token,
      ...env,
    });
    expect(await run.exited).toBe(2);
    expect(run.output()).toContain(line);
    expect(run.output()).not.toMatch(/\n\s+at /);
  });
});
