/**
 * A fixed log-scale histogram of durations, so that percentiles merge.
 *
 * A percentile of a minute cannot be averaged into the percentile of an hour
 * (ten quiet minutes at 10 ms and one busy minute at 2 s do not have a p95 of
 * 190 ms). Counts in fixed bins can be added: the hour's histogram is the sum
 * of its minutes', and its percentiles are read from the sum. Every bucket
 * uses the same bins, so any set of minutes merges into the same answer.
 *
 * Bins: bin 0 holds everything under 1 µs (zero included); bin k ≥ 1 holds
 * [2^((k-1)/8), 2^(k/8)) µs, up to the last bin, which also holds everything
 * longer (2^40 µs, 12.7 days). A percentile is read as its bin's geometric
 * middle, so it is within 2^(1/16) − 1 = 4.43 % of the exact value (at most
 * 1 µs off under 1 µs), whatever the number of minutes merged.
 *
 * Stored sparse (only bins that hold something), as two arrays: `bins` and
 * their `counts`. A minute of one task name usually fills a handful of bins.
 */

export const BINS_PER_DOUBLING = 8;
/** The last bin (durations of 2^40 µs and more fall in it). */
export const LAST_BIN = 40 * BINS_PER_DOUBLING + 1;
/** The worst relative error of a percentile read from the histogram (above 1 µs). */
export const RELATIVE_ERROR = 2 ** (1 / (2 * BINS_PER_DOUBLING)) - 1;

/** Bins and counts, bins ascending and distinct. */
export interface Histogram {
  bins: number[];
  counts: number[];
}

/**
 * The bin of a duration in seconds. The same formula runs in SQL
 * (BIN_SQL below): floor(8 · ln(µs) / ln 2) + 1, capped.
 */
export function binOf(seconds: number): number {
  const us = seconds * 1e6;
  if (!(us >= 1)) return 0;
  return Math.min(Math.floor((BINS_PER_DOUBLING * Math.log(us)) / Math.LN2) + 1, LAST_BIN);
}

/** The SQL of binOf, for a duration in seconds given as SQL (a float8 expression, not null). */
export function binSql(seconds: string): string {
  return `case when ${seconds} * 1e6 >= 1 then least(floor(${BINS_PER_DOUBLING} * ln(${seconds} * 1e6) / ln(2))::int + 1, ${LAST_BIN}) else 0 end`;
}

/** The duration (seconds) a bin stands for: its geometric middle; 0 for bin 0. */
export function valueOf(bin: number): number {
  if (bin <= 0) return 0;
  return 2 ** ((bin - 1 + 0.5) / BINS_PER_DOUBLING) / 1e6;
}

export function histogramOf(seconds: Iterable<number>): Histogram {
  const byBin = new Map<number, number>();
  for (const s of seconds) {
    const b = binOf(s);
    byBin.set(b, (byBin.get(b) ?? 0) + 1);
  }
  return fromMap(byBin);
}

/** The sum of histograms: what the SQL's `sum(count) group by bin` computes. */
export function mergeHistograms(hs: Iterable<Histogram>): Histogram {
  const byBin = new Map<number, number>();
  for (const h of hs) for (let i = 0; i < h.bins.length; i++) add(byBin, h.bins[i] ?? 0, h.counts[i] ?? 0);
  return fromMap(byBin);
}

function add(m: Map<number, number>, bin: number, n: number) {
  m.set(bin, (m.get(bin) ?? 0) + n);
}

function fromMap(byBin: Map<number, number>): Histogram {
  const bins = [...byBin.keys()].sort((a, b) => a - b);
  return { bins, counts: bins.map((b) => byBin.get(b) ?? 0) };
}

/**
 * The p-th percentile (0 < p ≤ 1) by nearest rank: the smallest value with
 * at least p of the samples at or below it. Null when there is no sample.
 */
export function percentile(h: Histogram, p: number): number | null {
  const total = h.counts.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = rankOf(p, total);
  let seen = 0;
  for (let i = 0; i < h.bins.length; i++) {
    seen += h.counts[i] ?? 0;
    if (seen >= rank) return valueOf(h.bins[i] ?? 0);
  }
  return valueOf(h.bins.at(-1) ?? 0);
}

/** The exact nearest-rank percentile of raw samples: what the histogram approximates. */
export function exactPercentile(samples: readonly number[], p: number): number | null {
  if (samples.length === 0) return null;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[rankOf(p, sorted.length) - 1] ?? null;
}

/** The nearest rank, 1-based; 0.95 × 100 is 95.00000000000001 in floating point, and still rank 95. */
function rankOf(p: number, total: number): number {
  return Math.min(total, Math.max(1, Math.ceil(p * total - 1e-9)));
}
