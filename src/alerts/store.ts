/**
 * The alert lifecycle in the store. Detectors say which conditions hold now
 * (`AlertSpec`s); `syncAlerts` opens what is new (once: the partial unique
 * index on open (kind, subject) holds even with several collectors), updates
 * what changed, and resolves what no longer holds. Resolved alerts are kept.
 */
import { and, count, desc, eq, inArray, lt } from "drizzle-orm";
import type { Database } from "../store/database.ts";
import { alerts } from "../store/schema/alerts.ts";
import { DEFAULT_BROKER } from "../store/schema/columns.ts";
import { ALERT_KINDS, type Alert, type AlertKind, type AlertSpec } from "./kinds.ts";

export interface AlertChanges {
  opened: Alert[];
  updated: Alert[];
  resolved: Alert[];
}

/**
 * Makes the open alerts of `kind` match `holding`. With `resolveMissing`
 * false, open alerts not in `holding` are left alone (for kinds whose
 * condition is checked only for some subjects on a pass); `onlySubjects`
 * resolves only among those subjects; `leaveOpen` names subjects whose
 * condition cannot be judged on this pass, whose open alert is not resolved.
 */
export async function syncAlerts(
  database: Database,
  kind: AlertKind,
  holding: readonly AlertSpec[],
  now: Date,
  opts: { resolveMissing?: boolean; onlySubjects?: readonly string[]; leaveOpen?: readonly string[]; broker?: string } = {},
): Promise<AlertChanges> {
  const changes: AlertChanges = { opened: [], updated: [], resolved: [] };
  // Each broker's detector makes its own broker's alerts match, never another's.
  const broker = opts.broker ?? DEFAULT_BROKER;
  const open = (await database.db
    .select()
    .from(alerts)
    .where(and(eq(alerts.kind, kind), eq(alerts.status, "open"), eq(alerts.broker, broker)))
    .limit(10_000)) as Alert[];
  const openBySubject = new Map(open.map((a) => [a.subject, a]));
  const wanted = new Map(holding.map((h) => [h.subject, h]));

  // New alerts go in with one statement, so a reader (the Slack bot) sees
  // the alerts a pass opened together all at once, never half of them.
  const fresh = [...wanted.values()].filter((spec) => !openBySubject.has(spec.subject));
  if (fresh.length) {
    const rows = (await database.db
      .insert(alerts)
      .values(
        fresh.map((spec) => ({
          kind,
          broker,
          subject: spec.subject,
          severity: spec.severity ?? ALERT_KINDS[kind].severity,
          status: "open",
          summary: spec.summary,
          details: spec.details,
          openedAt: now,
          updatedAt: now,
        })),
      )
      .onConflictDoNothing()
      .returning()) as Alert[];
    changes.opened.push(...rows);
  }
  for (const spec of wanted.values()) {
    const existing = openBySubject.get(spec.subject);
    const severity = spec.severity ?? ALERT_KINDS[kind].severity;
    if (existing && (existing.summary !== spec.summary || existing.severity !== severity || canonicalJson(existing.details) !== canonicalJson(spec.details))) {
      const rows = (await database.db
        .update(alerts)
        .set({ summary: spec.summary, details: spec.details, severity, updatedAt: now })
        .where(and(eq(alerts.id, existing.id), eq(alerts.status, "open")))
        .returning()) as Alert[];
      if (rows[0]) changes.updated.push(rows[0]);
    }
  }
  if (opts.resolveMissing !== false) {
    const scope = opts.onlySubjects ? new Set(opts.onlySubjects) : null;
    const kept = new Set(opts.leaveOpen ?? []);
    const gone = open.filter((a) => !wanted.has(a.subject) && (!scope || scope.has(a.subject)) && !kept.has(a.subject));
    if (gone.length) {
      const rows = (await database.db
        .update(alerts)
        .set({ status: "resolved", resolvedAt: now, updatedAt: now })
        .where(and(inArray(alerts.id, gone.map((a) => a.id)), eq(alerts.status, "open")))
        .returning()) as Alert[];
      changes.resolved.push(...rows);
    }
  }
  return changes;
}

/**
 * JSON with every object's keys in order. PostgreSQL's jsonb hands keys back
 * in its own order (shortest first), so comparing plain JSON.stringify output
 * would call every open alert changed on every pass and write it again.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

/**
 * Resolves one open alert (for kinds that clear on their own terms), with its
 * final summary and details when given.
 */
export async function resolveAlert(
  database: Database,
  id: number,
  now: Date,
  final: { summary?: string; details?: Record<string, unknown> } = {},
): Promise<Alert | null> {
  const rows = (await database.db
    .update(alerts)
    .set({
      status: "resolved",
      resolvedAt: now,
      updatedAt: now,
      ...(final.summary !== undefined ? { summary: final.summary } : {}),
      ...(final.details ? { details: final.details } : {}),
    })
    .where(and(eq(alerts.id, id), eq(alerts.status, "open")))
    .returning()) as Alert[];
  return rows[0] ?? null;
}

export async function openAlerts(database: Database, kind: AlertKind, broker?: string): Promise<Alert[]> {
  return (await database.db
    .select()
    .from(alerts)
    .where(and(eq(alerts.kind, kind), eq(alerts.status, "open"), broker ? eq(alerts.broker, broker) : undefined))
    .limit(10_000)) as Alert[];
}

export async function listAlerts(
  database: Database,
  f: { status?: "open" | "resolved" | "all"; kind?: AlertKind; subject?: string; broker?: string; limit?: number; beforeId?: number } = {},
): Promise<Alert[]> {
  const where = [];
  if (f.beforeId !== undefined) where.push(lt(alerts.id, f.beforeId));
  if (f.status && f.status !== "all") where.push(eq(alerts.status, f.status));
  if (f.kind) where.push(eq(alerts.kind, f.kind));
  if (f.subject) where.push(eq(alerts.subject, f.subject));
  if (f.broker) where.push(eq(alerts.broker, f.broker));
  return (await database.db
    .select()
    .from(alerts)
    .where(where.length ? and(...where) : undefined)
    // Newest first; ids are handed out in opening order.
    .orderBy(desc(alerts.id))
    .limit(Math.min(f.limit ?? 50, 500))) as Alert[];
}

/** Alerts whose subject is this task (task_lost, task_stalled, duplicate_execution, …). */
export async function alertsForSubject(database: Database, subject: string, broker?: string): Promise<Alert[]> {
  return listAlerts(database, { status: "all", subject, broker, limit: 100 });
}


/** Of these subjects, those that ever had an alert of this kind (open or resolved). */
export async function subjectsWithAlert(database: Database, kind: AlertKind, subjects: readonly string[]): Promise<Set<string>> {
  if (subjects.length === 0) return new Set();
  const rows = await database.db
    .selectDistinct({ subject: alerts.subject })
    .from(alerts)
    .where(and(eq(alerts.kind, kind), inArray(alerts.subject, [...subjects])));
  return new Set(rows.map((r) => r.subject));
}

/** How many alerts are open, by kind (kinds with none are left out): /metrics' crisper_alerts_open. */
export async function countOpenAlerts(database: Database): Promise<{ kind: string; open: number }[]> {
  return database.db
    .select({ kind: alerts.kind, open: count() })
    .from(alerts)
    .where(eq(alerts.status, "open"))
    .groupBy(alerts.kind);
}
