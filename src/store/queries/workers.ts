import { and, asc, eq } from "drizzle-orm";
import { workerLiveness } from "../../state/worker.ts";
import type { Database } from "../database.ts";
import { unixSeconds } from "../schema/columns.ts";
import { workers } from "../schema/index.ts";

export type WorkerRow = typeof workers.$inferSelect;

/** Every worker, or one broker's. */
export async function listWorkers(database: Database, broker?: string): Promise<WorkerRow[]> {
  return database.db
    .select()
    .from(workers)
    .where(broker ? eq(workers.broker, broker) : undefined)
    .orderBy(asc(workers.hostname), asc(workers.broker))
    .limit(5000);
}

/** A worker by node name; the same name on two brokers: the given broker's, else the most recently alive. */
export async function getWorker(database: Database, hostname: string, broker?: string): Promise<WorkerRow | null> {
  const rows = await database.db
    .select()
    .from(workers)
    .where(and(eq(workers.hostname, hostname), broker ? eq(workers.broker, broker) : undefined))
    .limit(10);
  rows.sort((a, b) => (b.lastHeartbeatAt?.getTime() ?? 0) - (a.lastHeartbeatAt?.getTime() ?? 0));
  return rows[0] ?? null;
}

/** Celery's heartbeat rule applied to a stored worker at `now` (unix s). */
export function livenessOf(w: WorkerRow, now: number) {
  return workerLiveness({ lastHeartbeatAt: unixSeconds(w.lastHeartbeatAt), offlineAt: unixSeconds(w.offlineAt), freq: w.freq }, now);
}

/** `{id, name}` of the tasks in a `reserved`/`active` reply (worker-supplied: bounded, strings only). */
export function heldTasks(list: unknown[] | null): { id: string; name: string | null }[] {
  if (!Array.isArray(list)) return [];
  return list.slice(0, 200).flatMap((t) => {
    const r = t as { id?: unknown; name?: unknown };
    return typeof r?.id === "string" ? [{ id: r.id.slice(0, 255), name: typeof r.name === "string" ? r.name.slice(0, 255) : null }] : [];
  });
}
