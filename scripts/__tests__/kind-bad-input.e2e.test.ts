import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../lib/config.ts";
import { missingCapabilities } from "../../lib/providers/kind-plan.ts";

// The kind target on an engine that refuses privileged containers (runc: "unable to apply caps",
// when the host's bounding set withholds a capability): one line naming the capability and the
// way out, exit 2, before any cluster exists. A fake docker and kind on PATH answer as the real
// ones do on such a machine, so this runs without Docker; scripts/__tests__/kind-lifecycle.kind.test.ts
// shows the same line from the real engine.

const dir = mkdtempSync(join(tmpdir(), "vkc-kind-bad-"));
const bin = join(dir, "bin");
const calls = join(dir, "calls.log");
mkdirSync(bin);
const RUNC_REFUSES =
  "docker: Error response from daemon: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: unable to apply caps: operation not permitted: unknown.";
writeFileSync(
  join(bin, "docker"),
  `#!/bin/sh
echo "docker $*" >> ${calls}
case "$1" in
  info) echo 20.10.24 ;;
  image) echo sha256:0123456789ab ;;
  run) echo '${RUNC_REFUSES}' >&2; exit 125 ;;
  rm) exit 0 ;;
  *) echo "fake docker: unexpected $*" >&2; exit 1 ;;
esac
`,
  { mode: 0o755 },
);
writeFileSync(
  join(bin, "kind"),
  `#!/bin/sh
echo "kind $*" >> ${calls}
case "$1" in
  version) echo "kind v0.33.0 go1.26.0 linux/amd64" ;;
  *) echo "fake kind: unexpected $*" >&2; exit 1 ;;
esac
`,
  { mode: 0o755 },
);

/** What this machine's bounding set lacks, as the provider reads it. */
function withheld(): string[] {
  const bnd = /^CapBnd:\s*([0-9a-f]+)/im.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? "";
  return missingCapabilities(bnd, Number(readFileSync("/proc/sys/kernel/cap_last_cap", "utf8").trim()));
}

describe("kind target, privileged containers refused", () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each(["container", "in-cluster"])(
    "--vault %s: exit 2 and one line naming the capability and the runc wrapper; no kind create, no work dir",
    (mode) => {
      const tmp = join(dir, `tmp-${mode}`);
      mkdirSync(tmp);
      writeFileSync(calls, "");
      const r = spawnSync(
        process.execPath,
        [
          "--import",
          "tsx",
          join(PACKAGE_ROOT, "scripts", "conformance.ts"),
          "--target",
          "kind",
          "--vault",
          mode,
          "--reports",
          join(dir, mode),
        ],
        {
          cwd: PACKAGE_ROOT,
          env: {
            ...process.env,
            PATH: `${bin}${delimiter}${process.env.PATH}`,
            KIND_BIN: join(bin, "kind"),
            TMPDIR: tmp,
            VKC_TARGET: "",
            VKC_FLAVOR: "",
            VKC_NODE_IMAGE: "",
            VKC_VAULT_IMAGE: "",
            KIND_EXPERIMENTAL_PROVIDER: "",
          },
          encoding: "utf8",
          timeout: 120_000,
        },
      );
      const caps = withheld();
      const stderr = r.stderr.replace(/^npm warn.*\n/gm, "");
      expect(stderr.trim()).toBe(
        "error: docker refuses privileged containers, which kind's nodes are (docker run --privileged: unable to apply caps: operation not permitted): " +
          `${caps.length ? `this host withholds ${caps.join(", ")}` : "the host withholds a capability"}; ` +
          "install the runc wrapper that drops it with kit/docker/install-engine.sh (kit/README.md), or use --target local",
      );
      expect(r.status).toBe(2);
      expect(stderr).not.toMatch(/\n\s+at /);
      const made = readFileSync(calls, "utf8").split("\n");
      // The probe is a tiny privileged container of the node image; it is removed; kind never creates anything.
      expect(made.filter((c) => c.startsWith("docker run"))).toEqual([
        expect.stringMatching(
          /^docker run --rm --privileged --network none --name (vkc-\d{14}-[0-9a-f]{6})-probe .* --entrypoint \/bin\/true kindest\/node:/,
        ),
      ]);
      expect(made.some((c) => /^docker rm -f -v vkc-\S+-probe$/.test(c))).toBe(true);
      expect(made.filter((c) => c.startsWith("kind ") && c !== "kind version")).toEqual([]);
      expect(readdirSync(tmp).filter((n) => !n.startsWith("tsx-"))).toEqual([]);
    },
  );
});
