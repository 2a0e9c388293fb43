import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { PACKAGE_ROOT } from "../config.ts";
import { UsageError } from "../errors.ts";

/**
 * A persona: a named kube-apiserver setup for the local target that reproduces a cluster
 * behaviour users meet (a provider's issuer URL, an issuer migration, short token lifetimes).
 * One JSON file each in `<fixtures>/personas/`; `--persona NAME` selects one.
 */
export interface Persona {
  name: string;
  description: string;
  /** --service-account-issuer values; the first signs new tokens, all are accepted. */
  issuers: string[];
  /** --api-audiences; empty = the apiserver's default (its first issuer). */
  apiAudiences: string[];
  /** Further kube-apiserver flags (token lifetimes). */
  apiserverArgs: string[];
  /** The issuer before the change this persona shows (the matrix's "pre-upgrade" mode); default kind's. */
  previousIssuer?: string;
  /**
   * A signing-key rotation: the API server also trusts a second, retired key (a second
   * --service-account-key-file), so tokens signed with it before the rotation still pass TokenReview.
   */
  retiredSigningKey?: boolean;
}

const KEYS = new Set(["description", "issuers", "apiAudiences", "apiserverArgs", "previousIssuer", "retiredSigningKey"]);
/** Flags a persona may not set: the local target owns them (ports, certificates, storage). */
const RESERVED =
  /^--(service-account-issuer|api-audiences|service-account-key-file|service-account-signing-key-file|etcd-|secure-port|bind-address|advertise-address|cert-dir|tls-|client-ca-file|authorization-mode)/;

export function personaDirs(fixturesDir: string): string[] {
  const dirs = [join(fixturesDir, "personas"), join(PACKAGE_ROOT, "fixtures", "personas")];
  return [...new Set(dirs)].filter((d) => existsSync(d));
}

/** Persona names, from the user's fixtures first, then the package's. */
export function listPersonas(fixturesDir: string): string[] {
  const names = new Set<string>();
  for (const d of personaDirs(fixturesDir)) for (const f of readdirSync(d).sort()) if (f.endsWith(".json")) names.add(basename(f, ".json"));
  return [...names];
}

export function loadPersona(fixturesDir: string, name: string): Persona {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) throw new UsageError(`persona names are lower-case words with dashes (got "${name}")`);
  const dir = personaDirs(fixturesDir).find((d) => existsSync(join(d, `${name}.json`)));
  if (!dir) throw new UsageError(`no persona "${name}" (have: ${listPersonas(fixturesDir).join(", ") || "none"})`);
  const path = join(dir, `${name}.json`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new UsageError(`persona ${path}: ${(err as Error).message.split("\n")[0]}`, { cause: err });
  }
  return parsePersona(name, raw, path);
}

export function parsePersona(name: string, raw: unknown, where: string): Persona {
  const bad = (msg: string) => new UsageError(`persona ${where}: ${msg}`);
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw bad("must be a JSON object");
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KEYS.has(k)) throw bad(`unknown key "${k}" (allowed: ${[...KEYS].join(", ")})`);
  const strings = (k: string, required: boolean): string[] => {
    const v = o[k];
    if (v === undefined && !required) return [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string" || x === "") || (required && v.length === 0))
      throw bad(`"${k}" must be a ${required ? "non-empty " : ""}list of strings`);
    return v as string[];
  };
  const issuers = strings("issuers", true);
  const apiserverArgs = strings("apiserverArgs", false);
  for (const a of apiserverArgs) {
    if (!/^--[a-z0-9-]+=/.test(a)) throw bad(`apiserver flag "${a}" must look like --name=value`);
    if (RESERVED.test(a))
      throw bad(`apiserver flag "${a.split("=")[0]}" is set by the local target (use "issuers"/"apiAudiences" for those)`);
  }
  if (o.previousIssuer !== undefined && (typeof o.previousIssuer !== "string" || o.previousIssuer === ""))
    throw bad(`"previousIssuer" must be a string`);
  if (o.retiredSigningKey !== undefined && typeof o.retiredSigningKey !== "boolean") throw bad(`"retiredSigningKey" must be true or false`);
  return {
    name,
    description: typeof o.description === "string" ? o.description : "",
    issuers,
    apiAudiences: strings("apiAudiences", false),
    apiserverArgs,
    ...(o.previousIssuer ? { previousIssuer: o.previousIssuer as string } : {}),
    ...(o.retiredSigningKey ? { retiredSigningKey: true } : {}),
  };
}
