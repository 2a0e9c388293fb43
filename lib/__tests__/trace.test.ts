import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseTrace } from "../bench.ts";
import { PACKAGE_ROOT } from "../config.ts";
import { span, tracing } from "../trace.ts";

describe("trace", () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it("is off without VKC_TRACE_FILE: spans pass the function's promise through untouched", async () => {
    expect(process.env.VKC_TRACE_FILE).toBeUndefined();
    expect(tracing()).toBe(false);
    const p = Promise.resolve(7);
    expect(span("vault", () => p)).toBe(p);
  });

  it("with VKC_TRACE_FILE, writes only span names and timestamps to a 0600 file", () => {
    const dir = mkdtempSync(join(tmpdir(), "vkc-trace-test-"));
    dirs.push(dir);
    const file = join(dir, "trace.jsonl");
    // A separate process: the variable is read once, when lib/trace.ts loads.
    const script = `
      import { recordSpan, span } from "./lib/trace.ts";
      import { instrumented } from "./lib/kube/client.ts";
      const api = instrumented({ read: async (x) => x, sync: () => 3 });
      await api.read("secret-looking-argument");
      api.sync();
      await span("vault", async () => "hvs.not-a-real-token").catch(() => {});
      await span("vault", async () => { throw new Error("refused"); }).catch(() => {});
      recordSpan("start", Date.now() - 5);
      recordSpan("nonsense", 1, 2);
    `;
    const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: PACKAGE_ROOT,
      env: { ...process.env, VKC_TRACE_FILE: file },
      encoding: "utf8",
    });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const text = readFileSync(file, "utf8");
    expect(text).not.toMatch(/secret|hvs|refused|nonsense/);
    const { records, malformed } = parseTrace(text);
    expect(malformed).toBe(0);
    expect(records.map((x) => x.k)).toEqual(["kube", "vault", "vault", "start"]);
    for (const line of text.trim().split("\n")) expect(Object.keys(JSON.parse(line))).toEqual(["k", "s", "e"]);
  });
});
