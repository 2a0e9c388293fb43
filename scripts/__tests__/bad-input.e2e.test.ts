import { existsSync, readFileSync } from "node:fs";
import { chmod, cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PACKAGE_ROOT, loadConfig } from "../../lib/config.ts";
import { httpJson } from "../../lib/http.ts";
import { freePort } from "../../lib/ports.ts";
import { StartedProcess } from "../../lib/process.ts";
import { provisionVault } from "../../lib/lifecycle/start.ts";
import { waitFor } from "../../lib/wait.ts";
import { liveProcesses, script, writeUnreachableKubeconfig } from "./helpers.ts";

// Bad input the harness can see before it starts anything: one line naming the problem and the
// fix, exit code 2, no stack trace. (Flags: cli.e2e.test.ts; a wrong VAULT_TOKEN, an unreachable
// Vault, a bad kubeconfig context: existing-target.e2e.test.ts; every command's codes:
// exit-codes.e2e.test.ts.)

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "vkc-bad-input-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs a script to its end; stderr and stdout together, as a user sees them. */
async function runToEnd(args: string[], env: Record<string, string>) {
  const run = script("conformance.ts", args, { VKC_TARGET: "", VKC_FLAVOR: "", VKC_DEBUG: "", VKC_FIXTURES: "", ...env });
  const code = await run.exited;
  return { code, output: run.output() };
}

function expectOneLine(r: { code: number | null; output: string }, line: string) {
  expect(r.output.trim()).toBe(line);
  expect(r.code).toBe(2);
  expect(r.output).not.toMatch(/\n\s+at /);
}

describe("a Vault that is not ready, on the existing target (checked before the cluster)", () => {
  let vault: StartedProcess;
  let address: string;
  let kubeconfig: string;
  const env = () => ({
    VKC_TARGET: "existing",
    VAULT_ADDR: address,
    VAULT_TOKEN: "bad-input-test-token",
    KUBECONFIG: kubeconfig,
  });

  beforeAll(async () => {
    // A real server, not dev mode: it comes up uninitialized (and, once initialized, sealed).
    const bin = await provisionVault(loadConfig({ ...process.env, VKC_FLAVOR: "" }));
    const port = await freePort();
    address = `http://127.0.0.1:${port}`;
    const config = join(dir, "vault.hcl");
    await writeFile(
      config,
      `storage "inmem" {}\nlistener "tcp" {\n  address = "127.0.0.1:${port}"\n  tls_disable = true\n}\ndisable_mlock = true\n`,
    );
    vault = await StartedProcess.start({
      name: "vault",
      command: bin,
      args: ["server", `-config=${config}`],
      env: { PATH: process.env.PATH, HOME: dir },
      logFile: join(dir, "vault.log"),
    });
    await waitFor(async () => (await httpJson({ url: `${address}/v1/sys/health`, timeoutMs: 2000 })).status === 501, {
      what: "vault server answers sys/health (not initialized)",
      timeoutMs: 30_000,
      failFast: () => (vault.running ? undefined : vault.exitedError("start")),
      evidence: () => vault.tail(),
    });
    // A kubeconfig whose cluster is not there: Vault's state is reported without it.
    kubeconfig = join(dir, "kubeconfig");
    writeUnreachableKubeconfig(kubeconfig);
  });
  afterAll(async () => {
    await vault?.stop();
    if (vault) expect(liveProcesses(`-config=${join(dir, "vault.hcl")}`, [vault.pid])).toEqual([]);
  });

  it("not initialized -> one line: initialize and unseal it", async () => {
    const r = await runToEnd(["--reports", join(dir, "r1")], env());
    expectOneLine(
      r,
      `error: Vault at ${address} is not initialized: initialize and unseal it (vault operator init, then vault operator unseal) and run again`,
    );
    expect(r.output).not.toContain("bad-input-test-token");
  });

  it("initialized but sealed -> one line: unseal it", async () => {
    const init = await httpJson<{ keys?: string[]; root_token?: string }>({
      method: "PUT",
      url: `${address}/v1/sys/init`,
      body: { secret_shares: 1, secret_threshold: 1 },
    });
    expect(init.status).toBe(200);
    const secrets = [...(init.body.keys ?? []), init.body.root_token ?? ""].filter(Boolean);
    expect(secrets).toHaveLength(2);
    const r = await runToEnd(["--reports", join(dir, "r2")], env());
    expectOneLine(r, `error: Vault at ${address} is sealed: unseal it (vault operator unseal) and run again`);
    for (const s of [...secrets, "bad-input-test-token"]) expect(r.output).not.toContain(s);
  });
});

describe("fixtures that cannot be used are rejected before a target starts", () => {
  /** A copy of the package's fixtures to break. */
  async function fixtures(name: string): Promise<string> {
    const d = join(dir, name);
    await cp(join(PACKAGE_ROOT, "fixtures"), d, { recursive: true });
    return d;
  }
  /** --target local: preflight provisions (cached) and checks; the target would start only in vitest. */
  async function runLocal(fixturesDir: string, flavor = "vault") {
    const reports = join(dir, `reports-${fixturesDir.split("/").pop()}-${flavor}`);
    const r = await runToEnd(["--fixtures", fixturesDir, "--reports", reports], { VKC_FLAVOR: flavor });
    expect(existsSync(reports), "a run started: reports were written").toBe(false);
    return r;
  }

  it.each(["vault", "openbao"])("invalid HCL in a case's policy names the case file and the policy (%s's parser)", async (flavor) => {
    const d = await fixtures(`hcl-case-${flavor}`);
    const hcl = 'path "x" { capabilities = [ }\n';
    await writeFile(join(d, "policies", "broken.hcl"), hcl);
    await writeFile(join(d, "cases", "broken.yaml"), "name: broken policy\npolicies:\n  broken: broken.hcl\n");
    const r = await runLocal(d, flavor);
    expectOneLine(
      r,
      `error: invalid case file ${d}/cases/broken.yaml: policy "broken" (${d}/policies/broken.hcl) is not a valid policy: At 1:29: unexpected token while parsing list: RBRACE: fix the HCL and run again`,
    );
    // The parser ran on a copy: the user's file is as it was.
    expect(readFileSync(join(d, "policies", "broken.hcl"), "utf8")).toBe(hcl);
  });

  it("an invalid policy file the suites load (policies/my-app.hcl; no case names it) is named", async () => {
    const d = await fixtures("hcl-suite");
    await rm(join(d, "cases"), { recursive: true }); // fixtures without cases of their own
    await writeFile(join(d, "policies", "my-app.hcl"), 'path "my-app/*" {\n  capabilities = ["reed", "list"]\n}\n');
    expectOneLine(
      await runLocal(d),
      `error: invalid policy file ${d}/policies/my-app.hcl is not a valid policy: path "my-app/*": invalid capability "reed": fix the HCL and run again`,
    );
  });

  it("a case naming a policy file that does not exist", async () => {
    const d = await fixtures("policy-missing");
    await writeFile(join(d, "cases", "missing.yaml"), "name: missing policy\npolicies:\n  p: nope.hcl\n");
    expectOneLine(
      await runLocal(d),
      `error: invalid case file ${d}/cases/missing.yaml: policy "p" names ${d}/policies/nope.hcl, which cannot be read (it does not exist): add that file or fix the name`,
    );
  });

  it("a --fixtures directory that does not exist", async () => {
    const d = join(dir, "no-such-fixtures");
    expectOneLine(
      await runLocal(d),
      `error: cannot read the fixtures directory ${d} (--fixtures / VKC_FIXTURES): it does not exist: point it at a copy of the package's fixtures/`,
    );
  });

  it("invalid YAML in a case file (exit 2 from the script, not a failed suite)", async () => {
    const d = await fixtures("yaml-case");
    await writeFile(join(d, "cases", "bad.yaml"), "name: [unclosed\n");
    expectOneLine(
      await runLocal(d),
      `error: invalid YAML in ${d}/cases/bad.yaml: unexpected end of the stream within a flow collection (2:1)`,
    );
  });

  it.each([
    ["an unknown role", "  nope: { capabilities: {} }", `intent names unknown role "nope" (roles: payments, payments-office)`],
    ["a malformed path", '  payments: { capabilities: { "apps/*/x": [read] } }', `intent.payments.capabilities: malformed path "apps/*/x"`],
    [
      "a capability Vault does not have",
      '  payments: { capabilities: { "apps/x": [reed] } }',
      `intent.payments.capabilities."apps/x": "reed" is not a Vault capability`,
    ],
  ])("an intent naming %s", async (_what, intent, message) => {
    const d = await fixtures(`intent-${_what.replace(/\W+/g, "-")}`);
    const file = join(d, "cases", "hardened-payments.yaml");
    const text = await readFile(file, "utf8");
    await writeFile(file, `${text.slice(0, text.indexOf("\nintent:"))}\nintent:\n${intent}\n`);
    const r = await runLocal(d);
    expect(r.output.trim()).toMatch(new RegExp(`^error: invalid case file ${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: `));
    expect(r.output).toContain(message);
    expect(r.output.trim().split("\n")).toHaveLength(1);
    expect(r.code).toBe(2);
  });

  it("an unreadable case file (a directory where the file should be; works as root too)", async () => {
    const d = await fixtures("unreadable-case");
    await mkdir(join(d, "cases", "unreadable.yaml"));
    expectOneLine(
      await runLocal(d),
      `error: cannot read case file ${d}/cases/unreadable.yaml: it is a directory: make it a readable YAML file, or remove it`,
    );
  });

  // chmod 000 does not stop root from reading: only meaningful as a normal user.
  it.runIf(process.getuid?.() !== 0)("a case file with mode 000", async () => {
    const d = await fixtures("mode-000-case");
    await chmod(join(d, "cases", "hardened-payments.yaml"), 0o000);
    try {
      expectOneLine(
        await runLocal(d),
        `error: cannot read case file ${d}/cases/hardened-payments.yaml: permission denied: make it a readable YAML file, or remove it`,
      );
    } finally {
      await chmod(join(d, "cases", "hardened-payments.yaml"), 0o600);
    }
  });

  it("an unreadable manifests/reviewer.yaml (a dangling symlink)", async () => {
    const d = await fixtures("unreadable-reviewer");
    await rm(join(d, "manifests", "reviewer.yaml"));
    await symlink(join(d, "manifests", "gone.yaml"), join(d, "manifests", "reviewer.yaml"));
    expectOneLine(
      await runLocal(d),
      `error: cannot read fixture ${d}/manifests/reviewer.yaml: it is a dangling symlink to ${d}/manifests/gone.yaml: restore it (the package's fixtures/manifests/reviewer.yaml is the template)`,
    );
  });
});
