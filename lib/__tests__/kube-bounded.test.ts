import { describe, expect, it } from "vitest";
import { instrumented as bounded } from "../kube/client.ts";

describe("bounded Kubernetes client calls", () => {
  const api = {
    hangs: () => new Promise(() => undefined),
    answers: async (x: number) => x * 2,
    plain: () => 7,
  };

  it("a call that gets no answer rejects with an error naming it", async () => {
    await expect(bounded(api, 50).hangs()).rejects.toThrow("Kubernetes API call hangs got no answer within 0.05s");
  });

  it("answers, errors and plain values pass through unchanged", async () => {
    const b = bounded(api, 50);
    expect(await b.answers(21)).toBe(42);
    expect(b.plain()).toBe(7);
    await expect(bounded({ fails: async () => Promise.reject(new Error("403 Forbidden")) }, 50).fails()).rejects.toThrow("403 Forbidden");
  });
});
