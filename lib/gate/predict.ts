import { DEFAULT_ISSUER } from "../config.ts";
import type { IssuerMode, LoginOutcome } from "./types.ts";

/**
 * What Vault's kubernetes auth does with a token before it asks TokenReview, as a pure function
 * of its config and the token's claims. Shared by `profile:diff` (to say what an upgrade breaks)
 * and the issuer-matrix suite, which checks every prediction against a real Vault: a rule here
 * that reality contradicts fails that suite.
 *
 * Order as in the plugin: issuer (when validation is on and an issuer is set), then the role's
 * audience. Signature checks with pem_keys and the CA are judged separately (see the diff).
 */

export const LEGACY_ISSUER = "kubernetes/serviceaccount";
export const ISSUER_MODES: readonly IssuerMode[] = ["off", "discovered", "legacy", "pre-upgrade"];

export interface IssuerSettings {
  disable_iss_validation: boolean;
  issuer: string;
}

export interface TokenClaims {
  iss: string;
  aud: string[];
}

/** The auth config fields a mode writes: `discovered` = the issuer new tokens carry; `pre-upgrade` = the issuer before the change. */
export function issuerSettingsFor(mode: IssuerMode, o: { discovered: string; preUpgrade?: string }): IssuerSettings {
  switch (mode) {
    case "off":
      return { disable_iss_validation: true, issuer: "" };
    case "discovered":
      return { disable_iss_validation: false, issuer: o.discovered };
    case "legacy":
      return { disable_iss_validation: false, issuer: LEGACY_ISSUER };
    case "pre-upgrade":
      return { disable_iss_validation: false, issuer: o.preUpgrade ?? DEFAULT_ISSUER };
  }
}

export function describeSettings(s: IssuerSettings): string {
  if (s.disable_iss_validation) return "issuer validation off";
  return s.issuer === "" ? "issuer validation on, no issuer set" : `issuer validation on with issuer=${s.issuer}`;
}

/** The Vault a prediction is for, as a profile records it (`flavor`, `version`). */
export interface VaultRef {
  flavor: string;
  version: string;
}

/**
 * Which generation of the kubernetes auth plugin a Vault bundles, as far as the claim checks go:
 * - `jose` (plugin < 0.13, HashiCorp Vault <= 1.10): briankassouf/jose's validator; with validation
 *   on, an empty issuer is enforced as `kubernetes/serviceaccount`; errors `claim "iss" is invalid`,
 *   `claim "aud" is invalid`, as HTTP 500.
 * - `cap-500` (plugin 0.13-0.14, Vault 1.11-1.12): hashicorp/cap; an empty issuer is not checked;
 *   `invalid issuer (iss) claim` and `invalid audience (aud) claim`, still as HTTP 500.
 * - `cap-403` (plugin >= 0.15, Vault >= 1.13; OpenBao, forked from Vault 1.14): the same, as 403.
 * An unknown or unparsable version is taken as current.
 */
export type ClaimRules = "jose" | "cap-500" | "cap-403";

export function claimRulesFor(vault: VaultRef | undefined): ClaimRules {
  if (!vault || vault.flavor !== "vault") return "cap-403";
  const m = /^v?(\d+)\.(\d+)/.exec(vault.version.trim());
  if (!m) return "cap-403";
  const [major, minor] = [Number(m[1]), Number(m[2])];
  if (major !== 1) return "cap-403";
  if (minor <= 10) return "jose";
  if (minor <= 12) return "cap-500";
  return "cap-403";
}

/**
 * The outcome Vault gives a token that TokenReview would accept. `vault` picks the rules of the
 * plugin that Vault bundles (see claimRulesFor); without it, the current rules.
 */
export function predictLogin(cfg: IssuerSettings, role: { audience?: string }, token: TokenClaims, vault?: VaultRef): LoginOutcome {
  const rules = claimRulesFor(vault);
  const status = rules === "cap-403" ? 403 : 500;
  // Before 0.13 an empty issuer with validation on meant `kubernetes/serviceaccount`.
  const expectedIssuer = cfg.issuer === "" && rules === "jose" ? LEGACY_ISSUER : cfg.issuer;
  if (!cfg.disable_iss_validation && expectedIssuer !== "" && token.iss !== expectedIssuer) {
    return { ok: false, status, error: rules === "jose" ? 'claim "iss" is invalid' : "invalid issuer (iss) claim" };
  }
  if (role.audience && !token.aud.includes(role.audience)) {
    return { ok: false, status, error: rules === "jose" ? 'claim "aud" is invalid' : "invalid audience (aud) claim" };
  }
  return { ok: true, status: 200 };
}
