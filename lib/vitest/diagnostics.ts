import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AuthenticationV1Api } from "@kubernetes/client-node";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { errorMessage } from "../errors.ts";
import { redactValue } from "../redact.ts";
import type { TargetInfo } from "../lifecycle/info.ts";
import type { Clients } from "../auth-setup/steps.ts";

/**
 * Evidence for a failed case. Every login a test makes is recorded (in memory, per worker);
 * when the test fails, a bundle is written to <artifacts>/diagnostics/: the decoded JWT header
 * and claims (never the signature or the raw token), Vault's answer, the auth config and role
 * read back, what TokenReview says of the token now, and the tail of every component's log.
 */
interface LoginRecord {
  mount: string;
  role: string | undefined;
  jwt: string | undefined;
  status: number;
  errors: string[] | undefined;
}

let records: LoginRecord[] = [];

export function recordLogin(r: LoginRecord): void {
  records.push(r);
  if (records.length > 50) records = records.slice(-50);
}

export function resetEvidence(): void {
  records = [];
}

function decoded(jwt: string | undefined): unknown {
  if (!jwt) return null;
  try {
    return { header: decodeProtectedHeader(jwt), claims: decodeJwt(jwt) };
  } catch (err) {
    return { unparsable: errorMessage(err) };
  }
}

async function tail(file: string, lines = 40): Promise<string[]> {
  try {
    return (await readFile(file, "utf8")).trimEnd().split("\n").slice(-lines);
  } catch (err) {
    return [`(cannot read ${file}: ${errorMessage(err)})`];
  }
}

export async function writeDiagnostics(testName: string, error: string, clients: Clients): Promise<string> {
  const info: TargetInfo = clients.info;
  const logins = [];
  for (const r of records) {
    const config = await clients.vault.read(`auth/${r.mount}/config`).then(
      (x) => x.body?.data ?? x.body?.errors,
      (e) => errorMessage(e),
    );
    const role = r.role
      ? await clients.vault.read(`auth/${r.mount}/role/${r.role}`).then(
          (x) => x.body?.data ?? x.body?.errors,
          (e) => errorMessage(e),
        )
      : null;
    let tokenReview: unknown = null;
    if (r.jwt) {
      try {
        const review = await clients.kube.kc.makeApiClient(AuthenticationV1Api).createTokenReview({ body: { spec: { token: r.jwt } } });
        tokenReview = review.status ?? null;
      } catch (err) {
        tokenReview = { error: errorMessage(err) };
      }
    }
    logins.push({
      mount: r.mount,
      role: r.role,
      jwt: decoded(r.jwt),
      vault: { status: r.status, errors: r.errors },
      configNow: config,
      roleNow: role,
      tokenReviewNow: tokenReview,
    });
  }
  const logs: Record<string, string[]> = {};
  for (const [name, file] of Object.entries(info.logs)) logs[name] = await tail(file);
  const bundle = redactValue({
    test: testName,
    error,
    target: { runId: info.runId, target: info.target, flavor: info.flavor, versions: info.versions, issuers: info.kube.issuers },
    logins,
    logs,
  });
  const dir = join(info.artifactsDir, "diagnostics");
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${testName.replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 120)}.json`);
  await writeFile(file, JSON.stringify(bundle, null, 2) + "\n");
  return file;
}
