import {
  ApiException,
  CoreV1Api,
  Exec,
  KubeConfig,
  KubernetesObjectApi,
  RbacAuthorizationV1Api,
  type KubernetesObject,
  type V1Pod,
  type V1PolicyRule,
  type V1Secret,
} from "@kubernetes/client-node";
import { Writable } from "node:stream";
import { HarnessError } from "../errors.ts";
import { httpJson, type HttpResponse } from "../http.ts";
import { registerSecret } from "../redact.ts";
import { recordSpan, span, traceClock, tracing } from "../trace.ts";
import { waitFor } from "../wait.ts";

export const RUN_LABEL = "vault-k8s-conformance/run";

export const KUBE_CALL_TIMEOUT_MS = 30_000;

/** Where runPod mounts its projected serviceAccountToken volume. */
export const PROJECTED_TOKEN_DIR = "/var/run/secrets/tokens";
/** The kubelet-projected default token of a Pod. */
export const DEFAULT_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/**
 * The one wrapper of the Kubernetes API objects. The Kubernetes client has no timeout of its own:
 * a hung (not dead) API server would hold a call until the test's timeout, and a teardown
 * forever. Every method of `api` that returns a promise rejects after `timeoutMs` with an error
 * naming the call (the request itself is left to die with the process) and, when tracing
 * (lib/trace.ts), is recorded as a "kube" span until it settles.
 */
export function instrumented<T extends object>(api: T, timeoutMs = KUBE_CALL_TIMEOUT_MS): T {
  return new Proxy(api, {
    get(target, prop, receiver) {
      const v: unknown = Reflect.get(target, prop, receiver);
      if (typeof v !== "function" || prop === "constructor") return v;
      return (...args: unknown[]) => {
        const s = tracing() ? traceClock() : 0;
        const r: unknown = (v as (...a: unknown[]) => unknown).apply(target, args);
        if (!r || typeof (r as PromiseLike<unknown>).then !== "function") return r;
        let timer: NodeJS.Timeout | undefined;
        const limit = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new HarnessError(`Kubernetes API call ${String(prop)} got no answer within ${timeoutMs / 1000}s`)),
            timeoutMs,
          );
          timer.unref();
        });
        return Promise.race([r as Promise<unknown>, limit]).finally(() => {
          clearTimeout(timer);
          if (s) recordSpan("kube", s);
        });
      };
    },
  });
}

export function isNotFound(err: unknown): boolean {
  return err instanceof ApiException && err.code === 404;
}

export interface TokenOptions {
  audiences?: string[];
  expirationSeconds?: number;
  /** Bind the token to a Pod: it dies with the Pod. */
  boundPod?: { name: string; uid: string };
}

/**
 * The harness's Kubernetes calls, on the typed client (errors are ApiException with `.code`).
 * Every token it obtains is registered as a secret, so it can never be printed.
 */
export class Kube {
  readonly core: CoreV1Api;
  readonly rbac: RbacAuthorizationV1Api;
  readonly objects: KubernetesObjectApi;

  constructor(readonly kc: KubeConfig) {
    // Every call gets an answer or a clear error within KUBE_CALL_TIMEOUT_MS, and is traced when tracing.
    this.core = instrumented(kc.makeApiClient(CoreV1Api));
    this.rbac = instrumented(kc.makeApiClient(RbacAuthorizationV1Api));
    this.objects = instrumented(KubernetesObjectApi.makeApiClient(kc));
  }

  static fromFile(path: string, context?: string): Kube {
    const kc = new KubeConfig();
    try {
      kc.loadFromFile(path);
    } catch (err) {
      throw new HarnessError(`cannot read kubeconfig ${path}: ${(err as Error).message}`, { cause: err });
    }
    if (context) {
      if (!kc.getContexts().some((c) => c.name === context)) {
        throw new HarnessError(
          `kubeconfig ${path} has no context "${context}" (has: ${
            kc
              .getContexts()
              .map((c) => c.name)
              .join(", ") || "none"
          })`,
        );
      }
      kc.setCurrentContext(context);
    }
    return new Kube(kc);
  }

  async createNamespace(name: string, runId: string): Promise<void> {
    await this.core.createNamespace({ body: { metadata: { name, labels: { [RUN_LABEL]: runId } } } });
  }

  /** Deletes a namespace; does not wait for its contents to go (the namespace controller does that). */
  async deleteNamespace(name: string): Promise<void> {
    try {
      await this.core.deleteNamespace({ name });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async createServiceAccount(namespace: string, name: string): Promise<string> {
    const sa = await this.core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
    return sa.metadata?.uid ?? "";
  }

  async deleteServiceAccount(namespace: string, name: string): Promise<void> {
    await this.core.deleteNamespacedServiceAccount({ namespace, name });
  }

  async serviceAccountUid(namespace: string, name: string): Promise<string> {
    const sa = await this.core.readNamespacedServiceAccount({ namespace, name });
    return sa.metadata?.uid ?? "";
  }

  /** A bound token from the TokenRequest API (what pods get since 1.21). */
  async requestToken(namespace: string, serviceAccount: string, o: TokenOptions = {}): Promise<string> {
    const res = await this.core.createNamespacedServiceAccountToken({
      name: serviceAccount,
      namespace,
      body: {
        spec: {
          audiences: o.audiences ?? [],
          expirationSeconds: o.expirationSeconds ?? 3600,
          boundObjectRef: o.boundPod ? { kind: "Pod", apiVersion: "v1", name: o.boundPod.name, uid: o.boundPod.uid } : undefined,
        },
      },
    });
    const token = res.status?.token;
    if (!token) throw new HarnessError(`TokenRequest for ${namespace}/${serviceAccount} returned no token`);
    return registerSecret(token);
  }

  /**
   * A long-lived legacy token: a `kubernetes.io/service-account-token` Secret, which 1.24+ no
   * longer creates by itself; the token controller fills it in. Returns the Secret's name and token.
   */
  async legacyToken(
    namespace: string,
    serviceAccount: string,
    secretName = `${serviceAccount}-token`,
  ): Promise<{ secretName: string; token: string }> {
    await this.core.createNamespacedSecret({
      namespace,
      body: {
        metadata: { name: secretName, annotations: { "kubernetes.io/service-account.name": serviceAccount } },
        type: "kubernetes.io/service-account-token",
      },
    });
    const token = await span("kube", () =>
      waitFor(
        async () => {
          const s: V1Secret = await this.core.readNamespacedSecret({ namespace, name: secretName });
          const data = s.data?.token;
          return data ? Buffer.from(data, "base64").toString("utf8") : undefined;
        },
        { what: `token controller populates Secret ${namespace}/${secretName}`, timeoutMs: 30_000, intervalMs: 150 },
      ),
    );
    return { secretName, token: registerSecret(token) };
  }

  /** A Pod object (no node runs it; it only has to exist for pod-bound tokens). */
  async createPod(namespace: string, name: string, serviceAccount: string): Promise<{ name: string; uid: string }> {
    const body: V1Pod = {
      metadata: { name },
      spec: {
        serviceAccountName: serviceAccount,
        automountServiceAccountToken: false,
        containers: [{ name: "c", image: "registry.k8s.io/pause:3.10" }],
      },
    };
    const pod = await this.core.createNamespacedPod({ namespace, body });
    return { name, uid: pod.metadata?.uid ?? "" };
  }

  async deletePod(namespace: string, name: string): Promise<void> {
    // No kubelet: without gracePeriodSeconds=0 the Pod would wait for one forever.
    await this.core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 });
    await span("kube", () =>
      waitFor(
        async () => {
          try {
            await this.core.readNamespacedPod({ namespace, name });
            return false;
          } catch (err) {
            if (isNotFound(err)) return true;
            throw err;
          }
        },
        { what: `Pod ${namespace}/${name} is gone`, timeoutMs: 30_000 },
      ),
    );
  }

  /**
   * A Pod a kubelet really runs (kind target): one container `c` running `command` in `image`
   * (IfNotPresent: no registry needed for an image loaded into the node), the kubelet-projected
   * default token at /var/run/secrets/kubernetes.io/serviceaccount/token, plus a projected volume
   * `tokens` at /var/run/secrets/tokens with one serviceAccountToken file per `projected` entry.
   */
  async runPod(
    namespace: string,
    name: string,
    o: {
      serviceAccount: string;
      image: string;
      command: string[];
      projected?: { path: string; audience?: string; expirationSeconds?: number }[];
      env?: Record<string, string>;
    },
  ): Promise<{ name: string; uid: string }> {
    const projected = o.projected ?? [];
    const body: V1Pod = {
      metadata: { name },
      spec: {
        serviceAccountName: o.serviceAccount,
        terminationGracePeriodSeconds: 1,
        containers: [
          {
            name: "c",
            image: o.image,
            imagePullPolicy: "IfNotPresent",
            command: o.command,
            env: Object.entries(o.env ?? {}).map(([n, value]) => ({ name: n, value })),
            volumeMounts: projected.length ? [{ name: "tokens", mountPath: PROJECTED_TOKEN_DIR, readOnly: true }] : [],
          },
        ],
        volumes: projected.length
          ? [
              {
                name: "tokens",
                projected: {
                  sources: projected.map((p) => ({
                    serviceAccountToken: { path: p.path, audience: p.audience, expirationSeconds: p.expirationSeconds ?? 3600 },
                  })),
                },
              },
            ]
          : [],
      },
    };
    const pod = await this.core.createNamespacedPod({ namespace, body });
    return { name, uid: pod.metadata?.uid ?? "" };
  }

  /** Waits until the Pod is Running (its containers started); fails fast on a pull or start error. */
  async waitPodRunning(namespace: string, name: string, timeoutMs = 90_000): Promise<V1Pod> {
    let last: V1Pod | undefined;
    const why = () => {
      const waiting = last?.status?.containerStatuses?.map((c) => c.state?.waiting).find((w) => w?.reason);
      return waiting ? `${waiting.reason}: ${waiting.message ?? ""}` : `phase ${last?.status?.phase ?? "unknown"}`;
    };
    return span("kube", () =>
      waitFor(
        async () => {
          last = await this.core.readNamespacedPod({ namespace, name });
          return last.status?.phase === "Running" && last.status.containerStatuses?.every((c) => c.ready) ? last : undefined;
        },
        {
          what: `Pod ${namespace}/${name} is Running`,
          timeoutMs,
          intervalMs: 250,
          evidence: why,
          failFast: () => {
            const reason = last?.status?.containerStatuses?.map((c) => c.state?.waiting?.reason).find(Boolean);
            return reason &&
              /ErrImagePull|ImagePullBackOff|ErrImageNeverPull|CreateContainerError|CrashLoopBackOff|InvalidImageName/.test(reason)
              ? new HarnessError(`Pod ${namespace}/${name} cannot start: ${why()}`)
              : undefined;
          },
        },
      ),
    );
  }

  /** Runs `command` in a container of the Pod (runPod's `c` by default), like kubectl exec; every exit code is data. */
  async execInPod(
    namespace: string,
    name: string,
    command: string[],
    o: { container?: string; timeoutMs?: number } = {},
  ): Promise<{ exitCode: number; stdout: string; stderr: string }> {
    const timeoutMs = o.timeoutMs ?? 30_000;
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const sink = (into: Buffer[]) =>
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          into.push(Buffer.from(chunk));
          cb();
        },
      });
    const exec = new Exec(this.kc);
    return span("kube", async () => {
      let timer: NodeJS.Timeout | undefined;
      try {
        return await new Promise<{ exitCode: number; stdout: string; stderr: string }>((resolve, reject) => {
          timer = setTimeout(
            () => reject(new HarnessError(`exec in Pod ${namespace}/${name} got no answer within ${timeoutMs / 1000}s`)),
            timeoutMs,
          );
          exec
            .exec(namespace, name, o.container ?? "c", command, sink(out), sink(err), null, false, (status) => {
              const code =
                status.status === "Success"
                  ? 0
                  : Number(status.details?.causes?.find((c) => c.reason === "ExitCode")?.message ?? (status.status === "Failure" ? 1 : 0));
              // The status arrives before the last output frames are flushed on some servers: let them land.
              setTimeout(
                () => resolve({ exitCode: code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") }),
                50,
              );
            })
            .catch(reject);
        });
      } finally {
        clearTimeout(timer);
      }
    });
  }

  /** A file of the Pod's container (a token: registered as a secret). Throws unless `cat` succeeds. */
  async readPodFile(namespace: string, name: string, path: string, o: { secret?: boolean; container?: string } = {}): Promise<string> {
    const r = await this.execInPod(namespace, name, ["cat", path], { container: o.container });
    if (r.exitCode !== 0) throw new HarnessError(`cat ${path} in Pod ${namespace}/${name}: exit ${r.exitCode}: ${r.stderr.trim()}`);
    return o.secret ? registerSecret(r.stdout.trim()) : r.stdout;
  }

  /** A namespace carrying the run label plus `labels` (namespace selectors match on them). */
  async createLabelledNamespace(name: string, runId: string, labels: Record<string, string>): Promise<void> {
    await this.core.createNamespace({ body: { metadata: { name, labels: { ...labels, [RUN_LABEL]: runId } } } });
  }

  /** Replaces a namespace's labels other than the run label (read, modify, replace). */
  async setNamespaceLabels(name: string, labels: Record<string, string>): Promise<void> {
    const ns = await this.core.readNamespace({ name });
    const run = ns.metadata?.labels?.[RUN_LABEL];
    ns.metadata = { ...ns.metadata, labels: { ...labels, ...(run ? { [RUN_LABEL]: run } : {}) } };
    await this.core.replaceNamespace({ name, body: ns });
  }

  /** A ServiceAccount with annotations (e.g. vault.hashicorp.com/alias-metadata-*); returns its UID. */
  async createAnnotatedServiceAccount(namespace: string, name: string, annotations: Record<string, string>): Promise<string> {
    const sa = await this.core.createNamespacedServiceAccount({ namespace, body: { metadata: { name, annotations } } });
    return sa.metadata?.uid ?? "";
  }

  /**
   * A ClusterRole with `rules` and a ClusterRoleBinding of it to one ServiceAccount, both named
   * `name` and labelled with the run (e.g. the reviewer's `get namespaces` for namespace selectors).
   */
  async grantClusterRole(name: string, runId: string, rules: V1PolicyRule[], subject: { namespace: string; name: string }): Promise<void> {
    const metadata = { name, labels: { [RUN_LABEL]: runId } };
    await this.rbac.createClusterRole({ body: { metadata, rules } });
    await this.rbac.createClusterRoleBinding({
      body: {
        metadata,
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name },
        subjects: [{ kind: "ServiceAccount", namespace: subject.namespace, name: subject.name }],
      },
    });
  }

  /** Removes what grantClusterRole created (what is already gone is fine). */
  async revokeClusterRole(name: string): Promise<void> {
    for (const kind of ["ClusterRoleBinding", "ClusterRole"]) {
      await this.deleteObject({ apiVersion: "rbac.authorization.k8s.io/v1", kind, metadata: { name } });
    }
  }

  async create<T extends KubernetesObject>(obj: T): Promise<T> {
    return this.objects.create(obj);
  }

  async deleteObject(obj: KubernetesObject): Promise<void> {
    try {
      await this.objects.delete(obj);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /** GET a raw path on the apiserver (e.g. /.well-known/openid-configuration); throws unless 200. */
  async getRaw(path: string): Promise<unknown> {
    const res = await rawGet(this.kc, path);
    if (res.status !== 200) throw new HarnessError(`GET ${path}: HTTP ${res.status}`);
    return res.body;
  }
}

/** A GET on the current cluster with the kubeconfig's credentials, every status as data. */
export async function rawGet(
  kc: KubeConfig,
  path: string,
  timeoutMs = 10_000,
  extraHeaders: Record<string, string> = {},
): Promise<HttpResponse<Record<string, unknown>>> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new HarnessError("kubeconfig has no current cluster");
  const opts: { headers: Record<string, string> } & Record<string, unknown> = { headers: {} };
  await kc.applyToHTTPSOptions(opts);
  return httpJson<Record<string, unknown>>({
    traceKind: "kube",
    url: `${cluster.server.replace(/\/$/, "")}${path}`,
    headers: { ...Object.fromEntries(Object.entries(opts.headers ?? {}).map(([k, v]) => [k, String(v)])), ...extraHeaders },
    ca: bufToString(opts.ca),
    cert: bufToString(opts.cert),
    key: bufToString(opts.key),
    timeoutMs,
  });
}

function bufToString(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  return Buffer.isBuffer(v) ? v.toString("utf8") : String(v);
}
