/**
 * The JSON Schemas (draft 2020-12) of the files the harness writes, shipped in the package under
 * schemas/: results.json, access.json, profiles and audit.json. `validate(kind, doc)` checks a
 * parsed document against its schema and returns readable one-line errors ([] = valid).
 *
 * Each document names its format: `schema: "vault-k8s-conformance/<kind>/v1"` (audit.json:
 * `schema: "vault-k8s-conformance/audit/v1"`); each schema has the `$id` `https://vault-k8s-conformance.dev/schemas/<kind>.v1.json`.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import ajv2020 from "ajv/dist/2020.js";
import type { ErrorObject, ValidateFunction } from "ajv/dist/2020.js";
import { PACKAGE_ROOT } from "./config.ts";

// ajv is CommonJS: under NodeNext the default import is module.exports, whose `default` is the class.
const Ajv2020 = ajv2020.default;

export const SCHEMA_KINDS = ["results", "access", "profile", "audit"] as const;
export type SchemaKind = (typeof SCHEMA_KINDS)[number];

/** Base of every schema's `$id`. */
export const SCHEMA_BASE = "https://vault-k8s-conformance.dev/schemas/";
export const SCHEMAS_DIR = join(PACKAGE_ROOT, "schemas");

/** The version marker each kind of document carries in its `schema` field. */
export const SCHEMA_MARKERS: Record<SchemaKind, string> = {
  results: "vault-k8s-conformance/results/v1",
  access: "vault-k8s-conformance/access/v1",
  profile: "vault-k8s-conformance/profile/v1",
  audit: "vault-k8s-conformance/audit/v1",
};

export const schemaFile = (kind: SchemaKind) => join(SCHEMAS_DIR, `${kind}.v1.schema.json`);

/** A schema file as parsed JSON. */
export function loadSchema(kind: SchemaKind): Record<string, any> {
  return JSON.parse(readFileSync(schemaFile(kind), "utf8"));
}

let compiled: Map<SchemaKind, ValidateFunction> | undefined;

function validators(): Map<SchemaKind, ValidateFunction> {
  if (compiled) return compiled;
  // strict: an unknown keyword or format in a schema is an error, not silently ignored.
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  // All schemas first, so a $ref to another (results -> access) resolves.
  for (const kind of SCHEMA_KINDS) ajv.addSchema(loadSchema(kind));
  const m = new Map<SchemaKind, ValidateFunction>();
  for (const kind of SCHEMA_KINDS) {
    const v = ajv.getSchema(`${SCHEMA_BASE}${kind}.v1.json`);
    if (!v) throw new Error(`schema ${schemaFile(kind)} has no $id ${SCHEMA_BASE}${kind}.v1.json`);
    m.set(kind, v);
  }
  return (compiled = m);
}

/** One error as a line: `/cases/3/status: must be equal to one of the allowed values (passed, failed, skipped)`. */
export function formatError(e: ErrorObject): string {
  const where = e.instancePath || "(root)";
  const p = e.params as Record<string, unknown>;
  let detail = "";
  if (e.keyword === "additionalProperties" || e.keyword === "unevaluatedProperties")
    detail = `: "${String(p.additionalProperty ?? p.unevaluatedProperty)}"`;
  else if (e.keyword === "enum") detail = ` (${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")})`;
  else if (e.keyword === "const") detail = ` ${JSON.stringify(p.allowedValue)}`;
  return `${where}: ${e.message ?? e.keyword}${detail}`;
}

/** Errors of `doc` against the schema of `kind`, one line each; [] when it is valid. */
export function validate(kind: SchemaKind, doc: unknown): string[] {
  if (!SCHEMA_KINDS.includes(kind)) throw new Error(`unknown schema kind "${kind}" (one of ${SCHEMA_KINDS.join(", ")})`);
  const v = validators().get(kind)!;
  if (v(doc)) return [];
  // allErrors reports a failed oneOf's branches too; keep every line, but each only once.
  return [...new Set((v.errors ?? []).map(formatError))];
}
