import type { StartedTarget } from "./start.ts";

/**
 * `--keep-on-failure` for the local target: when a run has failures, the globalSetup's teardown
 * hands the target over instead of stopping it, and the script keeps it up (and owns it) until
 * Ctrl-C or `npm run env:down`. The globalSetup runs in vitest's module runner and the script in
 * Node's: the hand-over goes through one object per process on globalThis.
 */
interface KeepState {
  requested: boolean;
  target?: StartedTarget;
}
const state: KeepState = ((globalThis as Record<symbol, unknown>)[Symbol.for("vault-k8s-conformance.keep")] ??= {
  requested: false,
}) as KeepState;

/** The run failed and the user asked to keep the target: the teardown must not stop it. */
export function requestKeep(): void {
  state.requested = true;
}

/** Called by the teardown: true if it handed the target over (and must not stop it). */
export function handOver(target: StartedTarget | undefined): boolean {
  if (!state.requested || !target) return false;
  state.target = target;
  return true;
}

export function keptTarget(): StartedTarget | undefined {
  return state.target;
}
