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

/** The outcome Vault gives a token that TokenReview would accept. */
export function predictLogin(cfg: IssuerSettings, role: { audience?: string }, token: TokenClaims): LoginOutcome {
  if (!cfg.disable_iss_validation && cfg.issuer !== "" && token.iss !== cfg.issuer) {
    return { ok: false, status: 403, error: "invalid issuer (iss) claim" };
  }
  if (role.audience && !token.aud.includes(role.audience)) {
    return { ok: false, status: 403, error: "invalid audience (aud) claim" };
  }
  return { ok: true, status: 200 };
}
