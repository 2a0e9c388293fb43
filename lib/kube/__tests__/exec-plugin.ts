import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * A tiny exec credential plugin for tests, written into `dir` (mode 0700): it appends one JSON
 * line per call to the file in VKC_TEST_PLUGIN_MARKER (its pid, its parent's pid, the
 * KUBERNETES_EXEC_INFO it got) and prints an ExecCredential of the apiVersion given as its first
 * argument, with the token read from the file in VKC_TEST_PLUGIN_TOKEN_FILE (the plugin holds no
 * secret itself). VKC_TEST_PLUGIN_FAIL=<status> makes it write a line to stderr and exit so.
 */
export function writeExecPlugin(dir: string, name = "vkc-test-plugin"): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    [
      `#!${process.execPath}`,
      `const fs = require("node:fs");`,
      `const env = process.env;`,
      `if (env.VKC_TEST_PLUGIN_MARKER) fs.appendFileSync(env.VKC_TEST_PLUGIN_MARKER, JSON.stringify({ pid: process.pid, ppid: process.ppid, info: env.KUBERNETES_EXEC_INFO ?? null }) + "\\n");`,
      `if (env.VKC_TEST_PLUGIN_FAIL) { process.stderr.write("credentials expired: run login first\\nsecond line\\n"); process.exit(Number(env.VKC_TEST_PLUGIN_FAIL)); }`,
      `const token = fs.readFileSync(env.VKC_TEST_PLUGIN_TOKEN_FILE, "utf8").trim();`,
      `const expirationTimestamp = new Date(Date.now() + 3600_000).toISOString();`,
      `process.stdout.write(JSON.stringify({ apiVersion: process.argv[2], kind: "ExecCredential", status: { token, expirationTimestamp } }));`,
      "",
    ].join("\n"),
    { mode: 0o700 },
  );
  chmodSync(path, 0o700);
  return path;
}
