import { readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditReport } from "../../lib/access/audit.ts";
import { idKey } from "../../lib/access/audit.ts";
import type { TargetInfo } from "../../lib/lifecycle/info.ts";
import {
  authConfigFor,
  connect,
  enableKubernetesAuth,
  enableKv,
  writeAuthConfig,
  writePolicy,
  writeRole,
  type Clients,
} from "../../lib/auth-setup/steps.ts";
import { script, waitForOutput } from "./helpers.ts";

// npm run audit against a running local target reached as an existing one (kubeconfig + VAULT_ADDR
// and VAULT_TOKEN), with roles of every shape: static and --probe agree, an intent deviation
// exits 1, a bad intent exits 2 in one line, a token short of permissions is told which, and a
// diff of two audits shows the role that gained a namespace.

const MOUNT = "k8s-audit";
const NAMESPACES: Record<string, Record<string, string>> = {
  "aud-prod": { team: "a" },
  "aud-dev": { team: "b" },
  "aud-team-x": {},
  "aud-team-y": { team: "a" },
};
const SERVICE_ACCOUNTS = ["app", "web-1", "web-2", "other"];

// Each shape the plugin knows, and who it lets in among the objects above.
const ROLES: Record<string, Record<string, unknown>> = {
  exact: {
    bound_service_account_names: ["app"],
    bound_service_account_namespaces: ["aud-prod"],
    token_policies: ["aud-app"],
    token_no_default_policy: true,
  },
  "name-glob": { bound_service_account_names: ["web-*"], bound_service_account_namespaces: ["aud-prod"], token_policies: ["aud-app"] },
  "ns-glob": { bound_service_account_names: ["app"], bound_service_account_namespaces: ["aud-team-*"] },
  anyone: { bound_service_account_names: ["*"], bound_service_account_namespaces: ["*"], token_policies: ["aud-ops"] },
  selector: {
    bound_service_account_names: ["app"],
    bound_service_account_namespace_selector: JSON.stringify({ matchLabels: { team: "a" } }),
  },
  cidr: { bound_service_account_names: ["app"], bound_service_account_namespaces: ["aud-prod"], token_bound_cidrs: ["10.255.0.0/16"] },
  audience: { bound_service_account_names: ["app"], bound_service_account_namespaces: ["aud-dev"], audience: "vault" },
};

/** Waits until every namespace has its `default` ServiceAccount and the cluster's count holds still (the controller-manager adds them). */
async function settled(c: Clients): Promise<void> {
  let last = -1;
  for (const t0 = Date.now(); Date.now() - t0 < 30_000; await new Promise((r) => setTimeout(r, 500))) {
    const [nss, sas] = await Promise.all([c.kube.core.listNamespace(), c.kube.core.listServiceAccountForAllNamespaces()]);
    const withDefault = new Set(sas.items.filter((s) => s.metadata?.name === "default").map((s) => s.metadata?.namespace));
    if (nss.items.every((n) => withDefault.has(n.metadata?.name)) && sas.items.length === last) return;
    last = sas.items.length;
  }
  throw new Error("the cluster's ServiceAccounts did not settle within 30s");
}

describe("npm run audit against a running local target", () => {
  let dir: string;
  let up: ReturnType<typeof script>;
  let info: TargetInfo;
  let c: Clients;
  let env: Record<string, string>;
  const audit = (args: string[], extra: Record<string, string> = {}) => script("audit.ts", args, { ...env, ...extra });
  const readAudit = (file: string) => JSON.parse(readFileSync(file, "utf8")) as AuditReport;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "vkc-audit-"));
    const out = join(dir, "target.json");
    up = script("env-up.ts", ["--out", out, "--reports", join(dir, "up")], { VKC_TARGET: "" });
    await waitForOutput(up, /is up/);
    info = JSON.parse(readFileSync(out, "utf8"));
    c = await connect(info);
    env = {
      KUBECONFIG: info.kube.kubeconfigPath,
      VAULT_ADDR: info.vault.address,
      VAULT_TOKEN: readFileSync(info.vault.tokenFile, "utf8").trim(),
      VKC_TARGET: "",
    };

    // The reviewer (TokenReview, and get namespaces for the selector role).
    await c.kube.createNamespace("aud-sys", info.runId);
    await c.kube.createServiceAccount("aud-sys", "reviewer");
    await c.kube.create({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: "aud-ns-reader" },
      rules: [{ apiGroups: [""], resources: ["namespaces"], verbs: ["get"] }],
    } as never);
    for (const role of ["system:auth-delegator", "aud-ns-reader"])
      await c.kube.create({
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRoleBinding",
        metadata: { name: `aud-${role.replace(/:/g, "-")}` },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role },
        subjects: [{ kind: "ServiceAccount", name: "reviewer", namespace: "aud-sys" }],
      } as never);
    for (const [ns, labels] of Object.entries(NAMESPACES)) {
      await c.kube.core.createNamespace({ body: { metadata: { name: ns, labels } } });
      await Promise.all(SERVICE_ACCOUNTS.map((sa) => c.kube.createServiceAccount(ns, sa)));
    }
    await enableKubernetesAuth(c.vault, MOUNT);
    await writeAuthConfig(
      c.vault,
      MOUNT,
      authConfigFor(info, await c.kube.requestToken("aud-sys", "reviewer", { expirationSeconds: 24 * 3600 })),
    );
    await enableKv(c.vault, "aud-kv", 2);
    await writePolicy(
      c.vault,
      "aud-app",
      'path "aud-kv/data/app/*" { capabilities = ["read"] }\npath "aud-kv/metadata/app/*" { capabilities = ["list"] }\n',
    );
    await settled(c);
    await writePolicy(c.vault, "aud-ops", 'path "sys/mounts" { capabilities = ["read"] }\n');
    for (const [name, spec] of Object.entries(ROLES)) await writeRole(c.vault, MOUNT, name, spec as never);
  });
  afterAll(async () => {
    up?.child.kill("SIGTERM");
    await up?.exited;
    await rm(dir, { recursive: true, force: true });
  });

  const accepted = (r: AuditReport, role: string) => r.mounts[MOUNT]!.roles[role]!.accepted.map(idKey).sort();

  it("static and --probe agree on every (role, ServiceAccount) pair; the maps say who and why", async () => {
    const run = audit(["--out", join(dir, "static.json")]);
    expect(await run.exited, run.output()).toBe(0);
    expect(run.output()).toMatch(/audit plan \(static, read-only\)/);
    expect(run.output()).toContain("no logins, no entities, nothing written");
    const s = readAudit(join(dir, "static.json"));
    expect(s.mode).toBe("static");
    expect(Object.keys(s.mounts[MOUNT]!.roles).sort()).toEqual(Object.keys(ROLES).sort());
    expect(accepted(s, "exact")).toEqual(["aud-prod/app"]);
    expect(accepted(s, "name-glob")).toEqual(["aud-prod/web-1", "aud-prod/web-2"]);
    expect(accepted(s, "ns-glob")).toEqual(["aud-team-x/app", "aud-team-y/app"]);
    expect(accepted(s, "selector")).toEqual(["aud-prod/app", "aud-team-y/app"]);
    expect(accepted(s, "anyone").length).toBe(s.kube.serviceAccounts);
    expect(s.mounts[MOUNT]!.roles["ns-glob"]!.accepted[0]!.why).toBe("name app, namespace glob aud-team-*");
    for (const [name, r] of Object.entries(s.mounts[MOUNT]!.roles))
      expect(
        Object.values(r.refused).reduce((a, b) => a + b, 0),
        name,
      ).toBe(s.kube.serviceAccounts - r.accepted.length);
    expect(s.mounts[MOUNT]!.roles.exact!.refused).toEqual({
      "service account name not authorized": s.identities.filter((i) => i.serviceAccount !== "app").length,
      "namespace not authorized": s.identities.filter((i) => i.serviceAccount === "app").length - 1,
    });
    // The CIDR-bound role is reported as excluding this host.
    expect(s.mounts[MOUNT]!.roles.cidr!.cidr).toEqual({ bound: ["10.255.0.0/16"], auditHost: "127.0.0.1", excludesAuditHost: true });
    // Capabilities come from Vault, each with the policy granting it.
    expect(s.mounts[MOUNT]!.roles.exact!.capabilities["aud-kv/data/app/vkc-probe"]).toEqual({
      capabilities: ["read"],
      grantedBy: { read: ["aud-app"] },
    });
    expect(s.mounts[MOUNT]!.roles.anyone!.capabilities["sys/mounts"]).toEqual({ capabilities: ["read"], grantedBy: { read: ["aud-ops"] } });
    expect(s.mounts[MOUNT]!.roles.exact!.capabilities["sys/mounts"]).toBeUndefined();
    expect(readFileSync(join(dir, "static.md"), "utf8")).toContain(`## ${MOUNT}/ns-glob`);
    // Static left no trace in Vault: no entity was created.
    expect((await c.vault.list("identity/entity/id")).status).toBe(404);

    const probe = audit(["--probe", "--out", join(dir, "probe.json")]);
    expect(await probe.exited, probe.output()).toBe(0);
    expect(probe.output()).toContain("creates an identity entity");
    expect(probe.output()).toContain("static and probe agree");
    const p = readAudit(join(dir, "probe.json"));
    for (const [name, r] of Object.entries(p.mounts[MOUNT]!.roles)) {
      expect(r.probe!.disagreements, name).toEqual([]);
      expect(r.probe!.skipped, name).toEqual([]);
      if (name === "cidr") expect(r.probe!.accepted).toEqual([]);
      else expect(r.probe!.accepted.map(idKey).sort(), name).toEqual(accepted(s, name));
    }
    expect(p.probe!.revoked).toBe(Object.values(p.mounts[MOUNT]!.roles).reduce((n, r) => n + r.probe!.accepted.length, 0));
    expect(p.probe!.logins).toBeGreaterThanOrEqual(Object.keys(ROLES).length * p.kube.serviceAccounts);
    // Every token the probe obtained was revoked.
    const accessors = await c.vault.list("auth/token/accessors");
    const live = await Promise.all(
      (accessors.body.data.keys as string[]).map(
        async (a) => (await c.vault.write("auth/token/lookup-accessor", { accessor: a })).body.data,
      ),
    );
    expect(live.filter((t) => String(t.path).startsWith(`auth/${MOUNT}/`))).toEqual([]);
  });

  it("--intent: each deviation is named (identity, refused intended identity, capability and its policy) and exits 1", async () => {
    const intent = join(dir, "intent.yaml");
    writeFileSync(
      intent,
      [
        "mounts:",
        `  ${MOUNT}:`,
        "    roles:",
        "      exact:",
        "        login: [{ serviceAccount: app, namespace: aud-prod }]",
        "        capabilities:",
        '          "aud-kv/data/app/*": [read]',
        '          "cubbyhole/*": [create, read, update, delete, list]',
        "      name-glob:",
        "        login: [{ serviceAccount: web-1, namespace: aud-prod }]",
        "      anyone:",
        '        login: [{ serviceAccount: "*", namespace: "*" }]',
        "      audience:",
        "        login: [{ serviceAccount: app, namespace: aud-dev }]",
        "      cidr:",
        "        login: [{ serviceAccount: app, namespace: aud-prod }]",
        "      selector:",
        '        login: [{ serviceAccount: app, namespaceSelector: "team=a" }, { serviceAccount: app, namespace: aud-dev }]',
      ].join("\n") + "\n",
    );
    const run = audit(["--intent", intent, "--out", join(dir, "intent.json")]);
    expect(await run.exited, run.output()).toBe(1);
    const md = readFileSync(join(dir, "intent.md"), "utf8");
    expect(run.output()).toMatch(/\n6 deviation\(s\) from .*intent\.yaml\n/);
    const out = run.output();
    expect(md).toContain("## Deviations from");
    expect(out).toContain(
      `DEVIATION ${MOUNT}/name-glob: would accept aud-prod/web-2 (name glob web-*, namespace aud-prod), which the intent does not name`,
    );
    expect(out).toContain(`DEVIATION ${MOUNT}/selector: refuses aud-dev/app, which the intent names (aud-dev/app)`);
    expect(out).toContain(`DEVIATION ${MOUNT}/exact: list on aud-kv/metadata/app/ is beyond the intent, granted by policy aud-app`);
    expect(out).toContain(
      `DEVIATION ${MOUNT}/exact: list on aud-kv/metadata/app/vkc-probe is beyond the intent, granted by policy aud-app`,
    );
    // Roles of the mount the intent does not name are meant to let nobody in.
    expect(out).toContain(`DEVIATION ${MOUNT}/ns-glob: would accept aud-team-x/app`);
    expect(out).toContain(`DEVIATION ${MOUNT}/ns-glob: would accept aud-team-y/app`);
  });

  it("bad input is one line and exit 2: an unknown capability before anything is reached, an unknown role or mount against the Vault, a bad flag", async () => {
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, `mounts: { ${MOUNT}: { roles: { exact: { capabilities: { "a/b": [reed] } } } } }\n`);
    // An unreachable Vault: the intent is judged first.
    const run = audit(["--intent", bad], { VAULT_ADDR: "http://127.0.0.1:1" });
    expect(await run.exited).toBe(2);
    expect(run.output().trim()).toBe(
      `error: intent ${bad}: mounts.${MOUNT}.roles.exact.capabilities."a/b": "reed" is not a Vault capability (create, read, update, patch, delete, list, sudo, deny, subscribe, recover)`,
    );
    writeFileSync(bad, `mounts: { ${MOUNT}: { roles: { nosuch: { login: [] } } } }\n`);
    const role = audit(["--intent", bad]);
    expect(await role.exited).toBe(2);
    expect(
      role
        .output()
        .split("\n")
        .filter((l) => l.startsWith("error:")),
    ).toEqual([
      `error: intent ${bad}: mounts.${MOUNT}.roles.nosuch: mount ${MOUNT}/ has no role nosuch (has: ${Object.keys(ROLES).sort().join(", ")})`,
    ]);
    expect(role.output()).not.toContain("audit (static)");
    const mount = audit(["--mount", "nosuch"]);
    expect(await mount.exited).toBe(2);
    expect(
      mount
        .output()
        .split("\n")
        .filter((l) => l.startsWith("error:")),
    ).toEqual([`error: Vault has no kubernetes auth mount nosuch/ (has: ${MOUNT})`]);
    const flag = audit(["--concurrency", "0"]);
    expect(await flag.exited).toBe(2);
    expect(flag.output().trim()).toBe("error: --concurrency must be an integer from 1 to 256 (got 0)");
  });

  it("a token short of permissions gets each missing one named, exit 2", async () => {
    await writePolicy(
      c.vault,
      "aud-reader",
      'path "sys/auth" { capabilities = ["read"] }\npath "sys/mounts" { capabilities = ["read"] }\n',
    );
    const t = await c.vault.must("POST", "auth/token/create", { policies: ["aud-reader"], ttl: "5m" });
    const run = audit([], { VAULT_TOKEN: t.body.auth.client_token });
    expect(await run.exited, run.output()).toBe(2);
    const out = run.output();
    expect(out).toMatch(/^error: the audit's credentials miss 6 permission\(s\): read ACL policies/m);
    expect(out).toMatch(/ok {3}read secrets mounts \(sys\/mounts\)/);
    expect(out).toMatch(
      /DENY create short-lived tokens with a role's policies \(auth\/token\/create-orphan\) \(capabilities on auth\/token\/create-orphan: deny; needs update, sudo\)/,
    );
    expect(out).toMatch(new RegExp(`DENY list roles of ${MOUNT}/`));
    expect(out).not.toContain(t.body.auth.client_token);
  });

  it("a diff of two audits shows the role that gained a namespace (exit 1), and nothing for equal audits (exit 0)", async () => {
    const same = script("audit-diff.ts", [join(dir, "static.json"), join(dir, "probe.json")]);
    expect(await same.exited, same.output()).toBe(0);
    expect(same.output()).toContain("0 gained, 0 lost");
    await writeRole(c.vault, MOUNT, "exact", { ...ROLES.exact, bound_service_account_namespaces: ["aud-prod", "aud-dev"] } as never);
    const after = audit(["--out", join(dir, "after.json")]);
    expect(await after.exited, after.output()).toBe(0);
    const diff = script("audit-diff.ts", [join(dir, "static.json"), join(dir, "after.json")]);
    expect(await diff.exited, diff.output()).toBe(1);
    expect(diff.output()).toContain(`1 gained, 0 lost\n  ${MOUNT}/exact:\n    + namespaces: aud-dev\n    + identities: aud-dev/app\n`);
    const bad = script("audit-diff.ts", [join(dir, "static.json"), join(dir, "intent.yaml")]);
    expect(await bad.exited).toBe(2);
  });

  it("--probe: a real login that differs from static reasoning is a finding, named, exit 1", async () => {
    // Without `get namespaces` the reviewer cannot read the token's namespace: Vault refuses what the selector matches.
    await c.kube.deleteObject({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: "aud-aud-ns-reader" },
    });
    const run = audit(["--probe", "--out", join(dir, "differ.json")]);
    expect(await run.exited, run.output()).toBe(1);
    const out = run.output();
    for (const who of ["aud-prod/app", "aud-team-y/app"])
      expect(out).toContain(`DISAGREE ${MOUNT}/selector: ${who}: static says accepted, Vault says HTTP 403 namespace not authorized`);
    expect(out.match(/^DISAGREE /gm)).toHaveLength(2);
    expect(out).toContain("2 static/probe disagreement(s)");
    const r = readAudit(join(dir, "differ.json")).mounts[MOUNT]!.roles.selector!;
    expect(r.probe!.accepted).toEqual([]);
    expect(r.probe!.disagreements.map(idKey).sort()).toEqual(["aud-prod/app", "aud-team-y/app"]);
  });
});
