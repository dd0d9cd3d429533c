/**
 * The audit of control actions, and the links between a retried task and
 * its retry (schema/audit.ts).
 */
import { and, desc, eq, gte, inArray, lt, lte } from "drizzle-orm";
import type { Database } from "../database.ts";
import { auditLog, taskRetries, tasks } from "../schema/index.ts";

export type AuditRow = typeof auditLog.$inferSelect;
export type AuditEntry = Omit<AuditRow, "id">;

export async function recordAudit(database: Database, entry: AuditEntry): Promise<void> {
  await database.db.insert(auditLog).values(entry);
}

/** Newest first, paged by id. */
export async function listAudit(database: Database, f: { limit: number; beforeId?: number; action?: string }): Promise<AuditRow[]> {
  const where = [];
  if (f.beforeId !== undefined) where.push(lt(auditLog.id, f.beforeId));
  if (f.action) where.push(eq(auditLog.action, f.action));
  return database.db
    .select()
    .from(auditLog)
    .where(where.length ? and(...where) : undefined)
    .orderBy(desc(auditLog.id))
    .limit(Math.min(f.limit, 500));
}

export async function recordRetry(database: Database, r: { taskId: string; retryOf: string; at: Date; actor: string }): Promise<void> {
  await database.db.insert(taskRetries).values(r).onConflictDoNothing();
}

/** What a task was retried from, and the retries sent of it, oldest first. */
export async function retryLinks(database: Database, taskId: string): Promise<{ retryOf: string | null; retriedAs: string[] }> {
  const [of, as] = await Promise.all([
    database.db.select({ retryOf: taskRetries.retryOf }).from(taskRetries).where(eq(taskRetries.taskId, taskId)).limit(1),
    database.db.select({ taskId: taskRetries.taskId }).from(taskRetries).where(eq(taskRetries.retryOf, taskId)).orderBy(taskRetries.at).limit(100),
  ]);
  return { retryOf: of[0]?.retryOf ?? null, retriedAs: as.map((r) => r.taskId) };
}

/** The ids of a task name's failures first seen in a window, newest first: what a bulk retry sends again. */
export async function failuresOf(database: Database, name: string, from: Date, to: Date, limit: number): Promise<string[]> {
  const rows = await database.db
    .select({ id: tasks.id })
    .from(tasks)
    .where(and(eq(tasks.name, name), eq(tasks.state, "FAILURE"), gte(tasks.firstSeenAt, from), lte(tasks.firstSeenAt, to)))
    .orderBy(desc(tasks.firstSeenAt))
    .limit(limit);
  return rows.map((r) => r.id);
}

/** Which of these tasks were retried already (a bulk retry skips them). */
export async function alreadyRetried(database: Database, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const rows = await database.db.selectDistinct({ retryOf: taskRetries.retryOf }).from(taskRetries).where(inArray(taskRetries.retryOf, [...ids]));
  return new Set(rows.map((r) => r.retryOf));
}
