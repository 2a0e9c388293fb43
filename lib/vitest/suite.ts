import { randomBytes } from "node:crypto";
import { inject } from "vitest";
import { Teardown } from "../cleanup.ts";
import { log } from "../log.ts";
import type { TargetInfo } from "../lifecycle/info.ts";
import {
  applyReviewer,
  connect,
  disableAuth,
  enableKubernetesAuth,
  enableKv,
  markedPolicy,
  removeReviewerBinding,
  standardAuth,
  type AuthConfig,
  type Clients,
  type Reviewer,
} from "../auth-setup/steps.ts";

/**
 * What a suite file works with: clients rebuilt from the injected TargetInfo, unique names, and
 * a teardown for everything the suite creates (namespaces, bindings, mounts, policies). Suites
 * never start or configure infrastructure beyond their own objects.
 */
export class SuiteContext {
  readonly teardown: Teardown;
  readonly tag: string;

  private constructor(
    readonly suite: string,
    readonly clients: Clients,
    readonly fixturesDir: string,
    readonly slow: boolean,
  ) {
    this.tag = randomBytes(3).toString("hex");
    this.teardown = new Teardown(`suite ${suite}`);
  }

  static async create(suite: string): Promise<SuiteContext> {
    const info = inject("target");
    return new SuiteContext(suite, await connect(info), inject("fixturesDir"), inject("slow"));
  }

  get info(): TargetInfo {
    return this.clients.info;
  }
  get kube() {
    return this.clients.kube;
  }
  get vault() {
    return this.clients.vault;
  }

  /** A DNS-1123 name unique to this run, suite and call: `<prefix>-<suite tag>-<random>`. */
  name(prefix: string): string {
    return `${prefix}-${this.tag}-${randomBytes(2).toString("hex")}`.toLowerCase().slice(0, 63);
  }

  async namespace(prefix: string): Promise<string> {
    const ns = this.name(prefix);
    await this.kube.createNamespace(ns, this.info.runId);
    this.teardown.defer(`delete namespace ${ns}`, () => this.kube.deleteNamespace(ns));
    return ns;
  }

  async reviewer(namespace: string, opts: { bind?: boolean } = {}): Promise<Reviewer> {
    const r = await applyReviewer(this.kube, {
      fixturesDir: this.fixturesDir,
      namespace,
      suffix: this.name("r"),
      runId: this.info.runId,
      bind: opts.bind,
    });
    this.teardown.defer(`delete ClusterRoleBinding ${r.bindingName}`, () => removeReviewerBinding(this.kube, r));
    return r;
  }

  async mount(prefix = "k8s"): Promise<string> {
    const m = this.name(prefix);
    await enableKubernetesAuth(this.vault, m, this.info.runId);
    this.teardown.defer(`disable auth mount ${m}`, () => disableAuth(this.vault, m));
    return m;
  }

  /** A kv secrets engine (v1 or v2) at a unique path. */
  async kv(prefix: string, version: 1 | 2): Promise<string> {
    const path = this.name(prefix);
    await enableKv(this.vault, path, version, this.info.runId);
    this.teardown.defer(`unmount ${path}`, () => this.vault.must("DELETE", `sys/mounts/${path}`));
    return path;
  }

  async policy(prefix: string, hcl: string): Promise<string> {
    const name = this.name(prefix);
    await this.vault.must("PUT", `sys/policies/acl/${name}`, { policy: markedPolicy(this.info.runId, hcl) });
    this.teardown.defer(`delete policy ${name}`, () => this.vault.must("DELETE", `sys/policies/acl/${name}`));
    return name;
  }

  /**
   * The common arrangement of both guides: a namespace with the reviewer (bound to
   * auth-delegator), its JWT, a kubernetes auth mount configured with host, CA and reviewer JWT.
   */
  async standardAuth(o: { reviewerMode?: "secret" | "tokenrequest"; config?: Partial<AuthConfig>; bind?: boolean } = {}) {
    return standardAuth(this.clients, {
      ...o,
      fixturesDir: this.fixturesDir,
      namespace: this.name("rev"),
      suffix: this.name("r"),
      mount: this.name("k8s"),
      defer: (what, undo) => this.teardown.defer(what, undo),
    });
  }

  async cleanup(): Promise<void> {
    log.debug(this.suite, `cleaning up ${this.teardown.size} objects`);
    await this.teardown.run();
  }
}
