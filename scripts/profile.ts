// npm run profile: what a cluster and its Vault look like to kubernetes auth, as JSON, for profile:diff.
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { COMMON_FLAGS, runScript } from "../lib/cli.ts";
import { UsageError } from "../lib/errors.ts";
import { collectProfile, type ProfileOptions } from "../lib/gate/profile.ts";
import { ISSUER_MODES } from "../lib/gate/predict.ts";
import type { IssuerMode, Profile } from "../lib/gate/types.ts";
import { log } from "../lib/log.ts";
import { redact } from "../lib/redact.ts";
import { runVitest, startOwnedTarget } from "../lib/run.ts";
import type { TargetInfo } from "../lib/lifecycle/info.ts";
import { preflight, readTargetInfo, startTarget, type StartedTarget } from "../lib/lifecycle/start.ts";
import { connect } from "../lib/auth-setup/steps.ts";

await runScript(
  {
    command: "npm run profile -- --out FILE [options] [suite filter...]",
    summary:
      "Records the cluster's and Vault's kubernetes-auth facts (issuer, JWKS, token claims and lifetimes, token\n" +
      "Secrets, auth config and roles) as JSON. Compare two with npm run profile:diff.",
    flags: [
      ...COMMON_FLAGS,
      { flag: "--out", value: "FILE", help: "where to write the profile (JSON)" },
      {
        flag: "--vault-issuer",
        value: "MODE",
        help: `a Vault of the run's own: issuer setting to configure and record: ${ISSUER_MODES.join("|")} (default discovered)`,
      },
      { flag: "--mount", value: "PATHS", help: "your Vault: kubernetes auth mounts to read, comma-separated (default: every one)" },
      { flag: "--with-suites", help: "also run the conformance suites on the same target and record each case's result" },
    ],
    exits: { ok: "profile written", failed: "--with-suites: a case failed (the profile is written all the same)" },
  },
  async (config, parsed) => {
    const outArg = parsed.local["--out"];
    if (typeof outArg !== "string") throw new UsageError("profile needs --out FILE");
    if (config.dryRun)
      throw new UsageError("--dry-run is for npm run conformance; a profile only reads, apart from one labelled namespace");
    const mode = String(parsed.local["--vault-issuer"] ?? "discovered");
    if (!(ISSUER_MODES as readonly string[]).includes(mode))
      throw new UsageError(`--vault-issuer must be one of ${ISSUER_MODES.join(", ")} (got "${mode}")`);
    const out = resolve(outArg);
    // Where the profile goes is bad input if it cannot exist: said now, not after the target ran.
    await mkdir(dirname(out), { recursive: true }).catch((err: NodeJS.ErrnoException) => {
      // mkdir -p through a file says EEXIST (Node) or ENOTDIR: either way a parent is not a directory.
      const why = err.code === "EEXIST" || err.code === "ENOTDIR" ? "a parent of it is a file, not a directory" : (err.code ?? err.message);
      throw new UsageError(`cannot write --out ${out}: ${why}`);
    });
    // A Vault the harness started is ours to configure; a user's Vault is only read.
    const ownVault = config.target !== "existing" || config.vault.mode === "process";
    if (!ownVault && parsed.local["--vault-issuer"] !== undefined)
      throw new UsageError("--vault-issuer configures a Vault of the run's own; your Vault is only read (see --mount)");
    const vault: ProfileOptions["vault"] = ownVault
      ? { kind: "harness", issuerMode: mode as IssuerMode }
      : {
          kind: "read",
          ...(typeof parsed.local["--mount"] === "string" ? { mounts: String(parsed.local["--mount"]).split(",").filter(Boolean) } : {}),
        };

    await preflight(config);
    let target: StartedTarget | undefined;
    let info: TargetInfo;
    const attached = config.targetInfoFile;
    if (attached) info = await readTargetInfo(attached);
    else {
      target = await startOwnedTarget(config, startTarget); // one that cannot start: one line, exit 3
      info = target.info;
    }
    try {
      let cases: Profile["cases"];
      if (parsed.local["--with-suites"]) {
        // The suites attach to this target rather than start their own.
        const r = await runVitest(config, ["conformance"], parsed.positionals, target ? { target } : {});
        cases = { totals: r.totals, results: r.cases.map((c) => ({ id: c.id, status: c.status })) };
      }
      log.info(
        "profile",
        `profiling ${info.target} target ${info.runId} (${vault.kind === "harness" ? `Vault of the run, issuer mode ${mode}` : "your Vault, read only"})`,
      );
      const profile = await collectProfile(await connect(info), { fixturesDir: config.fixturesDir, vault });
      if (cases) profile.cases = cases;
      await mkdir(dirname(out), { recursive: true });
      await writeFile(out, redact(JSON.stringify(profile, null, 2)) + "\n");
      const k = profile.kubernetes;
      process.stdout.write(
        [
          `profile written to ${out}`,
          `  kubernetes ${k.version}: tokens iss ${k.issuer.boundToken}, aud ${k.defaultAudiences.join(",") || "(none)"}, discovery ${k.issuer.discovery ?? "unavailable"}`,
          `  token Secrets auto-created: ${k.tokenSecretsAutoCreated ? "yes" : "no"}; 48 h request granted ${"grantedSeconds" in k.longRequest ? `${k.longRequest.grantedSeconds} s` : k.longRequest.error}`,
          `  ${profile.vault.flavor} ${profile.vault.version}: ${profile.vault.mounts.length} kubernetes auth mount(s)${profile.vault.note ? ` (${profile.vault.note})` : ""}`,
          ...(cases ? [`  suites: ${cases.totals.passed} passed, ${cases.totals.failed} failed, ${cases.totals.skipped} skipped`] : []),
          "",
        ].join("\n"),
      );
      return cases && cases.totals.failed > 0 ? 1 : 0;
    } finally {
      await target?.stop();
    }
  },
);
