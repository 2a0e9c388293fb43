import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../config.ts";
import { UsageError } from "../../errors.ts";
import { loadPersona, parsePersona } from "../persona.ts";

describe("persona retiredSigningKey (a signing-key rotation on the local target)", () => {
  it("accepts true/false and refuses anything else with one line", () => {
    expect(parsePersona("p", { issuers: ["https://x"], retiredSigningKey: true }, "p.json").retiredSigningKey).toBe(true);
    expect(parsePersona("p", { issuers: ["https://x"], retiredSigningKey: false }, "p.json")).not.toHaveProperty("retiredSigningKey");
    expect(() => parsePersona("p", { issuers: ["https://x"], retiredSigningKey: "yes" }, "p.json")).toThrow(UsageError);
  });
  it("the shipped rotated-signing-key persona sets it; aks-like has issuer = default audience", () => {
    const fixtures = join(PACKAGE_ROOT, "fixtures");
    expect(loadPersona(fixtures, "rotated-signing-key").retiredSigningKey).toBe(true);
    const aks = loadPersona(fixtures, "aks-like");
    expect(aks.apiAudiences).toEqual(aks.issuers);
    expect(aks.issuers[0]).toMatch(/^https:\/\//);
  });
});
