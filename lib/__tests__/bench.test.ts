import { describe, expect, it } from "vitest";
import {
  formatBench,
  loginFailures,
  median,
  mergeIntervals,
  overhead,
  parseCounts,
  parseTrace,
  percentile,
  runLoginLoad,
  stats,
  summarizeOverhead,
  unionLength,
  type Interval,
  type LoadResult,
} from "../bench.ts";
import {
  formatSideBySide,
  kindBench,
  kindRows,
  parseDuration,
  parseKindModes,
  parseKindReady,
  summarizeKind,
  type KindRunOutput,
  type KindVaultMode,
} from "../bench/kind.ts";

describe("bench: percentiles", () => {
  it("uses the nearest rank: always one of the samples", () => {
    const xs = [5, 1, 4, 2, 3, 6, 7, 8, 9, 10];
    expect(percentile(xs, 50)).toBe(5);
    expect(percentile(xs, 90)).toBe(9);
    expect(percentile(xs, 99)).toBe(10);
    expect(percentile(xs, 100)).toBe(10);
    expect(percentile(xs, 1)).toBe(1);
    expect(percentile([42], 99)).toBe(42);
    // 100 samples 1..100: p99 is the 99th.
    expect(
      percentile(
        Array.from({ length: 100 }, (_, i) => 100 - i),
        99,
      ),
    ).toBe(99);
  });
  it("refuses no samples and percentiles outside (0, 100]", () => {
    expect(() => percentile([], 50)).toThrow(/no values/);
    expect(() => percentile([1], 0)).toThrow(RangeError);
    expect(() => percentile([1], 101)).toThrow(RangeError);
  });
  it("median averages the two middle samples of an even count; stats keeps its shape", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(stats([3000, 1000, 2000])).toEqual({ runs: 3, medianMs: 2000, minMs: 1000, maxMs: 3000, samplesMs: [3000, 1000, 2000] });
  });
  it("parses --login-ns lists", () => {
    expect(parseCounts("1,10,50", "--login-ns")).toEqual([1, 10, 50]);
    expect(parseCounts(" 5 ", "--login-ns")).toEqual([5]);
    for (const bad of ["", "0", "1,,2", "a", "-1", "1.5"]) expect(() => parseCounts(bad, "--login-ns")).toThrow(/--login-ns/);
  });
});

describe("bench: interval union", () => {
  it("merges overlapping and touching intervals, drops empty and reversed ones", () => {
    const ivs: Interval[] = [
      [10, 20],
      [0, 5],
      [15, 30],
      [30, 31],
      [40, 40],
      [50, 45],
      [35, 36],
    ];
    expect(mergeIntervals(ivs)).toEqual([
      [0, 5],
      [10, 31],
      [35, 36],
    ]);
    expect(unionLength(ivs)).toBe(5 + 21 + 1);
    expect(unionLength([])).toBe(0);
  });
  it("counts nested intervals once", () => {
    expect(
      unionLength([
        [0, 100],
        [10, 20],
        [30, 40],
      ]),
    ).toBe(100);
  });
  it("clips to a window", () => {
    const ivs: Interval[] = [
      [-10, 5],
      [8, 12],
      [95, 120],
      [200, 300],
    ];
    expect(mergeIntervals(ivs, [0, 100])).toEqual([
      [0, 5],
      [8, 12],
      [95, 100],
    ]);
    expect(unionLength(ivs, [0, 100])).toBe(14);
  });
  it("does not mutate its input", () => {
    const ivs: Interval[] = [
      [0, 10],
      [5, 15],
    ];
    mergeIntervals(ivs);
    expect(ivs).toEqual([
      [0, 10],
      [5, 15],
    ]);
  });
});

describe("bench: overhead", () => {
  it("is wall time minus the union of every kind, split into lead, gaps and tail", () => {
    // spawn at 1000, exit at 2000; start 1100-1400, two overlapping kube/vault calls, stop 1800-1950.
    const o = overhead(
      [1000, 2000],
      [
        { k: "start", s: 1100, e: 1400 },
        { k: "vault", s: 1500, e: 1600 },
        { k: "kube", s: 1550, e: 1650 },
        { k: "vault", s: 1560, e: 1570 },
        { k: "stop", s: 1800, e: 1950 },
      ],
    );
    expect(o).toMatchObject({
      wallMs: 1000,
      waitingMs: 300 + 150 + 150,
      overheadMs: 400,
      overheadPct: 40,
      leadMs: 100,
      tailMs: 50,
      midMs: 250,
      byKindMs: { start: 300, vault: 100, kube: 100, stop: 150 },
      records: 5,
    });
    // Gaps as [offset from spawn, length], longest first.
    expect(o.longestGapsMs).toEqual([
      [650, 150],
      [400, 100],
    ]);
  });
  it("with no records the whole run is overhead", () => {
    expect(overhead([0, 500], [])).toMatchObject({ wallMs: 500, waitingMs: 0, overheadMs: 500, overheadPct: 100, leadMs: 500, tailMs: 0 });
  });
  it("ignores what lies outside the run's window", () => {
    const o = overhead([100, 200], [{ k: "http", s: 0, e: 150 }]);
    expect(o).toMatchObject({ waitingMs: 50, overheadMs: 50, leadMs: 0, tailMs: 50 });
  });
  it("parses traces, counting malformed lines and unknown kinds instead of failing", () => {
    const text = [
      '{"k":"vault","s":1.5,"e":2.5}',
      "",
      '{"k":"kube","s":3,"e":4}',
      '{"k":"url","s":3,"e":4}',
      '{"k":"vault","s":5,"e":4}',
      '{"k":"vault","s":1',
    ].join("\n");
    expect(parseTrace(text)).toEqual({
      records: [
        { k: "vault", s: 1.5, e: 2.5 },
        { k: "kube", s: 3, e: 4 },
      ],
      malformed: 3,
    });
  });
});

describe("bench: login load", () => {
  it("keeps N logins in flight and measures latency and throughput with a fake login", async () => {
    let now = 0;
    let inFlight = 0;
    let peak = 0;
    const seen: string[] = [];
    const r = await runLoginLoad(
      ["a", "b", "c"],
      4,
      async (cred) => {
        seen.push(cred);
        inFlight++;
        peak = Math.max(peak, inFlight);
        await new Promise((res) => setTimeout(res, 1));
        now += 10; // every login "takes" 10 ms on the fake clock
        inFlight--;
        return { ok: true };
      },
      () => now,
    );
    expect(peak).toBe(3);
    expect(seen.filter((c) => c === "a")).toHaveLength(4);
    expect(r).toMatchObject({ concurrency: 3, logins: 12, failures: 0, failureReasons: {} });
    expect(r.durationMs).toBe(120);
    expect(r.loginsPerSecond).toBe(100);
    expect(r.p99Ms).toBeGreaterThanOrEqual(r.p50Ms);
  });
  it("counts refused and throwing logins as failures with their reasons", async () => {
    let i = 0;
    const r = await runLoginLoad(["x", "y"], 3, async () => {
      i++;
      if (i === 2) return { ok: false, error: 'HTTP 403 errors=["permission denied"]' };
      if (i === 4) throw new Error("socket hang up");
      return { ok: true };
    });
    expect(r.logins).toBe(6);
    expect(r.failures).toBe(2);
    expect(r.failureReasons).toEqual({ 'HTTP 403 errors=["permission denied"]': 1, "socket hang up": 1 });
  });
  it("refuses an empty load", async () => {
    await expect(runLoginLoad([], 1, async () => ({ ok: true }))).rejects.toThrow(/no credentials/);
    await expect(runLoginLoad(["a"], 0, async () => ({ ok: true }))).rejects.toThrow(RangeError);
  });
});

describe("bench: result", () => {
  const load = (failures: number): LoadResult => ({
    concurrency: 1,
    logins: 10,
    failures,
    failureReasons: failures ? { "HTTP 403": failures } : ({} as Record<string, number>),
    durationMs: 100,
    loginsPerSecond: 100,
    p50Ms: 9.5,
    p99Ms: 12,
    maxMs: 12,
  });
  it("counts login failures and summarizes overhead by medians", () => {
    expect(loginFailures(undefined)).toBe(0);
    expect(loginFailures({ rounds: 10, reused: [load(0)], fresh: [load(2)] })).toBe(2);
    const a = overhead([0, 1000], [{ k: "vault", s: 100, e: 600 }]);
    const b = overhead([0, 2000], [{ k: "vault", s: 100, e: 600 }]);
    expect(summarizeOverhead([a, b])).toEqual({ medianOverheadMs: 1000, medianOverheadPct: 62.5, runs: [a, b] });
  });
  it("formats what was measured, and only that", () => {
    const text = formatBench({
      machine: "2 cores",
      flavor: "vault",
      targetReady: stats([3000, 4000]),
      targetTeardown: stats([500]),
      login: { rounds: 10, reused: [load(0)], fresh: [load(1)] },
      failedScriptRuns: 1,
    });
    expect(text.split("\n")).toEqual([
      "machine: 2 cores; flavor vault",
      "local target time-to-ready:      median 3.50s (min 3.00s, max 4.00s, n=2)",
      "local target teardown:           median 0.50s (min 0.50s, max 0.50s, n=1)",
      "logins, each service account's JWT reused (10 rounds; N in flight):",
      "  N=1     100.0 logins/s  p50    9.5 ms  p99   12.0 ms  10 logins",
      "logins, a fresh JWT for every login (TokenReview never cached):",
      '  N=1     100.0 logins/s  p50    9.5 ms  p99   12.0 ms  10 logins  1 FAILED: {"HTTP 403":1}',
      "1 script run(s) exited non-zero: figures include them (see log above)",
    ]);
    expect(formatBench({ machine: "m", flavor: "openbao" })).toBe("machine: m; flavor openbao");
  });
});

describe("bench: the kind target beside the local one", () => {
  const readyLine = (id: string, took: string) => `[vkc] kind: ${id}: ready in ${took}: kubernetes 1.36.3, vault 1.21.1`;
  it("reads formatDuration's text back", () => {
    expect(parseDuration("850ms")).toBe(850);
    expect(parseDuration("33.2s")).toBe(33_200);
    expect(parseDuration("1m05s")).toBe(65_000);
    for (const bad of ["", "3.2", "1m", "fast"]) expect(parseDuration(bad)).toBeUndefined();
  });
  it("takes the provider's ready line, not other lines that mention ready", () => {
    const output = [
      "[vkc] kind: vkc-1: creating cluster vkc-1 (vkc/kind-node:v1.36.3, issuer https://kubernetes.default.svc.cluster.local), Vault vkc/vault:1.21.1 (container)",
      "[vkc] local: vkc-0: ready in 4.1s: kubernetes 1.36.3, vault 1.21.1",
      readyLine("vkc-1", "41.7s"),
      " ✓ suites/smoke.test.ts (3 tests) ready in 2.0s: done",
    ].join("\n");
    expect(parseKindReady(output)).toBe(41_700);
    expect(parseKindReady("[vkc] kind: vkc-1: creating cluster\nerror: node image x is not present")).toBeUndefined();
  });
  it("interleaves the modes and aggregates medians and ranges per mode", async () => {
    const seen: string[] = [];
    const fake: Record<KindVaultMode, { ready: string[]; wall: number[]; code: number[] }> = {
      container: { ready: ["40.0s", "36.0s", "38.0s"], wall: [70_000, 66_000, 90_000], code: [0, 0, 1] },
      "in-cluster": { ready: ["50.0s", "1m02s", "52.0s"], wall: [80_000, 85_000, 75_000], code: [0, 0, 0] },
    };
    const { bench, runs } = await kindBench({ runs: 3, modes: ["container", "in-cluster"] }, async (mode, i): Promise<KindRunOutput> => {
      seen.push(`${mode}#${i}`);
      return {
        code: fake[mode].code[i]!,
        wallMs: fake[mode].wall[i]!,
        output: `noise\n${readyLine(`vkc-${i}`, fake[mode].ready[i]!)}\nmore`,
        logFile: "/tmp/out.log",
        totals: { passed: 190 + i, failed: fake[mode].code[i]!, skipped: 9 },
      };
    });
    expect(seen).toEqual(["container#0", "in-cluster#0", "container#1", "in-cluster#1", "container#2", "in-cluster#2"]);
    expect(runs).toHaveLength(6);
    const [c, k] = bench.modes;
    expect(c).toMatchObject({ mode: "container", ready: { runs: 3, medianMs: 38_000, minMs: 36_000, maxMs: 40_000 }, failedRuns: 1 });
    expect(c!.timeToVerdict).toMatchObject({ medianMs: 70_000, minMs: 66_000, maxMs: 90_000 });
    expect(k).toMatchObject({ mode: "in-cluster", ready: { medianMs: 52_000, maxMs: 62_000 }, failedRuns: 0 });
    expect(k!.totals.at(-1)).toEqual({ passed: 192, failed: 0, skipped: 9 });
    expect(summarizeKind(runs)).toEqual(bench);
  });
  it("a run without a ready target stops the bench with one line naming mode, run, exit code, the error and the log", async () => {
    const run = async (): Promise<KindRunOutput> => ({
      code: 2,
      wallMs: 3_000,
      output: "error: node image vkc/kind-node:v9 is not present and cannot be pulled: build it with `npm run kit`\n  details",
      logFile: "/r/bench-run-kind-in-cluster/output.log",
    });
    const err = await kindBench({ runs: 2, modes: ["in-cluster"] }, run).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe(
      "kind bench: run 1 with Vault in the cluster exited 2 without a ready target (node image vkc/kind-node:v9 is not present and cannot be pulled: build it with `npm run kit`): see /r/bench-run-kind-in-cluster/output.log",
    );
    expect((err as Error).message).not.toContain("\n");
    await expect(kindBench({ runs: 0, modes: ["container"] }, run)).rejects.toThrow(RangeError);
    await expect(kindBench({ runs: 1, modes: [] }, run)).rejects.toThrow(RangeError);
  });
  it("parses --kind-vault", () => {
    expect(parseKindModes("container,in-cluster")).toEqual(["container", "in-cluster"]);
    expect(parseKindModes(" in-cluster ,in-cluster")).toEqual(["in-cluster"]);
    for (const bad of ["", "process", "container,", "docker"]) expect(() => parseKindModes(bad)).toThrow(/--kind-vault/);
  });
  it("prints local and kind in one table", () => {
    const kind = summarizeKind([
      { mode: "container", code: 0, wallMs: 70_000, readyMs: 38_000, totals: { passed: 190, failed: 0, skipped: 9 } },
      { mode: "in-cluster", code: 0, wallMs: 80_000, readyMs: 50_000 },
    ]);
    const lines = formatSideBySide([
      {
        target: "local, Vault as a process",
        ready: stats([4000, 3800]),
        timeToVerdict: stats([17_000]),
        totals: { passed: 180, failed: 0, skipped: 20 },
      },
      ...kindRows(kind),
    ]).split("\n");
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(
      /^target\s+ready, median \(min-max\)\s+time to verdict, median \(min-max\)\s+cases passed\/failed\/skipped \(last run\)$/,
    );
    expect(lines[1]).toMatch(/^local, Vault as a process\s+3\.90s \(3\.80-4\.00\), n=2\s+17\.00s \(17\.00-17\.00\), n=1\s+180\/0\/20$/);
    expect(lines[2]).toMatch(/^kind, Vault as a container\s+38\.00s \(38\.00-38\.00\), n=1\s+70\.00s \(70\.00-70\.00\), n=1\s+190\/0\/9$/);
    expect(lines[3]).toMatch(/^kind, Vault in the cluster\s+50\.00s .*80\.00s .*-$/);
    // Columns line up.
    expect(new Set(lines.map((l) => (l.indexOf("ready, median") >= 0 ? l.indexOf("ready") : l.search(/\d+\.\d\ds \(/)))).size).toBe(1);
  });
});
