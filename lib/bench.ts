/** Median and spread of repeated measurements (milliseconds). */
export interface Stats {
  runs: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
  samplesMs: number[];
}

export function stats(samples: number[]): Stats {
  if (samples.length === 0) throw new Error("no samples");
  const s = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return {
    runs: s.length,
    medianMs: Math.round(median),
    minMs: Math.round(s[0]!),
    maxMs: Math.round(s[s.length - 1]!),
    samplesMs: samples.map(Math.round),
  };
}

export async function measure(runs: number, fn: () => Promise<void>): Promise<Stats> {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    samples.push(performance.now() - t0);
  }
  return stats(samples);
}
