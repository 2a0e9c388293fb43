import { log } from "./log.ts";
import { errorMessage } from "./errors.ts";

/**
 * A stack of named cleanups, run in reverse order exactly once (e2e-framework's teardown habit;
 * AsyncDisposableStack is not in Node 20, so this is ours). Register each cleanup as soon as the
 * thing it undoes exists. A failing cleanup is logged and the others still run; it never hides
 * the error that caused the teardown.
 */
export class Teardown implements AsyncDisposable {
  #steps: { name: string; fn: () => unknown | Promise<unknown> }[] = [];
  #done: Promise<void> | undefined;
  #unlisten: (() => void) | undefined;

  constructor(readonly scope: string) {}

  defer(name: string, fn: () => unknown | Promise<unknown>): void {
    if (this.#done) throw new Error(`${this.scope}: cannot register "${name}" after teardown started`);
    this.#steps.push({ name, fn });
  }

  /** Tear down also when the process receives SIGINT or SIGTERM (see `onShutdown`). */
  tieToSignals(): this {
    this.#unlisten ??= onShutdown(() => this.run());
    return this;
  }

  get size(): number {
    return this.#steps.length;
  }

  run(): Promise<void> {
    this.#done ??= (async () => {
      this.#unlisten?.();
      for (const step of this.#steps.reverse()) {
        try {
          await step.fn();
        } catch (err) {
          log.warn(this.scope, `cleanup "${step.name}" failed: ${errorMessage(err)}`);
        }
      }
      this.#steps = [];
    })();
    return this.#done;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.run();
  }
}

// Process-wide shutdown hooks: the first SIGINT/SIGTERM runs every hook (newest first), then
// exits with 128+signal. A second signal while hooks run is ignored, so Ctrl-C twice cannot
// strand processes; the hooks themselves are bounded (process kills escalate to SIGKILL).
// Hooks registered with `first` (stopping the test runner, so that no worker creates objects
// any more) run, bounded, before the others (tearing down targets, sweeping what runs left).
//
// One registry per module instance, no process-wide singleton: the scripts own every target,
// process and temp dir of a run. vitest's globalSetup, which vitest loads through its own module
// runner in the script's process, only attaches to the script's target and has nothing to tear
// down (it does not load this module); its workers are processes of their own.
const registry = {
  hooks: new Set<() => Promise<void>>(),
  firstHooks: new Set<() => Promise<void>>(),
  installed: false,
  shuttingDown: false,
  exitCleanups: new Set<() => void>(),
  exitInstalled: false,
  handler: undefined as ((signal: NodeJS.Signals) => void) | undefined,
};
const FIRST_HOOKS_BUDGET_MS = 10_000;

export function onShutdown(hook: () => Promise<void>, o: { first?: boolean } = {}): () => void {
  const set = o.first ? registry.firstHooks : registry.hooks;
  set.add(hook);
  if (!registry.installed) {
    registry.installed = true;
    const handler = (signal: NodeJS.Signals) => {
      if (registry.shuttingDown) return;
      registry.shuttingDown = true;
      log.warn("", `${signal} received: tearing down`);
      const code = signal === "SIGINT" ? 130 : 143;
      // While the teardown runs, nobody else ends the process: a script whose runner was just
      // stopped returns its verdict and calls process.exit, and vitest's own signal handler exits
      // too; either would cut the teardown short (and exit 1). Ours is the only exit, with 130/143.
      const exit = process.exit.bind(process);
      process.exit = ((c?: number | string | null) => {
        log.debug("", `exit(${c ?? ""}) while tearing down after ${signal}: deferred`);
      }) as typeof process.exit;
      // The process must live until our exit: a hook may await a promise no handle backs (vitest's
      // pool, cancelled while a Ctrl-C to the process group killed its workers), and a drained
      // event loop would end the process with the runner's exit code (1) instead of 130/143.
      process.exitCode = code;
      const alive = setInterval(() => undefined, 1_000);
      const bounded = new Promise<void>((r) => setTimeout(r, FIRST_HOOKS_BUDGET_MS));
      void Promise.race([Promise.allSettled([...registry.firstHooks].map((h) => h())), bounded])
        .then(() => Promise.allSettled([...registry.hooks].reverse().map((h) => h())))
        .finally(() => {
          clearInterval(alive);
          exit(code);
        });
    };
    registry.handler = handler;
    process.on("SIGINT", handler);
    process.on("SIGTERM", handler);
    process.on("SIGHUP", handler);
  }
  return () => set.delete(hook);
}

/**
 * Makes our handler the only one for SIGINT/SIGTERM/SIGHUP. vitest's logger installs its own,
 * which exits the process a millisecond after the signal: our teardown (stop processes, sweep
 * what a run left on your Vault) would be cut short. Call it once vitest is initialised.
 */
export function ownSignals(): void {
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    for (const l of process.listeners(sig)) if (l !== registry.handler) process.off(sig, l);
  }
}

// Last-resort synchronous cleanups for an exit that skips the async teardown (another signal
// handler calling process.exit, an uncaught error). 'exit' handlers must be synchronous.
export function onExitSync(fn: () => void): () => void {
  registry.exitCleanups.add(fn);
  if (!registry.exitInstalled) {
    registry.exitInstalled = true;
    process.on("exit", () => {
      for (const f of [...registry.exitCleanups].reverse()) {
        try {
          f();
        } catch {
          // nothing more can be done while exiting
        }
      }
    });
  }
  return () => registry.exitCleanups.delete(fn);
}
