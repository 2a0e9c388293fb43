import { describe, expect, inject } from "vitest";
import { suiteTest } from "../lib/vitest/fixtures.ts";
import { expectRefused } from "../lib/vitest/assert.ts";
import type { SuiteContext } from "../lib/vitest/suite.ts";
import { authConfigFor, login, writeAuthConfig, writeRole, type LoginData } from "../lib/auth-setup/steps.ts";
import { expectationsFor } from "../lib/fixtures/expectations.ts";
import { describeResponse, type VaultResponse } from "../lib/vault/client.ts";
import { waitFor } from "../lib/wait.ts";

/**
 * use_annotations_as_alias_metadata (HashiCorp plugin 0.18+): the ServiceAccount's
 * `vault.hashicorp.com/alias-metadata-<key>` annotations become metadata on the entity alias,
 * which templated policies can use. The plugin GETs the ServiceAccount with the reviewer's JWT, so
 * the reviewer needs `get serviceaccounts`. OpenBao has no such field (expectations: aliasMetadata).
 */
const PREFIX = "vault.hashicorp.com/alias-metadata-";

const it = suiteTest("alias-metadata").extend("app", { scope: "file" }, async ({ ctx }) => {
  const exp = expectationsFor(ctx.info.flavor, ctx.info.vault.version);
  const { mount, reviewerJwt, reviewer } = await ctx.standardAuth();
  const accessor: string = (await ctx.vault.must("GET", "sys/auth")).body.data[`${mount}/`].accessor;
  const ns = await ctx.namespace("app");
  await ctx.kube.createAnnotatedServiceAccount(ns, "payments", {
    [`${PREFIX}team`]: "payments",
    [`${PREFIX}env`]: "prod",
    "example.com/other": "x",
  });
  await ctx.kube.createAnnotatedServiceAccount(ns, "reserved", { [`${PREFIX}service_account_name`]: "someone-else" });
  await ctx.kube.createServiceAccount(ns, "plain");
  const kv = await ctx.kv("kv", 1);
  for (const team of ["payments", "billing"]) await ctx.vault.must("POST", `${kv}/${team}/config`, { team });
  const policy = await ctx.policy(
    "team",
    `path "${kv}/{{identity.entity.aliases.${accessor}.metadata.team}}/*" { capabilities = ["read"] }`,
  );
  await writeRole(ctx.vault, mount, "team", {
    bound_service_account_names: ["payments", "reserved", "plain"],
    bound_service_account_namespaces: [ns],
    token_policies: [policy],
  });
  const aliasOf = async (res: VaultResponse<LoginData>) => {
    const entity = await ctx.vault.must("GET", `identity/entity/id/${res.body.auth!.entity_id}`);
    const aliases = entity.body.data.aliases as { mount_accessor: string; metadata: Record<string, string> | null }[];
    const mine = aliases.find((a) => a.mount_accessor === accessor);
    expect(mine, "entity alias on this mount").toBeDefined();
    return mine!;
  };
  const grantServiceAccountReader = async () => {
    const name = ctx.name("vkc-sa-reader");
    ctx.teardown.defer(`delete ClusterRole(Binding) ${name}`, () => ctx.kube.revokeClusterRole(name));
    await ctx.kube.grantClusterRole(name, ctx.info.runId, [{ apiGroups: [""], resources: ["serviceaccounts"], verbs: ["get"] }], {
      namespace: reviewer.namespace,
      name: reviewer.serviceAccount,
    });
  };
  /** Logs in `sa` to role `team` with a fresh TokenRequest token. */
  const loginAs = async (sa: string) => login(ctx.vault, mount, "team", await ctx.kube.requestToken(ns, sa));
  return { exp, mount, reviewerJwt, ns, kv, aliasOf, grantServiceAccountReader, loginAs };
});

/** What the config needs for annotations as alias metadata. */
const withAnnotations = (ctx: SuiteContext, reviewerJwt: string) =>
  authConfigFor(ctx.info, reviewerJwt, { use_annotations_as_alias_metadata: true });

describe("ServiceAccount annotations as entity-alias metadata", () => {
  const target = inject("target");
  const supported = expectationsFor(target.flavor, target.vault.version).aliasMetadata === "supported";

  it("the config field: HashiCorp stores and reads back use_annotations_as_alias_metadata; OpenBao per expectations", async ({
    ctx,
    app: { exp, mount, reviewerJwt },
  }) => {
    const res = await ctx.vault.write(`auth/${mount}/config`, withAnnotations(ctx, reviewerJwt));
    expect(res.status, describeResponse(res)).toBe(204);
    const back = (await ctx.vault.read(`auth/${mount}/config`)).body.data;
    if (exp.aliasMetadata === "supported") expect(back.use_annotations_as_alias_metadata).toBe(true);
    else expect(back).not.toHaveProperty("use_annotations_as_alias_metadata");
  });

  it("without the flag, annotations do not reach the alias (only the service account's own keys)", async ({
    ctx,
    app: { mount, reviewerJwt, aliasOf, loginAs },
  }) => {
    await writeAuthConfig(ctx.vault, mount, authConfigFor(ctx.info, reviewerJwt));
    const res = await loginAs("payments");
    expect(res.status, describeResponse(res)).toBe(200);
    const alias = await aliasOf(res);
    expect(Object.keys(alias.metadata ?? {})).not.toContain("team");
  });

  describe.runIf(supported)("HashiCorp: annotations become alias metadata", () => {
    it("a reviewer without `get serviceaccounts` (auth-delegator only): the login fails and says why", async ({
      ctx,
      app: { exp, mount, reviewerJwt, loginAs },
    }) => {
      await writeAuthConfig(ctx.vault, mount, withAnnotations(ctx, reviewerJwt));
      expectRefused(await loginAs("payments"), exp.aliasMetadataReviewerForbidden.status, exp.aliasMetadataReviewerForbidden.error);
    });

    it("with `get serviceaccounts`: the prefixed annotations are on the entity alias, other annotations are not", async ({
      ctx,
      app: { mount, reviewerJwt, ns, aliasOf, grantServiceAccountReader },
    }) => {
      await grantServiceAccountReader();
      await writeAuthConfig(ctx.vault, mount, withAnnotations(ctx, reviewerJwt));
      const jwt = await ctx.kube.requestToken(ns, "payments");
      // RBAC reaches the apiserver's authorizer through an informer: poll briefly.
      const res = await waitFor(
        async () => {
          const r = await login(ctx.vault, mount, "team", jwt);
          return r.status === 200 ? r : undefined;
        },
        { what: "the login succeeds once the reviewer may get serviceaccounts", timeoutMs: 15_000, intervalMs: 250 },
      );
      const alias = await aliasOf(res);
      expect(alias.metadata).toMatchObject({
        team: "payments",
        env: "prod",
        service_account_name: "payments",
        service_account_namespace: ns,
      });
      expect(Object.keys(alias.metadata ?? {}).sort()).toEqual(
        ["env", "service_account_name", "service_account_namespace", "service_account_secret_name", "service_account_uid", "team"].sort(),
      );
      // The token's own metadata stays the plugin's five keys.
      expect(Object.keys(res.body.auth!.metadata).sort()).toEqual(
        ["role", "service_account_name", "service_account_namespace", "service_account_secret_name", "service_account_uid"].sort(),
      );
    });

    it("a templated policy on the alias metadata grants the annotated team's path (200) and denies another team's (403)", async ({
      ctx,
      app: { kv, loginAs },
    }) => {
      const res = await loginAs("payments");
      expect(res.status, describeResponse(res)).toBe(200);
      const client = ctx.vault.withToken(res.body.auth!.client_token);
      const mine = await client.read(`${kv}/payments/config`);
      expect(mine.status, describeResponse(mine)).toBe(200);
      expect(mine.body.data).toEqual({ team: "payments" });
      expectRefused(await client.read(`${kv}/billing/config`), 403, "permission denied");
    });

    it("a service account without the annotations gets nothing from the templated policy (403)", async ({ ctx, app: { kv, loginAs } }) => {
      const res = await loginAs("plain");
      expect(res.status, describeResponse(res)).toBe(200);
      const client = ctx.vault.withToken(res.body.auth!.client_token);
      expectRefused(await client.read(`${kv}/payments/config`), 403, "permission denied");
    });

    it("an annotation naming a reserved key (service_account_name) fails the login (400)", async ({ app: { loginAs } }) => {
      const res = await loginAs("reserved");
      expectRefused(res, 400, "entity alias metadata keys for only internal use found");
      expect(res.body.errors?.join(" ")).toContain("service_account_name");
    });
  });

  describe.runIf(!supported)("OpenBao: no alias metadata from annotations", () => {
    it("with the field written, the annotations still do not reach the alias, and templated paths stay denied (403)", async ({
      ctx,
      app: { mount, reviewerJwt, kv, aliasOf, loginAs },
    }) => {
      await ctx.vault.write(`auth/${mount}/config`, withAnnotations(ctx, reviewerJwt));
      const res = await loginAs("payments");
      expect(res.status, describeResponse(res)).toBe(200);
      expect(Object.keys((await aliasOf(res)).metadata ?? {})).not.toContain("team");
      expectRefused(await ctx.vault.withToken(res.body.auth!.client_token).read(`${kv}/payments/config`), 403, "permission denied");
    });
  });
});
