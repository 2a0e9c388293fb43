import { afterAll, beforeAll, test } from "vitest";
import { SuiteContext } from "./suite.ts";

/**
 * The per-file scaffolding of a conformance suite, as vitest fixtures
 * (https://vitest.dev/guide/test-context): `ctx` is the file's SuiteContext, created when a test
 * of the file first asks for it and torn down (everything it created) when the file ends. A suite
 * adds its own arrangement as a further file-scoped fixture built on `ctx`:
 *
 *   const it = suiteTest("smoke").extend("app", { scope: "file" }, async ({ ctx }) => { ... });
 *   it("...", async ({ ctx, app }) => { ... });
 *
 * Use `it.for` (not `it.each`) for tables: only `for` hands the test its context.
 */
export function suiteTest(suite: string) {
  return test.extend("ctx", { scope: "file" }, async ({}, { onCleanup }) => {
    const ctx = await SuiteContext.create(suite);
    onCleanup(() => ctx.cleanup());
    return ctx;
  });
}

/**
 * A SuiteContext per describe block, for suites whose blocks must not share one (fixture-cases:
 * each case restores Vault's `default` policy when it ends, before the next case reads it).
 * Registers the beforeAll/afterAll pair; `setup` runs in beforeAll with the new context.
 * Returns the context's getter (valid inside the block's hooks and tests).
 */
export function describeContext(suite: string, setup: (ctx: SuiteContext) => Promise<void> = async () => {}): () => SuiteContext {
  let ctx: SuiteContext | undefined;
  beforeAll(async () => {
    ctx = await SuiteContext.create(suite);
    await setup(ctx);
  });
  afterAll(() => ctx?.cleanup());
  return () => {
    if (!ctx) throw new Error(`suite ${suite}: the context is used before its beforeAll ran`);
    return ctx;
  };
}
