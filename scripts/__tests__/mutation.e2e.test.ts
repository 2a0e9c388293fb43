import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../lib/config.ts";
import type { MutationReport } from "../../lib/gate/mutation.ts";
import { script } from "./helpers.ts";

// npm run mutation on a real local target: mutants that break the setup are caught by named
// cases, and a mutant the cases cannot notice makes the run fail.
describe("npm run mutation", () => {
  const dir = mkdtempSync(join(tmpdir(), "vkc-mutation-e2e-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("kills real mutants, names the cases that caught them, and fails on a survivor", async () => {
    const fixtures = join(dir, "fixtures");
    cpSync(join(PACKAGE_ROOT, "fixtures"), fixtures, { recursive: true });
    // A mutant no expectation can notice: the role's token_ttl moves from 15m to 14m.
    writeFileSync(
      join(fixtures, "mutants", "zz-harmless.yaml"),
      "name: a harmless change\ncase: hardened-payments.yaml\nset:\n  roles.payments.token_ttl: 14m\n",
    );
    const reports = join(dir, "reports");
    const run = script("mutation.ts", ["--only", "names-wildcard,reviewer-unbound,zz-harmless", "--reports", reports], {
      VKC_FIXTURES: fixtures,
    });
    const code = await run.exited;
    expect(code, run.output()).toBe(1);
    const r = JSON.parse(readFileSync(join(reports, "mutation.json"), "utf8")) as MutationReport;
    expect(r).toMatchObject({ total: 3, killed: 2, survivors: ["zz-harmless.yaml"] });
    expect(r.baseline.failed).toBe(0);
    expect(r.baseline.passed).toBeGreaterThan(10);
    const byFile = Object.fromEntries(r.mutants.map((m) => [m.file, m]));
    expect(byFile["names-wildcard.yaml"]!.killedBy).toEqual(
      expect.arrayContaining([
        "login intruder (aud vault) as role payments -> 403",
        "access: role payments lets in exactly its intended identities",
      ]),
    );
    expect(byFile["reviewer-unbound.yaml"]!.killedBy).toContain("login payments (aud vault) as role payments -> 200");
    expect(byFile["zz-harmless.yaml"]).toMatchObject({ killed: false, killedBy: [] });
    expect(readFileSync(join(reports, "mutation.md"), "utf8")).toContain("| a harmless change (zz-harmless.yaml) | **survived** |");
    expect(run.output()).toContain("2/3 mutants killed");
  });

  it("bad mutants are one line and exit 2", async () => {
    const fixtures = join(dir, "bad");
    cpSync(join(PACKAGE_ROOT, "fixtures"), fixtures, { recursive: true });
    writeFileSync(join(fixtures, "mutants", "broken.yaml"), "name: broken\ncase: hardened-payments.yaml\ndelete: [roles.nope.audience]\n");
    const cases: [Record<string, string>, string[], RegExp][] = [
      [{}, ["--only", "no-such"], /^error: no mutant no-such \(have: .*names-wildcard\.yaml/m],
      [{ VKC_TARGET: "existing" }, [], /^error: mutation runs on the local target/m],
      [
        { VKC_FIXTURES: fixtures },
        ["--only", "broken"],
        /^error: mutant broken\.yaml: cannot delete roles\.nope\.audience: the case has no such field$/m,
      ],
    ];
    for (const [env, args, want] of cases) {
      const run = script("mutation.ts", [...args, "--reports", join(dir, "bad-reports")], env);
      expect(await run.exited, run.output()).toBe(2);
      expect(run.output()).toMatch(want);
      expect(run.output()).not.toMatch(/^\s+at /m);
    }
  });
});
