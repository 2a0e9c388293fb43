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
const hooks = new Set<() => Promise<void>>();
let installed = false;
let shuttingDown = false;

export function onShutdown(hook: () => Promise<void>): () => void {
  hooks.add(hook);
  if (!installed) {
    installed = true;
    const handler = (signal: NodeJS.Signals) => {
      if (shuttingDown) return;
      shuttingDown = true;
      log.warn("", `${signal} received: tearing down`);
      const code = signal === "SIGINT" ? 130 : 143;
      void Promise.allSettled([...hooks].reverse().map((h) => h())).finally(() => process.exit(code));
    };
    process.on("SIGINT", handler);
    process.on("SIGTERM", handler);
    process.on("SIGHUP", handler);
  }
  return () => hooks.delete(hook);
}

export function isShuttingDown(): boolean {
  return shuttingDown;
}

// Last-resort synchronous cleanups for an exit that skips the async teardown (another signal
// handler calling process.exit, an uncaught error). 'exit' handlers must be synchronous.
const exitCleanups = new Set<() => void>();
let exitInstalled = false;

export function onExitSync(fn: () => void): () => void {
  exitCleanups.add(fn);
  if (!exitInstalled) {
    exitInstalled = true;
    process.on("exit", () => {
      for (const f of [...exitCleanups].reverse()) {
        try {
          f();
        } catch {
          // nothing more can be done while exiting
        }
      }
    });
  }
  return () => exitCleanups.delete(fn);
}
