/**
 * The statistics are the tasks' truth, whatever the delivery: events written
 * through the collector's writer (writeBatch) in small shuffled batches with
 * duplicates and rollups in between, then replayed whole, then (PostgreSQL)
 * written by two collectors at once while rollups run, all end in the same
 * rows — equal to counts computed independently from the generated tasks,
 * with percentiles within the histogram's documented error.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { sql } from "drizzle-orm";
import { buildBatch } from "../../src/collector/batch.ts";
import { RELATIVE_ERROR, exactPercentile } from "../../src/stats/histogram.ts";
import { taskNameStats, taskNameSummaries } from "../../src/stats/queries.ts";
import { pruneStatistics, rollUpStatistics } from "../../src/stats/rollup.ts";
import { type Database, openDatabase } from "../../src/store/database.ts";
import { migrate } from "../../src/store/migrate.ts";
import { writeBatch } from "../../src/store/writes.ts";
import { StatsAnswer, TaskNamesAnswer } from "../../src/api/schemas.ts";
import { logger } from "../../src/log.ts";
import { createApp } from "../../src/web/app.ts";
import { createDatabase, type PostgresServer, startPostgres } from "../support/postgres-server.ts";
import { seeded, shuffled } from "../support/random.ts";
import { statsTraffic, type TruthTask } from "../support/stats-traffic.ts";
import { emptyStore, type TestStore } from "../support/store.ts";

/** An hour that starts on the hour, so its minutes make exactly one hourly bucket. */
const HOUR = Date.UTC(2026, 10, 20, 10) / 1000;
const NAMES = ["app.tasks.send_email", "app.tasks.resize", "app.tasks.report"];
const traffic = statsTraffic({ seed: 13, tasks: 250, start: HOUR, spanS: 50 * 60, names: NAMES });

/** The stored rows, in a stable order, as text: for "nothing changed". */
async function statsSnapshot(database: Database): Promise<string> {
  const rows = await database.rows(sql`select extract(epoch from minute)::float8 as minute, name, queue, succeeded, failed, retried, revoked, expired,
    runtime_bins::text as rb, runtime_counts::text as rc, wait_bins::text as wb, wait_counts::text as wc
    from task_stats order by name, minute, queue`);
  return JSON.stringify(rows);
}

/** Per (minute, name, queue), the counts the generated tasks add up to. */
function truthCounts(tasks: readonly TruthTask[]): Map<string, Record<string, number>> {
  const out = new Map<string, Record<string, number>>();
  for (const t of tasks) {
    const key = `${Math.floor(t.at / 60) * 60}|${t.name}|${t.queue}`;
    const c = out.get(key) ?? { succeeded: 0, failed: 0, retried: 0, revoked: 0, expired: 0 };
    c[t.outcome] = (c[t.outcome] ?? 0) + 1;
    c.retried = (c.retried ?? 0) + t.retries;
    out.set(key, c);
  }
  return out;
}

async function storedCounts(database: Database): Promise<Map<string, Record<string, number>>> {
  const rows = await database.rows<{ minute: number; name: string; queue: string; succeeded: number; failed: number; retried: number; revoked: number; expired: number }>(
    sql`select extract(epoch from minute)::float8 as minute, name, queue, succeeded, failed, retried, revoked, expired from task_stats`,
  );
  return new Map(
    rows.map((r) => [
      `${Number(r.minute)}|${r.name}|${r.queue}`,
      { succeeded: r.succeeded, failed: r.failed, retried: r.retried, revoked: r.revoked, expired: r.expired },
    ]),
  );
}

const sorted = (m: Map<string, Record<string, number>>) => [...m.entries()].sort(([a], [b]) => (a < b ? -1 : 1));

/** Writes events as a live collector would: small shuffled batches, some events twice, rollups in between. */
async function writeLikeACollector(database: Database, seed: number, batchSize: number): Promise<void> {
  const random = seeded(seed);
  const events = shuffled([...traffic.events, ...traffic.events.filter(() => random() < 0.2)], random);
  for (let i = 0; i < events.length; i += batchSize) {
    await writeBatch(database, buildBatch(events.slice(i, i + batchSize)));
    if (random() < 0.1) await rollUpStatistics(database);
  }
}

/** The first store's rows after the replay: every other store and writer must end with the very same. */
let reference: string | null = null;

function statisticsContract(get: () => Database) {
  test("shuffled, duplicated events roll up to the tasks' true counts", async () => {
    const database = get();
    await writeLikeACollector(database, 1, 15);
    await rollUpStatistics(database);
    expect(sorted(await storedCounts(database))).toEqual(sorted(truthCounts(traffic.tasks)));
  });

  test("an hour's percentiles, merged from its minutes, are within the histogram's error of the exact ones", async () => {
    const database = get();
    for (const name of NAMES) {
      const [hour] = await taskNameStats(database, { name, from: new Date(HOUR * 1000), to: new Date((HOUR + 3600) * 1000), bucket: 3600 });
      const mine = traffic.tasks.filter((t) => t.name === name);
      const runtimes = mine.flatMap((t) => (t.runtimeS === null ? [] : [t.runtimeS]));
      const waits = mine.flatMap((t) => (t.waitS === null ? [] : [Math.max(0, t.waitS)]));
      const close = (got: number | null | undefined, exact: number | null) => {
        expect(exact).not.toBeNull();
        expect(Math.abs((got ?? Number.NaN) - (exact ?? 0))).toBeLessThanOrEqual((exact ?? 0) * (RELATIVE_ERROR + 1e-6) + 1e-6);
      };
      close(hour?.runtimeP50, exactPercentile(runtimes, 0.5));
      close(hour?.runtimeP95, exactPercentile(runtimes, 0.95));
      close(hour?.runtimeP99, exactPercentile(runtimes, 0.99));
      close(hour?.waitP95, exactPercentile(waits, 0.95));
      expect(hour?.succeeded).toBe(mine.filter((t) => t.outcome === "succeeded").length);
    }
    const names = await taskNameSummaries(database, { from: new Date(HOUR * 1000), to: new Date((HOUR + 3600) * 1000) });
    expect(names.map((n) => n.name).sort()).toEqual([...NAMES].sort());
    expect(names.reduce((n, s) => n + s.total, 0)).toBe(traffic.tasks.length);
  });

  test("GET /api/stats and /api/task-names answer in their documented shapes", async () => {
    const app = createApp({ database: get(), log: logger("test", () => {}), now: () => HOUR + 3600 });
    const json = async (path: string, status = 200) => {
      const res = await app.request(path);
      expect(res.status).toBe(status);
      return res.json();
    };
    const name = NAMES[0] ?? "";
    // Unix seconds and ISO both; a day of hours by default for a day's window.
    const day = StatsAnswer.parse(await json(`/api/stats?name=${encodeURIComponent(name)}&from=${HOUR}&to=2026-11-20T11:00:00Z&bucket=60`));
    expect(day.bucket_s).toBe(60);
    expect(day.buckets.length).toBe(60);
    expect(day.buckets[0]?.start).toBe("2026-11-20T10:00:00.000Z");
    const mine = traffic.tasks.filter((t) => t.name === name);
    expect(day.buckets.reduce((n, b) => n + b.failed, 0)).toBe(mine.filter((t) => t.outcome === "failed").length);
    expect(day.buckets.reduce((n, b) => n + b.expired, 0)).toBe(mine.filter((t) => t.outcome === "expired").length);
    const queue = StatsAnswer.parse(await json(`/api/stats?name=${encodeURIComponent(name)}&queue=reports&bucket=3600`));
    expect(queue.bucket_s).toBe(3600);
    expect(queue.buckets.length).toBe(24);
    expect(queue.buckets.at(-1)?.succeeded).toBe(mine.filter((t) => t.queue === "reports" && t.outcome === "succeeded").length);
    const all = TaskNamesAnswer.parse(await json(`/api/task-names?from=${HOUR}&to=${HOUR + 3600}`));
    expect(all.task_names.map((n) => n.name).sort()).toEqual([...NAMES].sort());
    for (const n of all.task_names) {
      const t = traffic.tasks.filter((x) => x.name === n.name);
      const failed = t.filter((x) => x.outcome === "failed").length;
      expect(n.failure_rate).toBeCloseTo(failed / (failed + t.filter((x) => x.outcome === "succeeded").length), 9);
      expect(n.throughput_per_min).toBeCloseTo(t.length / 60, 9);
    }
    // Bad input: a clear 400, never a crash.
    for (const bad of ["/api/stats?bucket=61", "/api/stats?from=yesterday", `/api/stats?from=${HOUR}&to=${HOUR - 60}`, "/api/stats?from=0&bucket=60", "/api/task-names?to=%00"]) {
      const body = await json(bad, 400);
      expect(typeof body.error).toBe("string");
    }
  });

  test("replaying every event again, in one batch and reversed, changes nothing", async () => {
    const database = get();
    const before = await statsSnapshot(database);
    await writeBatch(database, buildBatch(traffic.events));
    await writeBatch(database, buildBatch([...traffic.events].reverse()));
    expect(await rollUpStatistics(database)).toBeGreaterThan(0);
    expect(await statsSnapshot(database)).toBe(before);
    reference ??= before;
    expect(before).toBe(reference);
    // Nothing marked: a second pass has nothing to do.
    expect(await rollUpStatistics(database)).toBe(0);
  });

  test("statistics outlive their tasks, and are pruned by age", async () => {
    const database = get();
    const before = await statsSnapshot(database);
    await rollUpStatistics(database);
    await database.rows(sql`delete from events`);
    await database.rows(sql`delete from tasks`);
    expect(await statsSnapshot(database)).toBe(before);
    // A very late replay of one pruned task: with its minutes frozen (as
    // retention has deleted their other tasks), the statistics stay whole.
    const late = traffic.tasks[0]?.id;
    await writeBatch(database, buildBatch(traffic.events.filter((e) => e.uuid === late)));
    await rollUpStatistics(database, { frozenBefore: new Date((HOUR + 3600) * 1000) });
    expect(await statsSnapshot(database)).toBe(before);
    const half = new Date((HOUR + 25 * 60) * 1000);
    const pruned = await pruneStatistics(database, half);
    expect(pruned).toBeGreaterThan(0);
    const left = await database.rows<{ n: number; oldest: number }>(sql`select count(*)::int as n, extract(epoch from min(minute))::float8 as oldest from task_stats`);
    expect(Number(left[0]?.oldest)).toBeGreaterThanOrEqual(half.getTime() / 1000);
    expect(Number(left[0]?.n)).toBeGreaterThan(0);
  });
}

describe("statistics on PGlite", () => {
  let store: TestStore;
  beforeAll(async () => {
    store = await emptyStore("statistics");
  });
  afterAll(async () => {
    await store?.remove();
  });
  statisticsContract(() => store.database);
});

describe("statistics on PostgreSQL", () => {
  let server: PostgresServer;
  let database: Database;
  beforeAll(async () => {
    server = await startPostgres();
    database = await openDatabase({ databaseUrl: server.url });
    await migrate(database);
  });
  afterAll(async () => {
    await database?.close();
    await server?.stop();
  });
  statisticsContract(() => database);

  test("two collectors writing the same events at once, with rollups running, count each task once", async () => {
    const url = await createDatabase(server.url, "stats_twins");
    const a = await openDatabase({ databaseUrl: url });
    const b = await openDatabase({ databaseUrl: url });
    await migrate(a);
    let writing = true;
    const rollups = (async () => {
      while (writing) {
        await rollUpStatistics(b);
        await Bun.sleep(5);
      }
    })();
    await Promise.all([writeLikeACollector(a, 2, 11), writeLikeACollector(b, 3, 7)]);
    writing = false;
    await rollups;
    await rollUpStatistics(a);
    expect(sorted(await storedCounts(a))).toEqual(sorted(truthCounts(traffic.tasks)));
    // The same rows, histograms included, as a single writer stores.
    expect(await statsSnapshot(a)).toBe(reference ?? "");
    await Promise.all([a.close(), b.close()]);
  });

  test("a minute still going on is rolled up once it is over, not before", async () => {
    const database = await openDatabase({ databaseUrl: await createDatabase(server.url, "stats_settled") });
    await migrate(database);
    const now = statsTraffic({ seed: 21, tasks: 40, start: HOUR + 7200, spanS: 20, names: ["app.tasks.now"] });
    await writeBatch(database, buildBatch(now.events));
    const first = Math.min(...now.tasks.map((t) => t.at));
    const last = Math.max(...now.tasks.map((t) => t.at));
    // At the moment the first of them finished, no minute of theirs is over.
    expect(await rollUpStatistics(database, { settledBefore: new Date(first * 1000) })).toBe(0);
    expect((await storedCounts(database)).size).toBe(0);
    // Past the last one's minute, every bucket is rebuilt: the tasks' counts.
    expect(await rollUpStatistics(database, { settledBefore: new Date((last + 120) * 1000) })).toBeGreaterThan(0);
    expect(sorted(await storedCounts(database))).toEqual(sorted(truthCounts(now.tasks)));
    expect(await rollUpStatistics(database)).toBe(0);
    await database.close();
  });
});
