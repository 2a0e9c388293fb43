import { expect } from "vitest";
import { describeResponse } from "../vault/client.ts";

/**
 * Vault refused the request: the HTTP status AND the error text (a substring of Vault's errors).
 * Every rejection a suite checks goes through here, so none checks one without the other.
 */
export function expectRefused(res: { status: number; body?: { errors?: string[] } }, status: number, error: string): void {
  expect(res.status, describeResponse(res)).toBe(status);
  expect(res.body?.errors?.join("\n")).toContain(error);
}

const SIBLING_INTERVAL_MS = 300;

/**
 * The refusal of something that worked a moment ago, proved with never-presented tokens.
 *
 * kube-apiserver caches a token's successful authentication for 10 s, but only a token it has
 * authenticated: a case proves that a token works with one token and the refusal with siblings
 * (same ServiceAccount or Pod), minted before the change and never presented. The apiserver's
 * informer may still hold the deleted object for a moment, and a stale success would be cached
 * too, so each attempt takes the next fresh sibling (300 ms apart); bounded by their number, not
 * by the cache's ~10 s. Returns the first answer other than 200; throws if all were accepted.
 */
export async function refusedWithFreshToken<T extends { status: number }>(
  fresh: readonly string[],
  attempt: (jwt: string, index: number) => Promise<T>,
  what: string,
): Promise<T> {
  for (let i = 0; i < fresh.length; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, SIBLING_INTERVAL_MS));
    const res = await attempt(fresh[i]!, i);
    if (res.status !== 200) return res;
  }
  throw new Error(`Vault refuses ${what}: all ${fresh.length} never-presented tokens were accepted`);
}

/** `count` sibling tokens from `mint`, minted one after the other (before the change they outlive). */
export async function siblings(mint: () => Promise<string>, count = 8): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(await mint());
  return out;
}
