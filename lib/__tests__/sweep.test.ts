import { describe, expect, it } from "vitest";
import { runMark } from "../auth-setup/steps.ts";
import { withoutMarkedBlock } from "../auth-setup/sweep.ts";

describe("withoutMarkedBlock", () => {
  const mark = runMark("vkc-20261123000000-abcdef");
  const before = '# the default policy\npath "auth/token/lookup-self" {\n  capabilities = ["read"]\n}\n';
  const block = `# begin ${mark}\npath "*" { capabilities = ["read"] }\n# end ${mark}`;

  it("takes out exactly the run's block, restoring the policy as it was", () => {
    expect(withoutMarkedBlock(`${before}\n${block}\n`, mark)).toBe(before);
  });

  it("leaves another run's block and a policy without a block alone", () => {
    const other = runMark("vkc-20261123000000-123456");
    const text = `${before}\n# begin ${other}\npath "*" {}\n# end ${other}\n`;
    expect(withoutMarkedBlock(text, mark)).toBe(text);
    expect(withoutMarkedBlock(before, mark)).toBe(before);
  });

  it("leaves half a block (no end line) to a person rather than guessing", () => {
    const text = `${before}\n# begin ${mark}\npath "*" {}\n`;
    expect(withoutMarkedBlock(text, mark)).toBe(text);
  });
});
