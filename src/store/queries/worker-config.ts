/** Workers' configuration readings, their memory history and findings; each read bounded. */
import { and, asc, desc, eq, inArray, lt, sql } from "drizzle-orm";
import type { WorkerSettings } from "../../celery/worker-config.ts";
import type { ConfigFinding, NameRuntime } from "../../detect/config-findings.ts";
import type { Database } from "../database.ts";
import { tasks, workerConfigs, workerMemorySamples } from "../schema/index.ts";

export type WorkerConfigRow = typeof workerConfigs.$inferSelect;

/** Memory samples kept per worker: two days at the default 10-minute reading. */
export const MEMORY_SAMPLES_KEPT = 288;
/** Samples older than this go, whoever they belong to (workers long gone). */
const MEMORY_SAMPLES_MAX_AGE_S = 30 * 86_400;

/** Stores a reading: the latest configuration, and its maxrss as one more point of the memory history. */
export async function saveWorkerConfig(database: Database, hostname: string, config: WorkerSettings, workerOnlineAt: Date | null, at: Date) {
  await database.db
    .insert(workerConfigs)
    .values({ hostname, readAt: at, workerOnlineAt, config })
    .onConflictDoUpdate({ target: workerConfigs.hostname, set: { readAt: at, workerOnlineAt, config } });
  if (config.maxrss_kb === null) return;
  await database.db.insert(workerMemorySamples).values({ hostname, at, maxrssKb: config.maxrss_kb }).onConflictDoNothing();
  // Bounded: the newest MEMORY_SAMPLES_KEPT of this worker, none older than a month.
  await database.rows(sql`
    delete from worker_memory_samples where hostname = ${hostname} and at < (
      select at from worker_memory_samples where hostname = ${hostname} order by at desc offset ${MEMORY_SAMPLES_KEPT - 1} limit 1)`);
  await database.db.delete(workerMemorySamples).where(lt(workerMemorySamples.at, new Date(at.getTime() - MEMORY_SAMPLES_MAX_AGE_S * 1000)));
}

export async function listWorkerConfigs(database: Database): Promise<WorkerConfigRow[]> {
  return database.db.select().from(workerConfigs).orderBy(asc(workerConfigs.hostname)).limit(5000);
}

export async function getWorkerConfig(database: Database, hostname: string): Promise<WorkerConfigRow | null> {
  const rows = await database.db.select().from(workerConfigs).where(eq(workerConfigs.hostname, hostname)).limit(1);
  return rows[0] ?? null;
}

/** The worker's memory history, oldest first. */
export async function memoryHistory(database: Database, hostname: string): Promise<{ at: Date; maxrssKb: number }[]> {
  const rows = await database.db
    .select({ at: workerMemorySamples.at, maxrssKb: workerMemorySamples.maxrssKb })
    .from(workerMemorySamples)
    .where(eq(workerMemorySamples.hostname, hostname))
    .orderBy(desc(workerMemorySamples.at))
    .limit(MEMORY_SAMPLES_KEPT);
  return rows.reverse();
}

export async function saveConfigFindings(database: Database, hostname: string, findings: ConfigFinding[], at: Date) {
  await database.db.update(workerConfigs).set({ findings, findingsAt: at }).where(and(eq(workerConfigs.hostname, hostname)));
}

/** The visibility timeout each worker reports (`broker_transport_options`), by hostname. */
export async function workerVisibilityTimeouts(database: Database): Promise<Map<string, number>> {
  const rows = await database.rows<{ hostname: string; seconds: number }>(sql`
    select hostname, (config->>'visibility_timeout_s')::float8 as seconds from worker_configs
    where jsonb_typeof(config->'visibility_timeout_s') = 'number' limit 5000`);
  return new Map(rows.filter((r) => Number(r.seconds) > 0).map((r) => [r.hostname, Number(r.seconds)]));
}

/** The worker each of these tasks was last at. */
export async function taskWorkers(database: Database, ids: readonly string[]): Promise<Map<string, string | null>> {
  if (ids.length === 0) return new Map();
  const rows = await database.db.select({ id: tasks.id, worker: tasks.worker }).from(tasks).where(inArray(tasks.id, [...ids]));
  return new Map(rows.map((r) => [r.id, r.worker]));
}

/** Tasks of a worker looked at for runtimes: its latest, by tasks_worker_recent_idx. */
const RECENT_TASKS = 1000;

/**
 * p99 runtime per task name over the worker's latest RECENT_TASKS tasks:
 * one index range scan, however many tasks the store holds.
 */
export async function workerRuntimes(database: Database, hostname: string): Promise<NameRuntime[]> {
  const rows = await database.rows<{ name: string; p99: number; runs: number }>(sql`
    select name, percentile_cont(0.99) within group (order by runtime) as p99, count(*)::int as runs
    from (select name, runtime from tasks where worker = ${hostname} order by first_seen_at desc, id desc limit ${RECENT_TASKS}) recent
    where runtime is not null and name is not null
    group by name
    limit 500`);
  return rows.map((r) => ({ name: r.name, p99S: Number(r.p99), runs: Number(r.runs) }));
}
