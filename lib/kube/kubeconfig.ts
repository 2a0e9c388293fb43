import { execFile, type ExecFileException } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { delimiter, dirname, isAbsolute, join, resolve, sep } from "node:path";
import { KubeConfig, loadYaml } from "@kubernetes/client-node";
import { UsageError, errorMessage } from "../errors.ts";
import { redact, registerSecret } from "../redact.ts";

// How the harness finds and reads a kubeconfig, as kubectl (client-go's clientcmd) does:
// KUBECONFIG lists merged first-wins, paths relative to the file that names them, exec credential
// plugins; plus a pod's ServiceAccount when there is no kubeconfig. What the run hands to other
// processes is one self-contained file (`LoadedKubeconfig.text`).

/** The exec credential API versions kubectl still runs (v1alpha1 was removed in 1.24). */
export const EXEC_API_VERSIONS = ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"] as const;

type Fields = Record<string, unknown>;

export interface ExecConfig extends Fields {
  apiVersion?: string;
  command?: string;
  args?: string[];
  env?: { name: string; value: string }[] | null;
  installHint?: string;
}

/** A kubeconfig as its YAML has it (only the fields the harness touches are typed; the rest is kept). */
export interface RawKubeconfig {
  apiVersion: "v1";
  kind: "Config";
  clusters: { name: string; cluster: Fields & { server?: string } }[];
  users: { name: string; user: Fields & { exec?: ExecConfig } }[];
  contexts: { name: string; context: Fields & { cluster?: string; user?: string; namespace?: string } }[];
  "current-context"?: string;
}

interface Origin<T> {
  value: T;
  /** The file that defined it (or "in-cluster"). */
  file: string;
}

/** Several kubeconfig files merged: for each name, the first file's entry. */
export interface MergedKubeconfig {
  /** The files that exist, in order (what messages name). */
  files: string[];
  clusters: Map<string, Origin<RawKubeconfig["clusters"][number]["cluster"]>>;
  users: Map<string, Origin<RawKubeconfig["users"][number]["user"]>>;
  contexts: Map<string, Origin<RawKubeconfig["contexts"][number]["context"]>>;
  /** The first current-context that is set. */
  currentContext?: string;
}

/** A pod's view of its cluster: KUBERNETES_SERVICE_HOST/PORT and the mounted ServiceAccount. */
export interface InCluster {
  host?: string;
  port?: string;
  /** Holds token, ca.crt and namespace (config.ts DEFAULT_SA_DIR unless VKC_SA_DIR). */
  saDir: string;
}

export interface KubeconfigSources {
  /** KUBECONFIG (or --kubeconfig): files in order, absolute. */
  files?: string[];
  /** The context to use instead of the current one. */
  context?: string;
  inCluster: InCluster;
  /** The default kubeconfig is <home>/.kube/config. */
  home: string;
}

export interface LoadedKubeconfig {
  /** Loaded from `text`, at `context`. */
  kc: KubeConfig;
  /**
   * One self-contained kubeconfig (JSON) with only the chosen context, its cluster and its user:
   * certificates inlined, token-file and exec command absolute. It holds credentials: write it 0600.
   */
  text: string;
  context: string;
  /** What it was read from, for messages: the KUBECONFIG list, ~/.kube/config, or the pod's ServiceAccount. */
  source: string;
}

/**
 * The kubeconfig of the existing target, in controller-runtime's order (`config.GetConfig`): an
 * explicit kubeconfig (--kubeconfig or KUBECONFIG) first, then the pod's ServiceAccount when
 * running in a pod, then ~/.kube/config. client-go's `BuildConfigFromFlags` agrees (explicit path,
 * then in-cluster, then the default rules); kubectl alone would prefer ~/.kube/config over the
 * pod, but a Job's image may carry a stray ~/.kube/config, and in a pod its ServiceAccount is meant.
 * Bad input (no kubeconfig, a malformed file, an unknown context) is a UsageError of one line.
 */
export function loadKubeconfig(o: KubeconfigSources): LoadedKubeconfig {
  if (o.files?.length) {
    const merged = mergeKubeconfigFiles(o.files);
    return fromMerged(merged, merged.files.join(delimiter), o.context);
  }
  const pod = inClusterKubeconfig(o.inCluster);
  if (pod)
    return fromMerged(
      mergeKubeconfigs([{ file: "in-cluster", config: pod }]),
      `in-cluster (ServiceAccount in ${o.inCluster.saDir})`,
      o.context,
    );
  const home = join(o.home, ".kube", "config");
  if (existsSync(home)) return fromMerged(mergeKubeconfigFiles([home]), home, o.context);
  const podHint =
    o.inCluster.host && o.inCluster.port ? ` (KUBERNETES_SERVICE_HOST is set, but ${join(o.inCluster.saDir, "token")} does not exist)` : "";
  throw new UsageError(`no kubeconfig: set KUBECONFIG (or --kubeconfig), create ${home}, or run in a pod${podHint}`);
}

function fromMerged(merged: MergedKubeconfig, source: string, wanted: string | undefined): LoadedKubeconfig {
  const context = wanted ?? merged.currentContext;
  if (!context) throw new UsageError(`kubeconfig ${source} has no current context: pass --context NAME`);
  if (!merged.contexts.has(context))
    throw new UsageError(`kubeconfig ${source} has no context "${context}" (has: ${[...merged.contexts.keys()].join(", ") || "none"})`);
  const flat = flattenKubeconfig(merged, context);
  const text = JSON.stringify(flat, null, 2);
  const kc = new KubeConfig();
  try {
    kc.loadFromString(text);
  } catch (err) {
    throw new UsageError(`kubeconfig ${source}: ${errorMessage(err).split("\n")[0]}`, { cause: err });
  }
  const user = flat.users[0]?.user;
  for (const secret of [user?.token, user?.password]) if (typeof secret === "string") registerSecret(secret);
  return { kc, text, context, source };
}

/** The pod's ServiceAccount as a kubeconfig, or undefined when not in a pod (as client-go's rest.InClusterConfig decides). */
export function inClusterKubeconfig(o: InCluster): RawKubeconfig | undefined {
  const token = join(o.saDir, "token");
  if (!o.host || !o.port || !existsSync(token)) return undefined;
  const host = o.host.includes(":") && !o.host.startsWith("[") ? `[${o.host}]` : o.host; // an IPv6 address
  let namespace: string | undefined;
  try {
    namespace = readFileSync(join(o.saDir, "namespace"), "utf8").trim() || undefined;
  } catch {
    // no namespace file: the context has none
  }
  const name = "in-cluster";
  return {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name, cluster: { server: `https://${host}:${o.port}`, "certificate-authority": join(o.saDir, "ca.crt") } }],
    // token-file, not the token: the kubelet rotates it.
    users: [{ name, user: { "token-file": token } }],
    contexts: [{ name, context: { cluster: name, user: name, ...(namespace ? { namespace } : {}) } }],
    "current-context": name,
  };
}

/**
 * KUBECONFIG's files merged as kubectl merges them: files that do not exist are skipped (but one
 * must exist), the first file to define a cluster, user or context name wins, and the first
 * current-context that is set wins. Relative paths are resolved against the file that holds them.
 */
export function mergeKubeconfigFiles(files: string[]): MergedKubeconfig {
  const read: { file: string; config: RawKubeconfig }[] = [];
  for (const file of [...new Set(files)]) {
    const config = readKubeconfigFile(file);
    if (config) read.push({ file, config });
  }
  if (!read.length)
    throw new UsageError(
      files.length === 1 ? `kubeconfig ${files[0]} does not exist` : `KUBECONFIG: none of its files exists (${files.join(delimiter)})`,
    );
  return mergeKubeconfigs(read);
}

export function mergeKubeconfigs(read: { file: string; config: RawKubeconfig }[]): MergedKubeconfig {
  const merged: MergedKubeconfig = { files: read.map((r) => r.file), clusters: new Map(), users: new Map(), contexts: new Map() };
  for (const { file, config } of read) {
    const add = <T>(into: Map<string, Origin<T>>, entries: { name: string; value: T }[]) => {
      for (const e of entries) if (!into.has(e.name)) into.set(e.name, { value: e.value, file });
    };
    add(
      merged.clusters,
      config.clusters.map((c) => ({ name: c.name, value: c.cluster })),
    );
    add(
      merged.users,
      config.users.map((u) => ({ name: u.name, value: u.user })),
    );
    add(
      merged.contexts,
      config.contexts.map((c) => ({ name: c.name, value: c.context })),
    );
    merged.currentContext ||= config["current-context"] || undefined;
  }
  return merged;
}

/** One kubeconfig file, checked and with its relative paths made absolute; undefined if it does not exist. */
export function readKubeconfigFile(file: string): RawKubeconfig | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new UsageError(`cannot read kubeconfig ${file}: ${errorMessage(err)}`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = loadYaml(text);
  } catch (err) {
    // js-yaml's first line is the reason and position; later lines quote the file (credentials).
    throw new UsageError(`kubeconfig ${file} is not valid YAML: ${errorMessage(err).split("\n")[0]}`, { cause: err });
  }
  return checkKubeconfig(doc ?? {}, file);
}

function checkKubeconfig(doc: unknown, file: string): RawKubeconfig {
  const bad = (what: string) => new UsageError(`kubeconfig ${file} is malformed: ${what}`);
  if (typeof doc !== "object" || Array.isArray(doc)) throw bad("not a mapping");
  const d = doc as Fields;
  const list = <K extends string>(key: string, field: K) => {
    const v = d[key] ?? [];
    if (!Array.isArray(v)) throw bad(`${key} is not a list`);
    return v.map((e: unknown, i) => {
      const entry = e as Fields | null;
      if (!entry || typeof entry.name !== "string" || !entry.name) throw bad(`${key}[${i}] has no name`);
      const body = entry[field] ?? {};
      if (typeof body !== "object" || Array.isArray(body)) throw bad(`${key}[${i}].${field} is not a mapping`);
      return { name: entry.name, [field]: { ...(body as Fields) } } as { name: string } & Record<K, Fields>;
    });
  };
  const current = d["current-context"];
  if (current !== undefined && current !== null && typeof current !== "string") throw bad("current-context is not a string");
  const config: RawKubeconfig = {
    apiVersion: "v1",
    kind: "Config",
    clusters: list("clusters", "cluster"),
    users: list("users", "user"),
    contexts: list("contexts", "context"),
    ...(current ? { "current-context": current } : {}),
  };
  resolvePaths(config, dirname(resolve(file)));
  return config;
}

/** As client-go's ResolveLocalPaths: file references are relative to the kubeconfig's directory. */
function resolvePaths(config: RawKubeconfig, dir: string): void {
  const abs = (fields: Fields, key: string) => {
    const v = fields[key];
    if (typeof v === "string" && v !== "" && !isAbsolute(v)) fields[key] = resolve(dir, v);
  };
  for (const { cluster } of config.clusters) abs(cluster, "certificate-authority");
  for (const { user } of config.users) {
    for (const key of ["client-certificate", "client-key", "token-file"]) abs(user, key);
    // A bare command name is looked up in PATH; one with a separator is a path.
    if (user.exec && typeof user.exec === "object") {
      user.exec = { ...user.exec };
      if (typeof user.exec.command === "string" && user.exec.command.includes(sep)) abs(user.exec, "command");
    }
  }
}

/**
 * The one context, its cluster and its user, as `kubectl config view --flatten --minify` gives
 * them: certificate files inlined as *-data; token-file and exec (command, args, env) kept as
 * they are, with absolute paths. Missing references and unreadable files are UsageErrors.
 */
export function flattenKubeconfig(merged: MergedKubeconfig, context: string): RawKubeconfig {
  const ctx = merged.contexts.get(context);
  if (!ctx) throw new UsageError(`kubeconfig ${merged.files.join(delimiter)} has no context "${context}"`);
  const clusterName = ctx.value.cluster;
  const cluster = clusterName ? merged.clusters.get(clusterName) : undefined;
  if (!cluster)
    throw new UsageError(
      `kubeconfig ${ctx.file}: context "${context}" names cluster "${clusterName ?? ""}", which no kubeconfig file defines`,
    );
  if (typeof cluster.value.server !== "string" || !cluster.value.server)
    throw new UsageError(`kubeconfig ${cluster.file}: cluster "${clusterName}" has no server`);
  const userName = ctx.value.user;
  const user = userName ? merged.users.get(userName) : undefined;
  if (userName && !user)
    throw new UsageError(`kubeconfig ${ctx.file}: context "${context}" names user "${userName}", which no kubeconfig file defines`);
  const c = { ...cluster.value };
  inline(c, "certificate-authority", `cluster "${clusterName}"`, cluster.file);
  const u = { ...(user?.value ?? {}) };
  inline(u, "client-certificate", `user "${userName}"`, user?.file ?? "");
  inline(u, "client-key", `user "${userName}"`, user?.file ?? "");
  if (u.exec) checkExecStanza(u.exec, userName!, user!.file);
  return {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: clusterName!, cluster: c }],
    users: userName ? [{ name: userName, user: u }] : [],
    contexts: [{ name: context, context: { ...ctx.value } }],
    "current-context": context,
  };
}

function inline(fields: Fields, key: string, owner: string, file: string): void {
  const path = fields[key];
  if (typeof path !== "string" || !path) return;
  delete fields[key];
  if (fields[`${key}-data`]) return; // data wins, as in client-go
  try {
    fields[`${key}-data`] = readFileSync(path).toString("base64");
  } catch (err) {
    throw new UsageError(
      `kubeconfig ${file}: ${owner}: cannot read ${key} ${path}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`,
      {
        cause: err,
      },
    );
  }
}

function checkExecStanza(exec: ExecConfig, user: string, file: string): void {
  const where = `kubeconfig ${file}: user "${user}": exec`;
  if (typeof exec.command !== "string" || !exec.command) throw new UsageError(`${where} has no command`);
  if (!EXEC_API_VERSIONS.includes(exec.apiVersion as (typeof EXEC_API_VERSIONS)[number]))
    throw new UsageError(`${where} apiVersion "${exec.apiVersion ?? ""}" is not supported (use ${EXEC_API_VERSIONS.join(" or ")})`);
  if (exec.args !== undefined && exec.args !== null && !(Array.isArray(exec.args) && exec.args.every((a) => typeof a === "string")))
    throw new UsageError(`${where} args is not a list of strings`);
  if (exec.env !== undefined && exec.env !== null && !(Array.isArray(exec.env) && exec.env.every((e) => typeof e?.name === "string")))
    throw new UsageError(`${where} env is not a list of {name, value}`);
}

/**
 * Runs the exec credential plugin of the loaded context's user once, as client-node will on the
 * first request, so that a missing or failing plugin is one line naming it (UsageError) before
 * anything starts, instead of a failed request later. The token it prints is registered as a
 * secret and never shown; the plugin's stderr is (its first line, redacted).
 */
export async function checkExecPlugin(
  loaded: LoadedKubeconfig,
  env: Record<string, string | undefined>,
  timeoutMs = 60_000,
): Promise<void> {
  const flat = JSON.parse(loaded.text) as RawKubeconfig;
  const user = flat.users[0];
  const exec = user?.user.exec;
  if (!user || !exec?.command) return;
  const plugin = `exec credential plugin ${exec.command} (user "${user.name}" of kubeconfig ${loaded.source})`;
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) childEnv[k] = v;
  for (const e of exec.env ?? []) childEnv[e.name] = String(e.value ?? "");
  // client-go tells the plugin what it wants in KUBERNETES_EXEC_INFO.
  childEnv.KUBERNETES_EXEC_INFO = JSON.stringify({ apiVersion: exec.apiVersion, kind: "ExecCredential", spec: { interactive: false } });
  const { stdout, stderr, error } = await new Promise<{ stdout: string; stderr: string; error: ExecFileException | null }>((done) =>
    execFile(exec.command!, exec.args ?? [], { env: childEnv, timeout: timeoutMs, maxBuffer: 1 << 20 }, (error, stdout, stderr) =>
      done({ stdout: String(stdout), stderr: String(stderr), error }),
    ),
  );
  const firstLine = redact(stderr.trim().split("\n")[0] ?? "").slice(0, 200);
  if (error) {
    if (error.code === "ENOENT") {
      const hint = exec.installHint ? `: ${String(exec.installHint).trim().split("\n")[0]}` : "";
      throw new UsageError(`${plugin} was not found${hint}`);
    }
    if (error.code === "EACCES") throw new UsageError(`${plugin} is not executable`);
    if (error.killed) throw new UsageError(`${plugin} gave no credential within ${timeoutMs / 1000}s`);
    const status = typeof error.code === "number" ? `exited with status ${error.code}` : `failed (${error.signal ?? error.code ?? "?"})`;
    throw new UsageError(`${plugin} ${status}${firstLine ? `: ${firstLine}` : ""}`);
  }
  let cred: { apiVersion?: string; kind?: string; status?: { token?: string; clientCertificateData?: string; clientKeyData?: string } };
  try {
    cred = JSON.parse(stdout) as typeof cred;
  } catch {
    throw new UsageError(`${plugin} printed no ExecCredential JSON`);
  }
  registerSecret(cred?.status?.token);
  if (cred?.kind !== "ExecCredential" || cred.apiVersion !== exec.apiVersion)
    throw new UsageError(`${plugin} printed ${cred?.apiVersion ?? "?"} ${cred?.kind ?? "?"}, not ${exec.apiVersion} ExecCredential`);
  if (!cred.status?.token && !(cred.status?.clientCertificateData && cred.status.clientKeyData))
    throw new UsageError(`${plugin} printed an ExecCredential with neither a token nor a client certificate and key`);
}

/** A kubeconfig (JSON is valid YAML) with one cluster, one user and one context. */
export function adminKubeconfig(o: {
  name: string;
  server: string;
  caCert: string;
  clientCert?: string;
  clientKey?: string;
  token?: string;
}): string {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const user: Record<string, string> = {};
  if (o.clientCert && o.clientKey) {
    user["client-certificate-data"] = b64(o.clientCert);
    user["client-key-data"] = b64(o.clientKey);
  }
  if (o.token) user.token = o.token;
  return JSON.stringify(
    {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: o.name, cluster: { server: o.server, "certificate-authority-data": b64(o.caCert) } }],
      users: [{ name: `${o.name}-admin`, user }],
      contexts: [{ name: o.name, context: { cluster: o.name, user: `${o.name}-admin` } }],
      "current-context": o.name,
    },
    null,
    2,
  );
}
