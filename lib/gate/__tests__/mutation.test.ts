import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadYaml } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../config.ts";
import {
  classifyMutant,
  formatMutation,
  loadMutants,
  mutantLine,
  mutateCase,
  mutatedFixtures,
  parseMutant,
  selectMutants,
  summarize,
} from "../mutation.ts";

const FIXTURES = join(PACKAGE_ROOT, "fixtures");

describe("mutants as data", () => {
  it("the shipped mutants cover the misconfigurations the gate must catch", () => {
    const files = loadMutants(FIXTURES).map((m) => m.file);
    expect(files).toEqual(
      expect.arrayContaining([
        "names-wildcard.yaml",
        "namespaces-wildcard.yaml",
        "policy-wildcard-path.yaml",
        "policy-write.yaml",
        "default-policy-widened.yaml",
        "reviewer-unbound.yaml",
        "reviewer-deleted.yaml",
        "wrong-issuer.yaml",
        "audience-removed.yaml",
        "ttl-above-max.yaml",
        "cidrs-dropped.yaml",
        // widening kinds the access, capability and identity probes must catch
        "second-namespace.yaml",
        "name-glob.yaml",
        "namespace-glob.yaml",
        "alias-by-name.yaml",
        "policy-list-engine-root.yaml",
        "policy-token-create.yaml",
        "policy-plus-segment.yaml",
        "selector-every-namespace.yaml",
      ]),
    );
  });

  it("set creates paths, delete requires them, the input is not changed", () => {
    const doc = { roles: { app: { audience: "vault", names: ["app"] } } };
    const out = mutateCase(doc, { file: "m", set: { "roles.app.names": ["*"], "reviewer.bind": false }, delete: ["roles.app.audience"] });
    expect(out).toEqual({ roles: { app: { names: ["*"] } }, reviewer: { bind: false } });
    expect(doc.roles.app.audience).toBe("vault");
    expect(() => mutateCase(doc, { file: "m", set: {}, delete: ["roles.nope.audience"] })).toThrow(/cannot delete roles\.nope\.audience/);
    expect(() => mutateCase(doc, { file: "m", set: { "roles.app.audience.x": 1 }, delete: [] })).toThrow(/audience is not a mapping/);
  });

  it("rejects mutants that are not one (unknown keys, no case, no change)", () => {
    expect(() => parseMutant("a.yaml", { name: "a", case: "hardened-payments.yaml", sett: {} }, "a.yaml", FIXTURES)).toThrow(
      /unknown key "sett"/,
    );
    expect(() => parseMutant("a.yaml", { name: "a", case: "nope.yaml", set: { x: 1 } }, "a.yaml", FIXTURES)).toThrow(
      /`case` must name a file/,
    );
    expect(() => parseMutant("a.yaml", { name: "a", case: "hardened-payments.yaml" }, "a.yaml", FIXTURES)).toThrow(/changes nothing/);
  });

  it("a mutant's fixtures hold only its case, mutated, and its policy files", async () => {
    const dest = join(mkdtempSync(join(tmpdir(), "vkc-mut-")), "f");
    try {
      const m = loadMutants(FIXTURES).find((x) => x.file === "policy-write.yaml")!;
      await mutatedFixtures(FIXTURES, m, dest);
      expect(readdirSync(join(dest, "cases"))).toEqual(["hardened-payments.yaml"]);
      expect(readdirSync(dest)).not.toContain("mutants");
      expect(readFileSync(join(dest, "policies", "payments.hcl"), "utf8")).toContain('"create", "read", "update"');
      const n = loadMutants(FIXTURES).find((x) => x.file === "names-wildcard.yaml")!;
      await mutatedFixtures(FIXTURES, n, join(dest, "..", "g"));
      const doc = loadYaml(readFileSync(join(dest, "..", "g", "cases", "hardened-payments.yaml"), "utf8")) as {
        roles: Record<string, { bound_service_account_names: string[] }>;
      };
      expect(doc.roles.payments!.bound_service_account_names).toEqual(["*"]);
      expect(doc.roles["payments-office"]!.bound_service_account_names).toEqual(["payments"]);
    } finally {
      rmSync(join(dest, ".."), { recursive: true, force: true });
    }
  });

  it("the report counts killed mutants and lists survivors", () => {
    const r = summarize({
      target: "local",
      flavor: "vault",
      baseline: { passed: 19, failed: 0 },
      mutants: [
        { file: "a.yaml", name: "A", killed: true, killedBy: ["login x -> 403"], passed: 3 },
        { file: "b.yaml", name: "B", killed: false, killedBy: [], passed: 9 },
      ],
    });
    expect(r).toMatchObject({ total: 2, killed: 1, survivors: ["b.yaml"] });
    const md = formatMutation(r);
    expect(md).toContain("1/2 mutants killed");
    expect(md).toContain("| A (a.yaml) | killed | login x -> 403 |");
    expect(md).toContain("| B (b.yaml) | **survived** | nothing (9 cases passed) |");
  });

  it("classifies a run: killed by the failed cases, survived when all pass, an error without results", () => {
    const m = { file: "a.yaml", name: "A" };
    const cases = [
      { name: "login x -> 403", status: "failed" },
      { name: "login y -> 200", status: "passed" },
    ];
    const killed = classifyMutant(m, { code: 1, results: { totals: { passed: 1, failed: 1 }, cases }, log: "l" });
    expect(killed).toEqual({ file: "a.yaml", name: "A", killedBy: ["login x -> 403"], passed: 1, killed: true });
    expect(mutantLine(killed)).toBe("killed   A by 1 case(s)");
    const survived = classifyMutant(m, { code: 0, results: { totals: { passed: 2, failed: 0 }, cases: [] }, log: "l" });
    expect(survived).toMatchObject({ killed: false, killedBy: [], passed: 2 });
    expect(mutantLine(survived)).toBe("SURVIVED A");
    const error = classifyMutant(m, { code: 3, results: undefined, log: "out.log" });
    expect(error).toMatchObject({ killed: false, error: "no results (exit 3; see out.log)" });
    expect(mutantLine(error)).toBe("ERROR    A");
  });

  it("--only selects mutants by file, with or without .yaml; an unknown one is bad input", () => {
    const all = loadMutants(FIXTURES);
    expect(selectMutants(all, undefined)).toBe(all);
    const one = all[0]!.file;
    expect(selectMutants(all, [one.replace(/\.yaml$/, "")]).map((m) => m.file)).toEqual([one]);
    expect(selectMutants(all, [one]).map((m) => m.file)).toEqual([one]);
    expect(() => selectMutants(all, ["no-such-mutant"])).toThrow(/no mutant no-such-mutant/);
  });
});
