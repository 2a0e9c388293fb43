// npm run audit:diff: who gained or lost access between two audits (npm run audit).
import { appendToFile, runScript } from "../lib/cli.ts";
import { UsageError } from "../lib/errors.ts";
import { diffAudits, formatAuditDiff, loadAudit } from "../lib/access/audit-diff.ts";

await runScript(
  {
    command: "npm run audit:diff -- BEFORE AFTER [--markdown FILE]",
    summary: "Compares two audits (audit.json of npm run audit): identities, namespaces and capabilities each role gained or lost.",
    flags: [{ flag: "--markdown", value: "FILE", help: "also append the diff to FILE as Markdown (e.g. $GITHUB_STEP_SUMMARY)" }],
    exits: { ok: "no role gained anything (losses alone are 0)", failed: "a role gained an identity, namespace or capability" },
  },
  async (_config, parsed) => {
    if (parsed.positionals.length !== 2) throw new UsageError("audit:diff needs two audits: BEFORE AFTER");
    const [a, b] = parsed.positionals as [string, string];
    const d = diffAudits(loadAudit(a), loadAudit(b));
    const text = formatAuditDiff(d, { before: a, after: b });
    process.stdout.write(text);
    const md = parsed.local["--markdown"];
    if (typeof md === "string") await appendToFile(md, "```\n" + text + "```\n", "--markdown");
    return d.gained > 0 ? 1 : 0;
  },
);
