import { randomBytes } from "node:crypto";
import type { Config } from "../config.ts";
import { UsageError } from "../errors.ts";
import { log } from "../log.ts";
import { connect, login, standardAuth, writeRole } from "../auth-setup/steps.ts";
import { startLocalTarget, type LocalBinaries } from "../providers/local.ts";
import { describeResponse } from "../vault/client.ts";
import { runLoginLoad, type LoadResult, type LoginBench } from "../bench.ts";

/**
 * Login throughput and latency on one local target set up like the suites do (standardAuth: a
 * reviewer bound to system:auth-delegator, a kubernetes auth mount with host, CA and reviewer
 * JWT) and a role bound to max(N) service accounts. Per N: N lanes, each `rounds` sequential
 * logins of its own service account, so N logins are in flight at a time. A warm-up round (one
 * login per service account) comes first and is not counted.
 */
export async function loginBench(config: Config, binaries: LocalBinaries, ns: number[], rounds: number): Promise<LoginBench> {
  const target = await startLocalTarget({ config, binaries });
  try {
    const clients = await connect(target.info);
    const { info, kube, vault } = clients;
    const tag = randomBytes(3).toString("hex");
    const { mount } = await standardAuth(clients, {
      fixturesDir: config.fixturesDir,
      namespace: `bench-rev-${tag}`,
      mount: `bench-${tag}`,
      suffix: tag,
    });

    const appNs = `bench-app-${tag}`;
    await kube.createNamespace(appNs, info.runId);
    const names = Array.from({ length: Math.max(...ns) }, (_, i) => `app-${i}`);
    await inBatches(names, 10, (n) => kube.createServiceAccount(appNs, n));
    await writeRole(vault, mount, "bench", {
      bound_service_account_names: names,
      bound_service_account_namespaces: [appNs],
      token_ttl: "10m",
    });
    const mint = (n: string) => kube.requestToken(appNs, n, { expirationSeconds: 3600 });

    const attempt = async (jwt: string) => {
      const res = await login(vault, mount, "bench", jwt);
      const ok = res.status === 200 && typeof res.body?.auth?.client_token === "string" && res.body.auth.client_token !== "";
      return ok ? { ok } : { ok, error: describeResponse(res) };
    };
    const jwts = await inBatches(names, 10, mint);
    log.info("bench", `login bench: ${names.length} service accounts on mount ${mount}; warm-up round`);
    const warm = await runLoginLoad(jwts, 1, attempt);
    if (warm.failures) throw new UsageError(`warm-up logins failed: ${JSON.stringify(warm.failureReasons)}`);

    const reused: LoadResult[] = [];
    const fresh: LoadResult[] = [];
    for (const n of ns) {
      reused.push(await runLoginLoad(jwts.slice(0, n), rounds, attempt));
      // Fresh: every lane gets `rounds` distinct JWTs of its service account, minted before the clock starts.
      const lanes = await inBatches(names.slice(0, n), 10, async (name) => {
        const queue: string[] = [];
        for (let i = 0; i < rounds; i++) queue.push(await mint(name));
        return queue;
      });
      fresh.push(await runLoginLoad(lanes, rounds, (queue) => attempt(queue.shift()!)));
      log.info("bench", `login bench N=${n}: reused ${reused.at(-1)!.loginsPerSecond}/s, fresh ${fresh.at(-1)!.loginsPerSecond}/s`);
    }
    return { rounds, reused, fresh };
  } finally {
    await target.stop();
  }
}

/** Maps `items` through `fn`, at most `size` at a time, keeping the order. */
async function inBatches<T, R>(items: T[], size: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}
