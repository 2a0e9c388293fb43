import type { Dispatcher } from "undici";
import { httpJson, type HttpResponse } from "../http.ts";
import { HarnessError } from "../errors.ts";
import { redactValue } from "../redact.ts";
import type { VaultSettings } from "./env.ts";
import { vaultDispatcher } from "./transport.ts";

export interface VaultErrorBody {
  errors?: string[];
}

/** A Vault API response: status plus parsed body. Rejections are data, not exceptions. */
export type VaultResponse<T = any> = HttpResponse<T & VaultErrorBody>;

export interface VaultClientOptions {
  address: string;
  token?: string;
  caCert?: string;
  timeoutMs?: number;
  /** Vault namespace (Enterprise, HCP, OpenBao): sent as X-Vault-Namespace on every request. */
  namespace?: string;
  /**
   * Transport with the user's TLS and proxy settings (lib/vault/transport.ts vaultDispatcher);
   * replaces caCert (give one or the other).
   */
  dispatcher?: Dispatcher;
}

/**
 * A thin client for Vault's HTTP API. `request` returns every status as data (suites assert on
 * rejections); `must` throws an error with method, path, status and Vault's `errors` body.
 * Works for HashiCorp Vault and OpenBao (same API under /v1).
 */
export class VaultClient {
  constructor(readonly opts: VaultClientOptions) {}

  /**
   * A client as the user's environment configures one (lib/vault/env.ts vaultSettingsFromEnv):
   * address, token, namespace, and a dispatcher with the TLS and proxy settings. Close it with
   * `opts.dispatcher.close()` when done (idle connections do not keep the process alive).
   */
  static fromSettings(settings: VaultSettings, o: { timeoutMs?: number } = {}): VaultClient {
    return new VaultClient({
      address: settings.address,
      ...(settings.token !== undefined ? { token: settings.token } : {}),
      ...(settings.namespace !== undefined ? { namespace: settings.namespace } : {}),
      dispatcher: vaultDispatcher(settings),
      ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
    });
  }

  get address(): string {
    return this.opts.address;
  }

  withToken(token: string | undefined): VaultClient {
    return new VaultClient({ ...this.opts, token });
  }

  /** The same client in another namespace (undefined: the root namespace). */
  withNamespace(namespace: string | undefined): VaultClient {
    return new VaultClient({ ...this.opts, namespace });
  }

  request<T = any>(method: string, path: string, body?: unknown): Promise<VaultResponse<T>> {
    const headers: Record<string, string> = {};
    if (this.opts.token) headers["x-vault-token"] = this.opts.token;
    if (this.opts.namespace) headers["x-vault-namespace"] = this.opts.namespace;
    return httpJson<T & VaultErrorBody>({
      method,
      url: `${this.opts.address.replace(/\/$/, "")}/v1/${path.replace(/^\//, "")}`,
      headers,
      body,
      ...(this.opts.dispatcher ? { dispatcher: this.opts.dispatcher } : { ca: this.opts.caCert }),
      timeoutMs: this.opts.timeoutMs ?? 15_000,
    });
  }

  read<T = any>(path: string) {
    return this.request<T>("GET", path);
  }
  write<T = any>(path: string, body: unknown = {}) {
    return this.request<T>("POST", path, body);
  }
  delete<T = any>(path: string) {
    return this.request<T>("DELETE", path);
  }
  list<T = any>(path: string) {
    return this.request<T>("LIST", path);
  }

  /** Like request, but any status outside 2xx is an error carrying the evidence. */
  async must<T = any>(method: string, path: string, body?: unknown): Promise<VaultResponse<T>> {
    const res = await this.request<T>(method, path, body);
    if (res.status < 200 || res.status > 299) throw vaultError(method, path, res);
    return res;
  }
}

export function vaultError(method: string, path: string, res: VaultResponse): HarnessError {
  const errors = res.body && typeof res.body === "object" ? (res.body.errors ?? []) : [res.text];
  return new HarnessError(`Vault ${method} ${path}: HTTP ${res.status}${errors.length ? `: ${redactValue(errors).join("; ")}` : ""}`);
}

/**
 * A response as an assertion message may show it: status and Vault's errors, never the body
 * (a successful login's body holds a client token).
 */
export function describeResponse(res: { status: number; body?: { errors?: string[] } | unknown }): string {
  const errors = res.body && typeof res.body === "object" && "errors" in res.body ? (res.body as VaultErrorBody).errors : undefined;
  return `HTTP ${res.status}${errors?.length ? ` errors=${JSON.stringify(redactValue(errors))}` : ""}`;
}
