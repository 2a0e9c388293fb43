// npm test: unit and harness tests, then the conformance suites on the local target with both
// Vault flavors: HashiCorp Vault with kind's issuer, and OpenBao with a provider-style issuer URL
// (the kind of issuer EKS/GKE/VKE clusters use), so one run covers both issuer shapes.
import { join } from "node:path";
import { COMMON_FLAGS, runScript } from "../lib/cli.ts";
import { loadConfig, type Flavor } from "../lib/config.ts";
import { runVitest, startOwnedTarget, verdict } from "../lib/run.ts";
import { preflight, startTarget } from "../lib/lifecycle/start.ts";

const PROVIDER_STYLE_ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/VKC0CONFORMANCE0TEST";

await runScript(
  {
    command: "npm test -- [options] [file filter...]",
    summary:
      "Unit and harness tests plus the conformance suites on the local target, for both flavors\n" +
      "(--flavor limits it to one). Reports go to <reports>/tests/ and <reports>/<flavor>/.",
    flags: COMMON_FLAGS,
    exits: { ok: "every test and case passed", failed: "a test or case failed, or a flavor ran no case" },
  },
  async (config, parsed) => {
    // One config per phase, from the script's environment (flags applied) plus what the phase
    // changes; each run hands its config's environment to vitest and its workers.
    const phase = (extra: Record<string, string>) => loadConfig({ ...config.env, ...extra });
    const explicitFlavor = config.env.VKC_FLAVOR !== undefined;
    const flavors: Flavor[] = explicitFlavor ? [config.flavor] : ["vault", "openbao"];
    // Provision everything first, with progress, so a fresh machine shows what it builds.
    for (const flavor of flavors) await preflight({ ...config, flavor });
    const totals = { passed: 0, failed: 0, skipped: 0 };
    let ranNothing = false;
    const add = (r: { totals: typeof totals }) => {
      for (const k of ["passed", "failed", "skipped"] as const) totals[k] += r.totals[k];
    };
    // Unit and harness tests first, with no target up: the harness's scripts start their own, and
    // must not inherit anything of a target this process owns. Reports: <reports>/tests/.
    {
      const cfg = phase({ VKC_REPORTS_DIR: join(config.reportsDir, "tests") });
      const r = await runVitest(cfg, ["unit", "harness"], parsed.positionals, { allowNoTests: parsed.positionals.length > 0 });
      if (r.totals.passed + r.totals.failed + r.totals.skipped > 0) verdict(r, "unit, harness");
      else process.stdout.write("\nunit, harness: no test file matches the filter\n");
      add(r);
    }
    for (const [i, flavor] of flavors.entries()) {
      const cfg = phase({
        VKC_FLAVOR: flavor,
        VKC_REPORTS_DIR: join(config.reportsDir, flavor),
        ...(i > 0 && config.env.VKC_ISSUER === undefined ? { VKC_ISSUER: PROVIDER_STYLE_ISSUER } : {}),
      });
      // The script owns each flavor's target; the conformance project attaches to it.
      const target = await startOwnedTarget(cfg, startTarget);
      let r;
      try {
        r = await runVitest(cfg, ["conformance"], parsed.positionals, { target });
      } finally {
        await target.stop();
      }
      verdict(r, `${flavor} (conformance)`);
      if (r.totals.passed + r.totals.failed === 0) ranNothing = true;
      add(r);
    }
    const code = verdict({ totals }, "npm test");
    return ranNothing ? 1 : code;
  },
);
