import { existsSync, readFileSync, statSync } from "node:fs";
import { rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { ApiException } from "@kubernetes/client-node";
import { afterAll, describe, expect, it } from "vitest";
import { sweepRun } from "../../auth-setup/sweep.ts";
import { runMark } from "../../auth-setup/steps.ts";
import { TARGETS } from "../../config.ts";
import { HarnessError, PortInUseError, TargetStartError, UsageError } from "../../errors.ts";
import type { Kube } from "../../kube/client.ts";
import { providerFor } from "../../lifecycle/registry.ts";
import { inWorkspace, newRunId, RunWorkspace } from "../../lifecycle/workspace.ts";
import { freePort, portsInUse } from "../../ports.ts";
import { redact } from "../../redact.ts";
import type { VaultClient } from "../../vault/client.ts";
import { onFreePorts } from "../components.ts";

// The provider contract without a target: the registry, the run workspace every provider starts
// in, how a port clash is recognised (by type, never by message), and what the sweep reports.

const REPORTS = "/tmp/vkc-contract-unit-reports";
afterAll(() => rm(REPORTS, { recursive: true, force: true }));
const open = (o: { keep?: boolean } = {}) => RunWorkspace.open({ target: "local", reportsDir: REPORTS, ...o });

describe("provider registry", () => {
  it("has a provider for every target, under its own name; kind and existing can plan a dry run", async () => {
    for (const name of TARGETS) {
      const p = await providerFor(name);
      expect(p.name).toBe(name);
      expect(typeof p.preflight).toBe("function");
      expect(typeof p.start).toBe("function");
    }
    expect(typeof (await providerFor("kind")).plan).toBe("function");
    expect(typeof (await providerFor("existing")).plan).toBe("function");
    expect((await providerFor("local")).plan).toBeUndefined();
  });
});

describe("run workspace", () => {
  it("a run id, a 0700 work dir, 0600 secret files, artifacts under the reports dir; closing removes the work dir last", async () => {
    const ws = await open({});
    expect(ws.runId).toMatch(/^vkc-\d{14}-[0-9a-f]{6}$/);
    expect(statSync(ws.workDir).mode & 0o777).toBe(0o700);
    expect(ws.artifactsDir).toBe(`${REPORTS}/artifacts/${ws.runId}`);
    const token = ws.newRootToken();
    expect(redact(`token ${token}`)).not.toContain(token);
    const file = await ws.writeSecret("vault-token", token);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, "utf8")).toBe(token);
    const order: string[] = [];
    ws.defer("first", () => order.push(`first (work dir there: ${existsSync(ws.workDir)})`));
    ws.defer("second", () => order.push("second"));
    await ws.close();
    await ws.close(); // once
    expect(order).toEqual(["second", "first (work dir there: true)"]);
    expect(existsSync(ws.workDir)).toBe(false);
  });

  it("keep (kind's --keep) keeps the work dir; an announced run id is used", async () => {
    const runId = newRunId();
    const ws = await RunWorkspace.open({ target: "kind", reportsDir: REPORTS, runId, keep: true });
    expect(ws.runId).toBe(runId);
    await ws.close();
    expect(existsSync(ws.workDir)).toBe(true);
    await rm(ws.workDir, { recursive: true, force: true });
  });

  it("a start that fails leaves nothing: its cleanups run and the work dir goes", async () => {
    let work = "";
    let cleaned = false;
    await expect(
      inWorkspace({ target: "local", reportsDir: REPORTS }, async (ws) => {
        work = ws.workDir;
        ws.defer("stop a component", () => (cleaned = true));
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(cleaned).toBe(true);
    expect(existsSync(work)).toBe(false);
  });

  it("a failed step is a TargetStartError with the same line, exit code and evidence; bad input and bugs pass unchanged", async () => {
    const ws = await open();
    try {
      const cause = new HarnessError("etcd exited with code 1 during start (log: x)", { exitCode: 2, details: "last lines" });
      const err = await ws.step("etcd", () => Promise.reject(cause)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TargetStartError);
      expect(err).toMatchObject({ target: "local", step: "etcd", message: cause.message, exitCode: 2, details: "last lines", cause });
      const usage = new UsageError("bad flag");
      await expect(ws.step("x", () => Promise.reject(usage))).rejects.toBe(usage);
      const bug = new TypeError("undefined is not a function");
      await expect(ws.step("x", () => Promise.reject(bug))).rejects.toBe(bug);
      expect(await ws.step("ok", async () => 42)).toBe(42);
    } finally {
      await ws.close();
    }
  });

  it("a started target's stop closes the workspace", async () => {
    const ws = await open();
    const t = ws.started({ runId: ws.runId } as never, 5);
    expect(t.startupMs).toBe(5);
    await t.stop();
    expect(existsSync(ws.workDir)).toBe(false);
  });
});

describe("port clashes are recognised by a bind probe and retried by type", () => {
  const listen = (port: number) =>
    new Promise<Server>((resolve, reject) => {
      const s = createServer();
      s.on("error", reject);
      s.listen(port, "127.0.0.1", () => resolve(s));
    });

  it("portsInUse names the ports another process holds, and only those", async () => {
    const [held, free] = [await freePort(), await freePort()];
    const srv = await listen(held);
    try {
      expect(await portsInUse([held, free])).toEqual([held]);
    } finally {
      srv.close();
    }
  });

  it("a PortInUseError is retried with new ports; any other error is not, whatever its text says", async () => {
    const seen: number[][] = [];
    const result = await onFreePorts("etcd", 2, async (ports) => {
      seen.push(ports);
      if (seen.length === 1) throw new PortInUseError("etcd", ports, { cause: new HarnessError("etcd exited with code 1 during start") });
      return "up";
    });
    expect(result).toBe("up");
    expect(seen).toHaveLength(2);
    expect(seen[0]).not.toEqual(seen[1]);
    let calls = 0;
    await expect(
      onFreePorts("etcd", 1, async () => {
        calls++;
        throw new HarnessError("listen tcp 127.0.0.1:2379: bind: address already in use");
      }),
    ).rejects.toThrow(/address already in use/);
    expect(calls).toBe(1);
  });
});

describe("sweep reports what it really removed", () => {
  const runId = "vkc-20261203000000-abcdef";
  const mark = runMark(runId);
  const forbidden = () =>
    new ApiException(
      403,
      "HTTP-Code: 403\nMessage: Unknown API Status Code!",
      JSON.stringify({ kind: "Status", message: "forbidden: cannot delete" }),
      {},
    );
  const gone = () => new ApiException(404, "not found", {}, {});
  const items = (...names: string[]) => ({ items: names.map((name) => ({ metadata: { name, namespace: "default" } })) });

  it("a delete refused (403) is reported as not removed with the reason; already gone (404) is neither", async () => {
    const kube = {
      core: {
        listNamespace: async () => items("vkc-ns-1"),
        listServiceAccountForAllNamespaces: async () => items("probe-sa"),
      },
      rbac: {
        listClusterRole: async () => items("vkc-role"),
        deleteClusterRole: async () => {
          throw gone();
        },
        listClusterRoleBinding: async () => items("vkc-binding"),
        deleteClusterRoleBinding: async () => {
          throw forbidden();
        },
      },
      deleteNamespace: async () => undefined,
      deleteServiceAccount: async () => undefined,
    } as unknown as Kube;
    const vault = {
      must: async (_m: string, path: string) => {
        if (path === "sys/auth") return { status: 200, body: { data: { "vkc-auth/": { description: mark }, "token/": {} } } };
        if (path === "sys/mounts") return { status: 200, body: { data: { "vkc-kv/": { description: mark } } } };
        return { status: 200, body: { data: { policy: `# ${mark}\npath "x" {}` } } };
      },
      list: async () => ({ status: 200, body: { data: { keys: ["root", "vkc-policy"] } } }),
      request: async (method: string, path: string) => {
        if (path === "sys/auth/vkc-auth") return { status: 403, body: { errors: ["permission denied"] } };
        return { status: 204, body: undefined };
      },
    } as unknown as VaultClient;
    const { removed, failed } = await sweepRun({ kube, vault }, runId);
    expect(removed).toEqual(["namespace vkc-ns-1", "ServiceAccount default/probe-sa", "secrets mount vkc-kv/", "policy vkc-policy"]);
    expect(failed).toEqual([
      { object: "ClusterRoleBinding vkc-binding", reason: "HTTP 403: forbidden: cannot delete" },
      { object: "auth mount vkc-auth/", reason: expect.stringMatching(/HTTP 403.*permission denied/) },
    ]);
  });
});
