import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../config.ts";
import { loadCases, validPathPattern } from "../cases.ts";

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function caseWith(intent: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "vkc-intent-"));
  dirs.push(dir);
  await mkdir(join(dir, "cases"));
  await writeFile(
    join(dir, "cases", "c.yaml"),
    `name: c\nroles:\n  app:\n    bound_service_account_names: [app]\n    bound_service_account_namespaces: ["\${namespace}"]\nlogins:\n  - { role: app, serviceAccount: app, expect: { status: 200 } }\n${intent}`,
  );
  return dir;
}

describe("intent in case files", () => {
  it("the shipped cases declare capability intent for every role", () => {
    for (const c of loadCases(join(PACKAGE_ROOT, "fixtures"))) {
      for (const role of Object.keys(c.roles ?? {})) expect(c.intent?.[role]?.capabilities, `${c.file}: ${role}`).toBeDefined();
    }
  });

  it("accepts a well-formed intent", async () => {
    const dir = await caseWith(
      `intent:\n  app:\n    login: [{ serviceAccount: app, namespace: "\${namespace}" }, { serviceAccount: app, namespaceSelector: "team=a" }]\n    capabilities: { "kv/data/app/*": [read, list], "kv/+/x": [deny] }\n    aliasByName: false\n`,
    );
    expect(loadCases(dir)[0]!.intent!.app!.capabilities).toEqual({ "kv/data/app/*": ["read", "list"], "kv/+/x": ["deny"] });
  });

  it.each([
    ["an unknown role", `intent:\n  nope: { capabilities: {} }\n`, /intent names unknown role "nope"/],
    ["a malformed path", `intent:\n  app: { capabilities: { "kv/*/x": [read] } }\n`, /malformed path "kv\/\*\/x"/],
    ["a capability Vault does not have", `intent:\n  app: { capabilities: { "kv/x": [reed] } }\n`, /"reed" is not a Vault capability/],
    ["an unknown key", `intent:\n  app: { logins: [] }\n`, /unknown key "logins"/],
    ["a login without a name", `intent:\n  app: { login: [{ namespace: x }] }\n`, /each entry needs serviceAccount/],
  ])("refuses %s with one line", async (_what, intent, message) => {
    const dir = await caseWith(intent);
    let err: Error | undefined;
    try {
      loadCases(dir);
    } catch (e) {
      err = e as Error;
    }
    expect(err?.name).toBe("UsageError");
    expect(err?.message).toMatch(message);
    expect(err?.message).not.toContain("\n");
  });

  it.each([
    ["kv/data/app/*", true],
    ["kv/+/app", true],
    ["sys/", true],
    ["/kv/x", false],
    ["kv//x", false],
    ["kv/*/x", false],
    ["", false],
  ])("path pattern %j valid: %s", (p, ok) => {
    expect(validPathPattern(p)).toBe(ok);
  });
});
