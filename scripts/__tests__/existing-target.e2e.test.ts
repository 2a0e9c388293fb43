import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Kube, RUN_LABEL } from "../../lib/kube/client.ts";
import type { RunResults } from "../../lib/report/reporter.ts";
import type { TargetInfo } from "../../lib/target/info.ts";
import { VaultClient } from "../../lib/vault/client.ts";
import { script, waitForOutput } from "./helpers.ts";

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
    // Namespaces are deleted (possibly still terminating), bindings gone, Vault as before.
    const selector = `${RUN_LABEL}=${results.runId}`;
    const namespaces = await kube.core.listNamespace({ labelSelector: selector });
    expect(namespaces.items.filter((n) => !n.metadata?.deletionTimestamp).map((n) => n.metadata?.name)).toEqual([]);
    const bindings = await kube.rbac.listClusterRoleBinding({ labelSelector: selector });
    expect(bindings.items.map((b) => b.metadata?.name)).toEqual([]);
    expect(Object.keys((await vault.read("sys/auth")).body.data).sort()).toEqual(mountsBefore);
    expect((await vault.list("sys/policies/acl")).body.data.keys.sort()).toEqual(policiesBefore);
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
