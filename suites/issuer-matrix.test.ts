import { createPrivateKey, createPublicKey, randomUUID } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { decodeJwt, SignJWT } from "jose";
import { describe, expect } from "vitest";
import { kubernetesKeyId } from "../lib/gate/profile.ts";
import { ISSUER_MODES, issuerSettingsFor, predictLogin, type IssuerSettings } from "../lib/gate/predict.ts";
import type { IssuerMode } from "../lib/gate/types.ts";
import { registerSecret } from "../lib/redact.ts";
import { suiteTest } from "../lib/vitest/fixtures.ts";
import { authConfigFor, login, writeAuthConfig, writeRole } from "../lib/auth-setup/steps.ts";
import { describeResponse } from "../lib/vault/client.ts";

/**
 * Each Vault issuer mode x each kind of token the cluster hands out, logged in for real and
 * compared with what lib/gate/predict.ts (the rules profile:diff reasons with) says. The observed
 * cells go to <artifacts>/issuer-matrix.json, from which `npm run matrix` builds its table.
 *
 * Token kinds: a bound TokenRequest token (what pods get), a legacy Secret token, and, on a
 * persona mid-way through an issuer migration, a token as the API server signed it before the
 * migration (its key, the old issuer and audience), which the server still accepts.
 */
interface Cell {
  mode: IssuerMode;
  settings: IssuerSettings;
  token: string;
  iss: string;
  status: number;
  error?: string;
  predicted: { status: number; error?: string };
}

const it = suiteTest("matrix").extend("app", { scope: "file" }, async ({ ctx }, { onCleanup }) => {
  const { mount, reviewerJwt } = await ctx.standardAuth();
  const ns = await ctx.namespace("app");
  const uid = await ctx.kube.createServiceAccount(ns, "app");
  await writeRole(ctx.vault, mount, "app", { bound_service_account_names: ["app"], bound_service_account_namespaces: [ns] });
  const bound = await ctx.kube.requestToken(ns, "app");
  const discovered = String(decodeJwt(bound).iss);
  const tokens: { kind: string; jwt: string }[] = [];
  tokens.push({ kind: "bound", jwt: bound });
  tokens.push({ kind: "legacy", jwt: (await ctx.kube.legacyToken(ns, "app")).token });
  const prev = ctx.info.persona?.previousIssuer;
  const keyFile = ctx.info.kube.saSigningKeyFile;
  if (prev && prev !== discovered && ctx.info.kube.issuers.includes(prev) && keyFile) {
    tokens.push({ kind: "pre-migration", jwt: await preMigrationToken(keyFile, prev, ns, "app", uid) });
  }
  const cells: Cell[] = [];
  // The observed cells, for `npm run matrix`: written when the file ends, before the context's teardown.
  onCleanup(async () => {
    if (!cells.length) return;
    const out = {
      persona: ctx.info.persona?.name ?? "(none)",
      flavor: ctx.info.flavor,
      versions: ctx.info.versions,
      issuers: ctx.info.kube.issuers,
      discovered,
      cells,
    };
    await mkdir(ctx.info.artifactsDir, { recursive: true });
    await writeFile(join(ctx.info.artifactsDir, "issuer-matrix.json"), JSON.stringify(out, null, 2));
  });
  return { mount, reviewerJwt, ns, discovered, tokens, cells };
});

describe("issuer matrix: Vault issuer modes x token kinds", () => {
  it.for(ISSUER_MODES)("issuer mode %s: every kind of token gets the answer the prediction rules give", async (mode, { ctx, app }) => {
    const { mount, reviewerJwt, ns, discovered, tokens, cells } = app;
    const settings = issuerSettingsFor(mode, { discovered, preUpgrade: ctx.info.persona?.previousIssuer });
    await writeAuthConfig(ctx.vault, mount, authConfigFor(ctx.info, reviewerJwt, settings));
    const cfg = (await ctx.vault.must("GET", `auth/${mount}/config`)).body.data;
    expect(cfg).toMatchObject({ disable_iss_validation: settings.disable_iss_validation, issuer: settings.issuer });
    for (const t of tokens) {
      const claims = decodeJwt(t.jwt);
      const aud = claims.aud === undefined ? [] : Array.isArray(claims.aud) ? claims.aud : [claims.aud];
      const predicted = predictLogin(
        settings,
        {},
        { iss: String(claims.iss), aud },
        { flavor: ctx.info.flavor, version: ctx.info.vault.version },
      );
      const res = await login(ctx.vault, mount, "app", t.jwt);
      const error = res.body?.errors?.join(" ");
      cells.push({ mode, settings, token: t.kind, iss: String(claims.iss), status: res.status, ...(error ? { error } : {}), predicted });
      expect(res.status, `${t.kind} token, ${describeResponse(res)}`).toBe(predicted.status);
      if (predicted.ok) {
        expect(res.body.auth?.metadata).toMatchObject({ role: "app", service_account_name: "app", service_account_namespace: ns });
        expect(res.body.auth?.policies).toContain("default");
      } else {
        expect(error, `${t.kind} token`).toContain(predicted.error);
      }
    }
  });
});

/**
 * A bound token exactly as the API server signed it before the issuer migration: same key (and
 * so the same kid), the old issuer, and the old default audience. The server validates it on
 * TokenReview like any other token it issued.
 */
async function preMigrationToken(keyFile: string, issuer: string, namespace: string, name: string, uid: string): Promise<string> {
  const pem = await readFile(keyFile, "utf8");
  const key = createPrivateKey(pem);
  const kid = kubernetesKeyId(createPublicKey(key).export({ type: "spki", format: "pem" }).toString());
  const now = Math.floor(Date.now() / 1000);
  const jwt = await new SignJWT({ "kubernetes.io": { namespace, serviceaccount: { name, uid } } })
    .setProtectedHeader({ alg: "RS256", kid })
    .setIssuer(issuer)
    .setAudience([issuer])
    .setSubject(`system:serviceaccount:${namespace}:${name}`)
    .setIssuedAt(now - 60)
    .setNotBefore(now - 60)
    .setExpirationTime(now + 3600)
    .setJti(randomUUID())
    .sign(key);
  return registerSecret(jwt);
}
