/**
 * Reading the statistics: one task name's (or every name's) buckets over a
 * window, and every task name's totals. Histograms are summed in SQL (bin by
 * bin, which is how they merge) and read into percentiles here. Shared by the
 * JSON API, the pages and the MCP server.
 */
import { type SQL, sql } from "drizzle-orm";
import type { Database } from "../store/database.ts";
import { type Histogram, percentile } from "./histogram.ts";

/** Bucket sizes the API offers, seconds: a minute, an hour, a day (UTC). */
export const STATS_BUCKETS = [60, 3600, 86400] as const;
export type StatsBucketSeconds = (typeof STATS_BUCKETS)[number];
/** Buckets one answer may hold (a day of minutes, or two months of hours). */
export const MAX_STATS_BUCKETS = 1500;
/** Task names one answer lists, busiest first. */
export const MAX_TASK_NAMES = 500;

export interface OutcomeCounts {
  succeeded: number;
  failed: number;
  retried: number;
  revoked: number;
  expired: number;
}

export interface StatsBucket extends OutcomeCounts {
  /** The bucket's start, unix seconds (a multiple of the bucket size). */
  start: number;
  /** Seconds; null when no task of the bucket has one. */
  runtimeP50: number | null;
  runtimeP95: number | null;
  runtimeP99: number | null;
  waitP95: number | null;
}

export interface StatsQuery {
  /** One task name; every name when absent. */
  name?: string;
  queue?: string;
  from: Date;
  to: Date;
  bucket: StatsBucketSeconds;
}

/** The bucket size that draws a window in at most MAX_STATS_BUCKETS bars, finest first. */
export function bucketFor(windowS: number): StatsBucketSeconds {
  if (windowS <= 6 * 3600) return 60;
  if (windowS <= 14 * 86400) return 3600;
  return 86400;
}

const counts = sql`sum(succeeded)::int as succeeded, sum(failed)::int as failed, sum(retried)::int as retried,
  sum(revoked)::int as revoked, sum(expired)::int as expired`;

function where(q: { name?: string; queue?: string; from: Date; to: Date }): SQL {
  const parts = [sql`minute >= ${q.from.toISOString()}::timestamptz`, sql`minute < ${q.to.toISOString()}::timestamptz`];
  if (q.name !== undefined) parts.push(sql`name = ${q.name}`);
  if (q.queue !== undefined) parts.push(sql`queue = ${q.queue}`);
  return sql.join(parts, sql` and `);
}

type CountRow = OutcomeCounts & { key: string | number };
type BinRow = { key: string | number; kind: "r" | "w"; bin: number; n: number };

/** Runtime and wait histograms summed per `key` (an SQL expression over task_stats). */
async function histograms(database: Database, key: SQL, filter: SQL): Promise<Map<string, { runtime: Histogram; wait: Histogram }>> {
  const rows = await database.rows<BinRow>(sql`
    select key, kind, bin::int as bin, sum(n)::int as n from (
      select ${key} as key, 'r' as kind, h.bin, h.n from task_stats, unnest(runtime_bins, runtime_counts) as h(bin, n) where ${filter}
      union all
      select ${key} as key, 'w' as kind, h.bin, h.n from task_stats, unnest(wait_bins, wait_counts) as h(bin, n) where ${filter}
    ) b group by key, kind, bin order by key, kind, bin`);
  const out = new Map<string, { runtime: Histogram; wait: Histogram }>();
  for (const r of rows) {
    const k = String(r.key);
    let h = out.get(k);
    if (!h) out.set(k, (h = { runtime: { bins: [], counts: [] }, wait: { bins: [], counts: [] } }));
    const which = r.kind === "r" ? h.runtime : h.wait;
    which.bins.push(Number(r.bin));
    which.counts.push(Number(r.n));
  }
  return out;
}

const outcomeCounts = (r: OutcomeCounts | undefined): OutcomeCounts => ({
  succeeded: Number(r?.succeeded ?? 0),
  failed: Number(r?.failed ?? 0),
  retried: Number(r?.retried ?? 0),
  revoked: Number(r?.revoked ?? 0),
  expired: Number(r?.expired ?? 0),
});

/**
 * A task name's statistics over [from, to), one bucket per `bucket` seconds
 * (UTC-aligned; `from` rounds down to a bucket), empty buckets included.
 * The caller bounds the window (MAX_STATS_BUCKETS).
 */
export async function taskNameStats(database: Database, q: StatsQuery): Promise<StatsBucket[]> {
  const step = q.bucket;
  const first = Math.floor(q.from.getTime() / 1000 / step) * step;
  const end = q.to.getTime() / 1000;
  const filter = where({ ...q, from: new Date(first * 1000) });
  const key = sql`(floor(extract(epoch from minute) / ${step}) * ${step})::bigint::text`;
  const [rows, hists] = await Promise.all([
    database.rows<CountRow>(sql`select ${key} as key, ${counts} from task_stats where ${filter} group by 1`),
    histograms(database, key, filter),
  ]);
  const byStart = new Map(rows.map((r) => [String(r.key), r]));
  const buckets: StatsBucket[] = [];
  for (let start = first; start < end && buckets.length < MAX_STATS_BUCKETS; start += step) {
    const h = hists.get(String(start));
    const runtime = h?.runtime ?? { bins: [], counts: [] };
    buckets.push({
      start,
      ...outcomeCounts(byStart.get(String(start))),
      runtimeP50: percentile(runtime, 0.5),
      runtimeP95: percentile(runtime, 0.95),
      runtimeP99: percentile(runtime, 0.99),
      waitP95: percentile(h?.wait ?? { bins: [], counts: [] }, 0.95),
    });
  }
  return buckets;
}

export interface TaskNameSummary extends OutcomeCounts {
  name: string;
  /** Tasks that reached an outcome (succeeded, failed, revoked, expired). */
  total: number;
  /** failed / (succeeded + failed); null when none ran to an end. */
  failureRate: number | null;
  runtimeP50: number | null;
  runtimeP95: number | null;
  runtimeP99: number | null;
  waitP95: number | null;
  /** Tasks per point over the window, oldest first (a sparkline). */
  series: number[];
}

/**
 * Every task name with an outcome in [from, to): totals, failure rate,
 * percentiles, and its throughput in `points` equal steps. Busiest first, at
 * most MAX_TASK_NAMES.
 */
export async function taskNameSummaries(database: Database, q: { from: Date; to: Date; points?: number }): Promise<TaskNameSummary[]> {
  const points = q.points ?? 30;
  const from = q.from.getTime() / 1000;
  const stepS = Math.max(60, (q.to.getTime() / 1000 - from) / points);
  const filter = where(q);
  const rows = await database.rows<CountRow>(sql`select name as key, ${counts} from task_stats where ${filter}
    group by name order by sum(succeeded + failed + revoked + expired) desc, name limit ${MAX_TASK_NAMES}`);
  if (rows.length === 0) return [];
  const names = rows.map((r) => String(r.key));
  const named = sql`${filter} and name in (${sql.join(names.map((n) => sql`${n}`), sql`, `)})`;
  const [hists, series] = await Promise.all([
    histograms(database, sql`name`, named),
    database.rows<{ name: string; point: number; n: number }>(sql`
      select name, floor((extract(epoch from minute) - ${from}) / ${stepS})::int as point,
        sum(succeeded + failed + revoked + expired)::int as n
      from task_stats where ${named} group by 1, 2`),
  ]);
  const seriesOf = new Map<string, number[]>();
  for (const s of series) {
    let line = seriesOf.get(s.name);
    if (!line) seriesOf.set(s.name, (line = new Array<number>(points).fill(0)));
    const i = Math.min(points - 1, Math.max(0, Number(s.point)));
    line[i] = (line[i] ?? 0) + Number(s.n);
  }
  return rows.map((r) => {
    const name = String(r.key);
    const c = outcomeCounts(r);
    const h = hists.get(name);
    const runtime = h?.runtime ?? { bins: [], counts: [] };
    const ran = c.succeeded + c.failed;
    return {
      name,
      ...c,
      total: c.succeeded + c.failed + c.revoked + c.expired,
      failureRate: ran > 0 ? c.failed / ran : null,
      runtimeP50: percentile(runtime, 0.5),
      runtimeP95: percentile(runtime, 0.95),
      runtimeP99: percentile(runtime, 0.99),
      waitP95: percentile(h?.wait ?? { bins: [], counts: [] }, 0.95),
      series: seriesOf.get(name) ?? new Array<number>(points).fill(0),
    };
  });
}

export interface StatsWindow {
  from: Date;
  to: Date;
  bucket: StatsBucketSeconds;
}

/** A window's defaults (the last 24 h, a bucket by its length) and bounds; a problem as a sentence for a 400. */
export function statsWindow(q: { from?: Date; to?: Date; bucket?: StatsBucketSeconds }, now: number): StatsWindow | string {
  const to = q.to ?? new Date(now * 1000);
  const from = q.from ?? new Date(to.getTime() - 86_400_000);
  if (from.getTime() >= to.getTime()) return "from must be before to";
  const windowS = (to.getTime() - from.getTime()) / 1000;
  const bucket = q.bucket ?? bucketFor(windowS);
  if (windowS / bucket > MAX_STATS_BUCKETS) {
    return `that window holds ${Math.ceil(windowS / bucket)} buckets of ${bucket} s; at most ${MAX_STATS_BUCKETS}: use a larger bucket or a shorter window`;
  }
  return { from, to, bucket };
}
