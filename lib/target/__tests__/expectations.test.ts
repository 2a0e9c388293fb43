import { rootCertificates } from "node:tls";
import { describe, expect, it } from "vitest";
import { expectationsFor } from "../expectations.ts";
import { authConfigFor } from "../steps.ts";
import type { TargetInfo } from "../info.ts";

// The missing-audience warning, as each plugin version words it (vault-plugin-auth-kubernetes
// path_role.go): 0.22.2 is bundled by Vault 1.20.x, 0.23.1 by Vault 1.21.1.
const WORDING = {
  "0.22.2": "Role app does not have an audience. In Vault v1.21+, specifying an audience on roles will be required.",
  "0.23.1":
    "Role app does not have an audience configured. While audiences are not required, consider specifying one if your use case would benefit from additional JWT claim verification.",
};

describe("expectations by flavor and version", () => {
  it.each([
    ["1.20.4", WORDING["0.22.2"]],
    ["1.21.1", WORDING["0.23.1"]],
  ])("HashiCorp Vault %s: the expected missing-audience warning is part of what that version says", (version, said) => {
    const w = expectationsFor("vault", version).noAudienceWarning;
    expect(w).toBeDefined();
    expect(said).toContain(w);
  });

  it("HashiCorp Vault 1.19.x (plugin 0.21.0) gives no missing-audience warning: 204 (seen on 1.19.4)", () => {
    expect(expectationsFor("vault", "1.19.4").noAudienceWarning).toBeUndefined();
    expect(expectationsFor("vault", "1.20.0").noAudienceWarning).toBeDefined();
  });

  it("disable_local_ca_jwt without a CA: refused by HashiCorp Vault 1.10-1.16 (plugin 0.12-0.18) and OpenBao, accepted by Vault 1.17+", () => {
    const msg = "kubernetes_ca_cert must be given when disable_local_ca_jwt is true";
    expect(expectationsFor("vault", "1.9.10").caRequiredWithoutLocalCaJwt).toBeUndefined();
    expect(expectationsFor("vault", "1.10.0").caRequiredWithoutLocalCaJwt).toBe(msg);
    expect(expectationsFor("vault", "1.16.3").caRequiredWithoutLocalCaJwt).toBe(msg);
    expect(expectationsFor("vault", "1.17.0").caRequiredWithoutLocalCaJwt).toBeUndefined();
    expect(expectationsFor("vault", "1.21.1").caRequiredWithoutLocalCaJwt).toBeUndefined();
    expect(expectationsFor("openbao", "2.7.2").caRequiredWithoutLocalCaJwt).toBe(msg);
  });

  it("OpenBao gives no missing-audience warning", () => {
    expect(expectationsFor("openbao", "2.7.2").noAudienceWarning).toBeUndefined();
  });
});

describe("auth config without a CA in the kubeconfig (an API server with a publicly trusted certificate)", () => {
  const info = (flavor: "vault" | "openbao") =>
    ({
      kube: { hostForVault: "https://api.example.com", caCertForVault: "" },
      vault: { flavor, version: flavor === "vault" ? "1.21.1" : "2.7.2" },
    }) as unknown as TargetInfo;

  it("HashiCorp Vault: no kubernetes_ca_cert (the plugin falls back to the system roots)", () => {
    const cfg = authConfigFor(info("vault"), "jwt");
    expect(cfg).not.toHaveProperty("kubernetes_ca_cert");
    expect(cfg.disable_local_ca_jwt).toBe(true);
  });

  it("OpenBao (refuses disable_local_ca_jwt=true without a CA): the public roots as kubernetes_ca_cert", () => {
    const cfg = authConfigFor(info("openbao"), "jwt");
    expect(cfg.disable_local_ca_jwt).toBe(true);
    expect(cfg.kubernetes_ca_cert).toBe(rootCertificates.join("\n"));
    expect(cfg.kubernetes_ca_cert).toContain("-----BEGIN CERTIFICATE-----");
  });
});
