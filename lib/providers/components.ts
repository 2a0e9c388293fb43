import { join } from "node:path";
import { childEnv, type Config, type Flavor } from "../config.ts";
import { PortInUseError } from "../errors.ts";
import { log } from "../log.ts";
import { freePort, portsInUse } from "../ports.ts";
import { StartedProcess, type ProcessSpec } from "../process.ts";
import { waitForVaultUnsealed } from "../vault/ready.ts";

/** Starts a component process; the caller has registered its stop on the run's teardown. */
export type StartProcess = (spec: ProcessSpec) => Promise<StartedProcess>;

/** A component's environment: clean (nothing of the user's, such as VAULT_ADDR, KUBECONFIG or proxies, leaks in), its home the work dir. */
export function baseEnv(config: Pick<Config, "env">, work: string): Record<string, string> {
  return childEnv(config, { HOME: work, TMPDIR: work, LANG: "C" }, { clean: true });
}

/**
 * The error of a component that failed to start on `ports`: a PortInUseError when the process
 * exited and another process now holds one of its ports (a bind probe, lib/ports.ts), else `err`.
 */
export async function asPortClash(err: unknown, p: StartedProcess, ports: number[]): Promise<unknown> {
  if (p.running || !(await portsInUse(ports)).length) return err;
  return new PortInUseError(p.name, ports, { cause: err });
}

/**
 * A port picked free can be taken before the component binds it (another run starting at the
 * same moment). A start that fails with PortInUseError is retried with new ports instead of
 * failing the run; `start` gets `count` fresh ports per attempt.
 */
export async function onFreePorts<T>(name: string, count: number, start: (ports: number[]) => Promise<T>, attempts = 3): Promise<T> {
  for (let i = 1; ; i++) {
    const ports: number[] = [];
    for (let j = 0; j < count; j++) ports.push(await freePort());
    try {
      return await start(ports);
    } catch (err) {
      if (i >= attempts || !(err instanceof PortInUseError)) throw err;
      log.warn("local", `${name}: its port was taken before it could bind; retrying with another (${i}/${attempts - 1})`);
    }
  }
}

/** A Vault (or OpenBao) dev server on 127.0.0.1 with the given root token: the local target's, and the existing target's `--vault process`. */
export async function startDevVault(o: {
  config: Pick<Config, "env">;
  flavor: Flavor;
  bin: string;
  work: string;
  logDir: string;
  token: string;
  timeout: number;
  startProcess: StartProcess;
}): Promise<{ address: string; version: string }> {
  const name = o.flavor;
  return onFreePorts(name, 1, async ([port]) => {
    const address = `http://127.0.0.1:${port}`;
    const p = await o.startProcess({
      name,
      command: o.bin,
      args: ["server", "-dev", `-dev-root-token-id=${o.token}`, `-dev-listen-address=127.0.0.1:${port}`, "-dev-no-store-token"],
      env: { ...baseEnv(o.config, o.work), VAULT_DISABLE_MLOCK: "true", BAO_DISABLE_MLOCK: "true" },
      logFile: join(o.logDir, `${name}.log`),
    });
    const version = await waitForVaultUnsealed(address, {
      what: `${name} dev server /v1/sys/health reports unsealed`,
      timeoutMs: o.timeout,
      failFast: () => (p.running ? undefined : p.exitedError("start")),
      evidence: () => p.tail(),
    }).catch(async (err: unknown) => {
      throw await asPortClash(err, p, [port!]);
    });
    return { address, version };
  });
}
