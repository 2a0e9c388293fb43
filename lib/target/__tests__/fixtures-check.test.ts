import { readFileSync } from "node:fs";
import { mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { unreadableReason } from "../cases.ts";
import { parserMessage } from "../fixtures-check.ts";

describe("policy parser messages as one line", () => {
  // stderr of `vault policy fmt` (1.21) and `bao policy fmt` (2.7) for the same broken files
  it.each([
    [
      "failed to parse policy: At 1:29: unexpected token while parsing list: RBRACE\n",
      "At 1:29: unexpected token while parsing list: RBRACE",
    ],
    [
      'failed to parse policy: 1 error occurred:\n\t* path "x": invalid key "capabilites" on line 1\n\n\n',
      'path "x": invalid key "capabilites" on line 1',
    ],
    [
      'failed to parse policy: path "x": 1 error occurred:\n\t* invalid key "capabilites" on line 1\n\n\n',
      'path "x": invalid key "capabilites" on line 1',
    ],
    ['failed to parse policy: path "x": path "x": invalid capability "reed"\n', 'path "x": invalid capability "reed"'],
    ["failed to parse policy: 2 errors occurred:\n\t* a\n\t* b\n\n", "a; b"],
  ])("%j", (stderr, line) => {
    expect(parserMessage(stderr)).toBe(line);
  });
});

describe("unreadable fixture reasons", () => {
  it("names a dangling symlink, a directory and a missing file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vkc-unreadable-"));
    try {
      await symlink(join(dir, "gone"), join(dir, "link"));
      const reason = (p: string) => {
        try {
          readFileSync(p);
        } catch (err) {
          return unreadableReason(err, p);
        }
      };
      expect(reason(join(dir, "link"))).toBe(`it is a dangling symlink to ${join(dir, "gone")}`);
      expect(reason(dir)).toBe("it is a directory");
      expect(reason(join(dir, "nope"))).toBe("it does not exist");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
