/**
 * Secret redaction. Everything the harness writes (logs, reports, JUnit, diagnostics) passes
 * through `redact()`. Known secrets (root tokens, reviewer JWTs, minted tokens) are registered by
 * value; JWT-shaped and Vault-token-shaped strings are caught by pattern as a second line of defence.
 */
// One set per module instance: each copy (the script's; vitest's globalSetup and each worker,
// which register the root token from the TargetInfo they read) registers what it handles.
const known = new Set<string>();

/** Register a secret value so that it is never printed. Returns the value for chaining. */
export function registerSecret<T extends string | undefined>(value: T): T {
  if (value && value.length >= 8) known.add(value);
  return value;
}

// A compact JWS: three base64url segments, the first two starting with '{"' (eyJ).
const JWT = /eyJ[A-Za-z0-9_-]{6,}\.eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*/g;
// Vault service/batch/recovery tokens (hvs./hvb./hvr.) and legacy s./b. tokens of 24+ chars.
const VAULT_TOKEN = /\b(?:hv[sbr]|s|b)\.[A-Za-z0-9_-]{20,}/g;
// Dev servers print their unseal key.
const UNSEAL_KEY = /(Unseal Key(?: \d+)?:\s*)\S+/g;
// PEM private keys.
const PRIVATE_KEY = /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g;

export function redact(text: string): string {
  let out = text;
  for (const s of known) {
    if (out.includes(s)) out = out.split(s).join("[REDACTED]");
  }
  return out
    .replace(JWT, "[REDACTED-JWT]")
    .replace(VAULT_TOKEN, "[REDACTED-TOKEN]")
    .replace(PRIVATE_KEY, "[REDACTED-PRIVATE-KEY]")
    .replace(UNSEAL_KEY, "$1[REDACTED]");
}

/** Deep-redacts a JSON-able value (for reports and diagnostics). */
export function redactValue<T>(value: T): T {
  return JSON.parse(redact(JSON.stringify(value ?? null))) as T;
}
