import { readFile } from "node:fs/promises";
import { UsageError } from "../errors.ts";
import { describeSettings, LEGACY_ISSUER, predictLogin, type IssuerSettings } from "./predict.ts";
import { PROFILE_SCHEMA, type AuthMountProfile, type LoginOutcome, type Profile, type TokenFacts } from "./types.ts";

/**
 * What changed between two profiles and what it breaks. A finding is `break` when logins that
 * worked with a recorded Vault config would fail after the change; `warn` when something a user
 * relies on changed (token lifetimes, token Secrets) without breaking a recorded config; `info`
 * otherwise. The verdict gates an upgrade: exit 1 on any break.
 */

export type Severity = "break" | "warn" | "info";

export interface Finding {
  severity: Severity;
  /** One line: what changed and what it does. */
  message: string;
}

export interface SettingsRow {
  settings: string;
  boundBefore: LoginOutcome;
  boundAfter: LoginOutcome;
  legacyAfter: LoginOutcome | null;
}

export interface ProfileDiff {
  before: { label: string; createdAt: string };
  after: { label: string; createdAt: string };
  findings: Finding[];
  /** The Vault configs judged (recorded in the profiles). */
  judged: string[];
  /** How the usual issuer settings fare across the change, recorded config or not. */
  settings: SettingsRow[];
  verdict: "breaks" | "ok" | "nothing-to-judge";
}

/** A profile file (npm run profile); an unreadable or invalid one is bad input. */
export async function loadProfile(path: string): Promise<Profile> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read profile ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseProfile(text, path);
}

export function parseProfile(text: string, where: string): Profile {
  let p: unknown;
  try {
    p = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${where} is not JSON: ${(err as Error).message.split("\n")[0]}`);
  }
  const o = p as Partial<Profile> | null;
  if (!o || typeof o !== "object" || o.schema !== PROFILE_SCHEMA || !o.kubernetes || !o.vault)
    throw new UsageError(`${where} is not a profile written by npm run profile (schema ${PROFILE_SCHEMA})`);
  return o as Profile;
}

const label = (p: Profile) =>
  `${p.target}${p.persona ? `/${p.persona}` : ""} kubernetes ${p.kubernetes.version}, ${p.vault.flavor} ${p.vault.version}`;
const outcome = (o: LoginOutcome) => (o.ok ? "accepted" : `rejected (${o.status} ${o.error})`);
const settingsOf = (m: AuthMountProfile): IssuerSettings => ({
  disable_iss_validation: m.config.disable_iss_validation,
  issuer: m.config.issuer,
});
const sameConfig = (a: AuthMountProfile, b: AuthMountProfile) =>
  JSON.stringify(a.config) === JSON.stringify(b.config) && JSON.stringify(a.roles) === JSON.stringify(b.roles);
const lifetime = (t: TokenFacts | { error: string }) => ("error" in t ? undefined : t);
const secs = (s: number) => (s % 3600 === 0 ? `${s / 3600} h` : s % 60 === 0 ? `${s / 60} min` : `${s} s`);

export function diffProfiles(before: Profile, after: Profile): ProfileDiff {
  const f: Finding[] = [];
  const add = (severity: Severity, message: string) => f.push({ severity, message });
  const kb = before.kubernetes;
  const ka = after.kubernetes;
  // Two local-target runs never share a PKI: a new CA, key and port are the harness's doing.
  const throwaway = before.target === "local" && after.target === "local";
  const throwawayNote = " (expected between two local-target runs: each has its own throwaway PKI)";

  if (kb.version !== ka.version) add("info", `Kubernetes ${kb.version} -> ${ka.version}`);
  if (before.vault.flavor !== after.vault.flavor || before.vault.version !== after.vault.version)
    add("info", `${before.vault.flavor} ${before.vault.version} -> ${after.vault.flavor} ${after.vault.version}`);

  const bi = kb.issuer.boundToken;
  const ai = ka.issuer.boundToken;
  if (bi !== ai)
    add(
      "warn",
      `issuer changed from ${bi} to ${ai}: a Vault config with issuer=${bi} and validation on rejects every new token (403 invalid issuer (iss) claim)`,
    );
  if (ka.issuer.discovery !== null && ka.issuer.discovery !== ai)
    add(
      "warn",
      `after: the discovery document names issuer ${ka.issuer.discovery} but tokens carry ${ai}; an issuer copied from discovery rejects every token`,
    );
  if (JSON.stringify(kb.defaultAudiences) !== JSON.stringify(ka.defaultAudiences))
    add(
      "warn",
      `default token audience changed from ${kb.defaultAudiences.join(",") || "(none)"} to ${ka.defaultAudiences.join(",") || "(none)"}: roles with audience=${kb.defaultAudiences[0] ?? ""} reject default tokens (403 invalid audience (aud) claim)`,
    );

  // Token lifetimes and where reviewer JWTs come from.
  const pb = lifetime(kb.podBoundToken);
  const pa = lifetime(ka.podBoundToken);
  if (pb && pa && pb.lifetimeSeconds !== pa.lifetimeSeconds)
    add(
      pa.lifetimeSeconds < pb.lifetimeSeconds ? "warn" : "info",
      `pod tokens (requested for 3607 s) now live ${secs(pa.lifetimeSeconds)}, were ${secs(pb.lifetimeSeconds)}${pa.warnAfterSeconds === null && pb.warnAfterSeconds !== null ? ": no longer extended, so a reviewer JWT copied from a pod stops working within the hour" : ""}`,
    );
  if (
    "grantedSeconds" in kb.longRequest &&
    "grantedSeconds" in ka.longRequest &&
    kb.longRequest.grantedSeconds !== ka.longRequest.grantedSeconds
  )
    add(
      ka.longRequest.grantedSeconds < kb.longRequest.grantedSeconds ? "warn" : "info",
      `a 48 h TokenRequest is now granted ${secs(ka.longRequest.grantedSeconds)}, was ${secs(kb.longRequest.grantedSeconds)} (--service-account-max-token-expiration): a TokenRequest reviewer JWT must be renewed sooner`,
    );
  if (kb.tokenSecretsAutoCreated && !ka.tokenSecretsAutoCreated)
    add(
      "warn",
      "new ServiceAccounts no longer get a token Secret (Kubernetes 1.24+): a reviewer JWT read from `.secrets[0]` finds nothing; create a kubernetes.io/service-account-token Secret",
    );
  if (kb.issuer.legacyToken !== null && ka.issuer.legacyToken === null)
    add("warn", "token Secrets are no longer filled in: legacy tokens (and reviewer JWTs from Secrets) cannot be made");
  if (kb.anonymousDiscoveryStatus !== ka.anonymousDiscoveryStatus)
    add("info", `anonymous OIDC discovery: HTTP ${kb.anonymousDiscoveryStatus ?? "-"} -> ${ka.anonymousDiscoveryStatus ?? "-"}`);
  const kidsB = (kb.jwks ?? []).map((k) => k.kid).join(",");
  const kidsA = (ka.jwks ?? []).map((k) => k.kid).join(",");
  if (kb.jwks && ka.jwks && kidsB !== kidsA) add("info", `service-account signing keys changed${throwaway ? throwawayNote : ""}`);

  // The recorded Vault configs, judged against the cluster after the change.
  const judged: string[] = [];
  const configs: { name: string; m: AuthMountProfile }[] = before.vault.mounts.map((m) => ({ name: `before: ${m.path}`, m }));
  for (const m of after.vault.mounts) {
    // A Vault of the run gets a fresh mount per profile: the before one stands for both.
    if (m.source === "harness" && before.vault.mounts.some((b) => b.source === "harness")) continue;
    const twin = before.vault.mounts.find((b) => b.path === m.path);
    if (!twin || !sameConfig(twin, m)) configs.push({ name: `after: ${m.path}`, m });
  }
  const legacyAfter = ka.issuer.legacyToken;
  for (const { name, m } of configs) {
    judged.push(`${name} (${describeSettings(settingsOf(m))})`);
    const s = settingsOf(m);
    const roles = m.roles.length ? m.roles : [{ name: "(any role without audience)", audience: "" }];
    for (const r of roles) {
      const was = predictLogin(s, r, { iss: bi, aud: kb.defaultAudiences }, before.vault);
      const now = predictLogin(s, r, { iss: ai, aud: ka.defaultAudiences }, after.vault);
      const where = `mount ${m.path}, role ${r.name}`;
      if (was.ok && !now.ok)
        add(
          "break",
          `${where}: new bound tokens are ${outcome(now)} with ${describeSettings(s)}${r.audience ? ` and audience=${r.audience}` : ""}`,
        );
      else if (!was.ok && now.ok) add("info", `${where}: bound tokens, ${outcome(was)} before, are accepted after`);
      else if (!was.ok && !now.ok) add("warn", `${where}: bound tokens were already ${outcome(was)} before the change`);
      if (legacyAfter !== null && kb.issuer.legacyToken !== null) {
        const lw = predictLogin(s, r, { iss: kb.issuer.legacyToken, aud: [] }, before.vault);
        const ln = predictLogin(s, r, { iss: legacyAfter, aud: [] }, after.vault);
        if (lw.ok && !ln.ok) add("break", `${where}: legacy Secret tokens are ${outcome(ln)}`);
      }
    }
    if (m.config.caFingerprints.length && !ka.caFingerprints.some((c) => m.config.caFingerprints.includes(c)))
      add(
        throwaway ? "info" : "break",
        `mount ${m.path}: kubernetes_ca_cert does not hold the API server's CA any more: TokenReview fails TLS and every login fails${throwaway ? throwawayNote : ""}`,
      );
    if (m.config.pemKeyIds.length && ka.boundToken.kid && !m.config.pemKeyIds.includes(ka.boundToken.kid))
      add(
        throwaway ? "info" : "break",
        `mount ${m.path}: pem_keys do not hold the key new tokens are signed with (kid ${ka.boundToken.kid}): every login is rejected${throwaway ? throwawayNote : ""}`,
      );
    if (m.config.kubernetes_host !== ka.hostForVault)
      add(
        throwaway ? "info" : "warn",
        `mount ${m.path}: kubernetes_host is ${m.config.kubernetes_host}, the cluster is now at ${ka.hostForVault}${throwaway ? throwawayNote : ""}`,
      );
    if (!m.config.token_reviewer_jwt_set && m.config.disable_local_ca_jwt)
      add(
        "warn",
        `mount ${m.path}: no token_reviewer_jwt: every client's own JWT does the TokenReview, so every client ServiceAccount needs system:auth-delegator`,
      );
  }

  // Per-case results recorded with --with-suites.
  if (before.cases && after.cases) {
    const was = new Map(before.cases.results.map((c) => [c.id, c.status]));
    for (const c of after.cases.results) {
      const w = was.get(c.id);
      if (w === "passed" && c.status === "failed") add("break", `case now fails: ${c.id}`);
      if (w === "failed" && c.status === "passed") add("info", `case now passes: ${c.id}`);
    }
  }

  // The usual settings, whether or not a profile recorded them.
  const rows: { s: IssuerSettings }[] = [
    { s: { disable_iss_validation: true, issuer: "" } },
    { s: { disable_iss_validation: false, issuer: "" } },
    { s: { disable_iss_validation: false, issuer: bi } },
    ...(ai !== bi ? [{ s: { disable_iss_validation: false, issuer: ai } }] : []),
    { s: { disable_iss_validation: false, issuer: LEGACY_ISSUER } },
  ];
  const settings = rows.map(({ s }) => ({
    settings: describeSettings(s),
    boundBefore: predictLogin(s, {}, { iss: bi, aud: kb.defaultAudiences }, before.vault),
    boundAfter: predictLogin(s, {}, { iss: ai, aud: ka.defaultAudiences }, after.vault),
    legacyAfter: legacyAfter === null ? null : predictLogin(s, {}, { iss: legacyAfter, aud: [] }, after.vault),
  }));

  const order: Record<Severity, number> = { break: 0, warn: 1, info: 2 };
  f.sort((x, y) => order[x.severity] - order[y.severity]);
  return {
    before: { label: label(before), createdAt: before.createdAt },
    after: { label: label(after), createdAt: after.createdAt },
    findings: f,
    judged,
    settings,
    verdict: f.some((x) => x.severity === "break") ? "breaks" : judged.length ? "ok" : "nothing-to-judge",
  };
}

/** 1 = the change breaks a recorded config; 2 = no Vault config was recorded, so nothing could be judged; 0 = fine. */
export function diffExitCode(d: ProfileDiff): number {
  return d.verdict === "breaks" ? 1 : d.verdict === "nothing-to-judge" ? 2 : 0;
}

function headline(d: ProfileDiff): string {
  const n = (s: Severity) => d.findings.filter((x) => x.severity === s).length;
  if (d.verdict === "breaks") return `BREAKS: ${n("break")} change(s) break logins for the recorded Vault config (${n("warn")} warning(s))`;
  if (d.verdict === "nothing-to-judge")
    return `NOTHING TO JUDGE: no kubernetes auth config was recorded (profile with --mount, or on a Vault of the run); ${n("warn")} warning(s)`;
  return `OK: no change breaks the recorded Vault config (${n("warn")} warning(s), ${n("info")} note(s))`;
}

const mark = (o: LoginOutcome | null) => (o === null ? "-" : o.ok ? "accepted" : `403 ${o.error}`);

export function formatDiff(d: ProfileDiff, format: "text" | "markdown"): string {
  const lines: string[] = [];
  if (format === "markdown") {
    lines.push(
      `## Profile diff: ${headline(d)}`,
      "",
      `- before: ${d.before.label} (${d.before.createdAt})`,
      `- after: ${d.after.label} (${d.after.createdAt})`,
    );
    lines.push(`- judged: ${d.judged.length ? d.judged.join("; ") : "none"}`, "");
    if (d.findings.length) {
      lines.push("| severity | finding |", "|---|---|");
      for (const x of d.findings) lines.push(`| ${x.severity} | ${x.message.replace(/\|/g, "\\|")} |`);
    } else lines.push("No differences that matter to kubernetes auth.");
    lines.push("", "| Vault issuer setting | bound token before | bound token after | legacy token after |", "|---|---|---|---|");
    for (const r of d.settings) lines.push(`| ${r.settings} | ${mark(r.boundBefore)} | ${mark(r.boundAfter)} | ${mark(r.legacyAfter)} |`);
    return lines.join("\n") + "\n";
  }
  lines.push(headline(d), `  before: ${d.before.label} (${d.before.createdAt})`, `  after:  ${d.after.label} (${d.after.createdAt})`);
  lines.push(`  judged: ${d.judged.length ? d.judged.join("; ") : "none"}`, "");
  for (const x of d.findings) lines.push(`${x.severity.toUpperCase().padEnd(5)} ${x.message}`);
  if (!d.findings.length) lines.push("no differences that matter to kubernetes auth");
  lines.push("", "issuer settings across the change (bound before | bound after | legacy after):");
  for (const r of d.settings) lines.push(`  ${r.settings}: ${mark(r.boundBefore)} | ${mark(r.boundAfter)} | ${mark(r.legacyAfter)}`);
  return lines.join("\n") + "\n";
}
