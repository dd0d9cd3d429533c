/**
 * Percentiles merged from per-minute histograms against a brute-force
 * computation over the raw samples: any split into minutes merges to the same
 * histogram, and its percentiles stay within the documented error.
 */
import { describe, expect, test } from "bun:test";
import { LAST_BIN, RELATIVE_ERROR, binOf, exactPercentile, histogramOf, mergeHistograms, percentile, valueOf } from "../../src/stats/histogram.ts";
import { seeded } from "../support/random.ts";

const PERCENTILES = [0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1];

/** Within the error bound, or both under a microsecond (bin 0 reads as 0). */
function expectClose(got: number | null, exact: number | null) {
  expect(got).not.toBeNull();
  expect(exact).not.toBeNull();
  if ((exact ?? 0) < 1e-6) expect(got).toBe(0);
  else expect(Math.abs((got ?? 0) - (exact ?? 0)) / (exact ?? 1)).toBeLessThanOrEqual(RELATIVE_ERROR + 1e-12);
}

describe("log-scale histogram", () => {
  test("merged minutes give the hour's percentiles, within 4.43 % of the exact ones", () => {
    const random = seeded(42);
    for (let round = 0; round < 40; round++) {
      // Skewed, like runtimes: mostly fast, a long tail, some zeros.
      const samples = Array.from({ length: 1 + Math.floor(random() * 3000) }, () =>
        random() < 0.02 ? 0 : 10 ** (-5 + random() * 7) * (random() < 0.1 ? 50 : 1),
      );
      // Split into "minutes" at random.
      const minutes: number[][] = [];
      for (const s of samples) {
        if (minutes.length === 0 || random() < 0.02) minutes.push([]);
        minutes.at(-1)?.push(s);
      }
      const merged = mergeHistograms(minutes.map((m) => histogramOf(m)));
      expect(merged).toEqual(histogramOf(samples));
      for (const p of PERCENTILES) expectClose(percentile(merged, p), exactPercentile(samples, p));
    }
  });

  test("averaging the minutes' percentiles would be wrong: merging is not", () => {
    // Ten quiet minutes at 10 ms, one busy minute at 2 s.
    const quiet = Array.from({ length: 10 }, () => Array.from({ length: 10 }, () => 0.01));
    const busy = Array.from({ length: 1000 }, () => 2);
    const minutes = [...quiet, busy];
    const averaged = minutes.reduce((n, m) => n + (exactPercentile(m, 0.95) ?? 0), 0) / minutes.length;
    const exact = exactPercentile(minutes.flat(), 0.95);
    expect(Math.abs(averaged - (exact ?? 0)) / (exact ?? 1)).toBeGreaterThan(0.5);
    expectClose(percentile(mergeHistograms(minutes.map((m) => histogramOf(m))), 0.95), exact);
  });

  test("bins at their edges, and beyond the last", () => {
    expect(binOf(0)).toBe(0);
    expect(binOf(-1)).toBe(0);
    expect(binOf(Number.NaN)).toBe(0);
    expect(binOf(0.9e-6)).toBe(0);
    expect(binOf(1e-6)).toBe(1);
    expect(binOf(2e-6)).toBe(9);
    expect(binOf(1e9)).toBe(LAST_BIN);
    for (let b = 1; b < LAST_BIN; b++) expect(binOf(valueOf(b))).toBe(b);
    expect(percentile({ bins: [], counts: [] }, 0.5)).toBeNull();
    // 0.95 × 20 is 19.000000000000004 in floating point: still rank 19.
    const twenty = Array.from({ length: 20 }, (_, i) => (i + 1) / 1000);
    expect(exactPercentile(twenty, 0.95)).toBe(0.019);
    expectClose(percentile(histogramOf(twenty), 0.95), 0.019);
  });
});
