// npm run audit: who can log in as what on your cluster and Vault, and what each role may do there.
import { join, resolve } from "node:path";
import { COMMON_FLAGS, noPositionals, runScript } from "../lib/cli.ts";
import { UsageError } from "../lib/errors.ts";
import { runAudit } from "../lib/access/audit-run.ts";

const flag = (name: string) => COMMON_FLAGS.find((f) => f.flag === name)!;

await runScript(
  {
    command: "npm run audit -- [--probe] [--intent FILE] [--mount PATHS] [--out FILE] [options]",
    summary:
      "For every kubernetes auth mount and role of your Vault (VAULT_ADDR, VAULT_TOKEN): the ServiceAccounts of your\n" +
      "cluster (KUBECONFIG, --context) each role lets in, and what the role's policies allow. Static by default (no\n" +
      "logins); --probe logs in for real. Writes audit.json and audit.md. Compare two audits with npm run audit:diff.",
    flags: [
      flag("--context"),
      flag("--flavor"), // openbao: BAO_* win over VAULT_*, as for the bao CLI
      flag("--reports"),
      flag("--debug"),
      { flag: "--probe", help: "also log in for real for every (role, ServiceAccount) pair (creates identity entities; tokens revoked)" },
      { flag: "--intent", value: "FILE", help: "compare with an intent file (YAML); exit 1 on a deviation" },
      { flag: "--mount", value: "PATHS", help: "kubernetes auth mounts to audit, comma-separated (default: every one)" },
      {
        flag: "--out",
        value: "FILE",
        help: "where to write the access map (default <reports>/audit.json; the Markdown next to it, audit.md)",
      },
      { flag: "--concurrency", value: "N", help: "--probe: logins and TokenRequests at once (default 16)" },
    ],
    exits: {
      ok: "no finding",
      failed: "a static/probe disagreement (--probe) or a deviation from --intent",
      usage: "an invalid intent, an unknown mount or role, credentials short of a permission",
    },
  },
  async (config, parsed) => {
    noPositionals(parsed, "audit");
    const n = parsed.local["--concurrency"] === undefined ? 16 : Number(parsed.local["--concurrency"]);
    if (!Number.isInteger(n) || n < 1 || n > 256)
      throw new UsageError(`--concurrency must be an integer from 1 to 256 (got ${String(parsed.local["--concurrency"])})`);
    const mounts = typeof parsed.local["--mount"] === "string" ? String(parsed.local["--mount"]).split(",").filter(Boolean) : undefined;
    const out = resolve(typeof parsed.local["--out"] === "string" ? String(parsed.local["--out"]) : join(config.reportsDir, "audit.json"));
    const r = await runAudit(config, {
      probe: parsed.local["--probe"] === true,
      ...(typeof parsed.local["--intent"] === "string" ? { intentFile: String(parsed.local["--intent"]) } : {}),
      ...(mounts ? { mounts } : {}),
      concurrency: n,
      out,
    });
    return r.exitCode;
  },
);
