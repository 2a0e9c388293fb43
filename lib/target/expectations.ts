import type { Flavor } from "../config.ts";

/**
 * Expectations that differ by Vault flavor or version, in one place, keyed by the version the
 * target reports. Suites ask here instead of branching on versions themselves. Each entry says
 * where the difference comes from.
 */
export interface Expectations {
  /** Substring of the 400 for a role without bound namespaces (and no selector). */
  roleNeedsNamespaces: string;
  /** Substring of the 400 for an invalid alias_name_source. */
  badAliasSource: string;
  /** Substring of the 400 for token_ttl > token_max_ttl. */
  ttlAboveMax: string;
  /** Substring of the 400 for garbage pem_keys. */
  badPemKeys: string;
  /** Status and substring for a caller outside token_bound_cidrs. */
  cidrRejected: { status: number; error: string };
  /** A role written without `audience`: 200 with this warning, or 204 and no warning (undefined). */
  noAudienceWarning: string | undefined;
  /** Does the config endpoint refuse a kubernetes_ca_cert holding no certificate? */
  garbageCaRejected: boolean;
  /** Status and substring for an unparsable JWT. */
  malformedJwt: { status: number; error: string };
  /**
   * `disable_local_ca_jwt=true` without `kubernetes_ca_cert`: undefined = accepted (the plugin
   * falls back to the system roots); otherwise the 400's substring.
   */
  caRequiredWithoutLocalCaJwt: string | undefined;
  /**
   * `use_annotations_as_alias_metadata`: `supported` = the config field exists and annotated
   * ServiceAccounts' `vault.hashicorp.com/alias-metadata-*` annotations reach the entity alias;
   * otherwise how the config endpoint treats the unknown field.
   */
  aliasMetadata: "supported" | "ignored";
  /** Status of renew-self once the token's role is deleted (the error names the role). */
  renewalRoleDeleted: { status: number };
  /**
   * renew-self after the token's ServiceAccount is deleted: undefined = renewed (no TokenReview on
   * renewal); otherwise the refusal (the renewal repeats TokenReview).
   */
  renewalAfterServiceAccountDeleted: { status: number; error: string } | undefined;
  /** A login with use_annotations_as_alias_metadata when the reviewer may not get serviceaccounts. */
  aliasMetadataReviewerForbidden: { status: number; error: string };
}

const base: Expectations = {
  roleNeedsNamespaces: `"bound_service_account_namespaces" can not be empty if "bound_service_account_namespace_selector" is not set`,
  badAliasSource: "invalid alias_name_source, must be one of: serviceaccount_uid, serviceaccount_name",
  ttlAboveMax: "'token_ttl' cannot be greater than 'token_max_ttl'",
  garbageCaRejected: true,
  badPemKeys: "data does not contain any valid RSA or ECDSA public keys",
  // The common part of both wordings: plugin 0.22.2 (Vault 1.20.x) says "Role X does not have an
  // audience. In Vault v1.21+, ..."; 0.22.3+/0.23 (Vault 1.21) "... does not have an audience configured. ...".
  noAudienceWarning: "does not have an audience",
  cidrRejected: { status: 403, error: "permission denied" },
  malformedJwt: { status: 403, error: "permission denied" },
  // Plugin >= 0.19 falls back to the system roots (HashiCorp Vault 1.17+).
  caRequiredWithoutLocalCaJwt: undefined,
  aliasMetadata: "supported",
  // The plugin returns a plain error from its renew handler; the token store answers 500
  // ("failed to renew entry: role <r> does not exist during renewal"). Seen on Vault 1.21.1.
  renewalRoleDeleted: { status: 500 },
  renewalAfterServiceAccountDeleted: undefined,
  aliasMetadataReviewerForbidden: { status: 500, error: "failed to get service account (code 403" },
};

/** HashiCorp Vault 1.21 bundles vault-plugin-auth-kubernetes 0.23.x; OpenBao 2.x its own port. */
export function expectationsFor(flavor: Flavor, version: string): Expectations {
  switch (flavor) {
    case "vault": {
      // Plugin 0.12-0.18 (Vault 1.10-1.16, per Vault's go.mod) refused a config without CA and
      // with disable_local_ca_jwt=true; 0.19 (Vault 1.17) falls back to the system roots.
      const minor = vaultMinor(version);
      let e = base;
      if (minor !== undefined && minor >= 10 && minor <= 16)
        e = { ...e, caRequiredWithoutLocalCaJwt: "kubernetes_ca_cert must be given when disable_local_ca_jwt is true" };
      // Vault 1.19.x bundles plugin 0.21.0, which has no missing-audience warning: 204, no
      // warnings. Seen on Vault 1.19.4 (built here; the warning came with 0.22.2 in Vault 1.20.0).
      if (minor !== undefined && minor <= 19) e = { ...e, noAudienceWarning: undefined };
      return e;
    }
    case "openbao":
      // OpenBao's port predates the plugin's CA validation (0.19): a CA without certificates
      // is stored, and logins then fail at TLS time. Seen on OpenBao 2.7.2.
      // Its pem_keys parser and role endpoint also predate HashiCorp's wording and the
      // missing-audience warning (plugin 0.22.3). Seen on OpenBao 2.7.2.
      // Its config endpoint keeps the plugin's 0.15-0.18 rule: no CA with disable_local_ca_jwt=true is
      // a 400 (an API server with a publicly trusted certificate needs its roots given explicitly), and
      // it has no use_annotations_as_alias_metadata (plugin 0.18). Seen on OpenBao 2.7.2.
      return {
        ...base,
        garbageCaRejected: false,
        badPemKeys: "data does not contain any valid public keys",
        noAudienceWarning: undefined,
        caRequiredWithoutLocalCaJwt: "kubernetes_ca_cert must be given when disable_local_ca_jwt is true",
        aliasMetadata: "ignored",
        // Its renew handler reviews the login's JWT again (kept with the token): once the
        // ServiceAccount is gone, renewal fails. Seen on OpenBao 2.7.2 (HashiCorp renews).
        renewalAfterServiceAccountDeleted: {
          status: 403,
          error: "failed to validate token and secret still exist",
        },
      };
  }
}

/** The minor of a HashiCorp Vault 1.x version ("1.20.4", "v1.12.7+ent"); undefined if it is not one. */
function vaultMinor(version: string): number | undefined {
  const m = /^v?1\.(\d+)\./.exec(version.trim());
  return m ? Number(m[1]) : undefined;
}
