/**
 * beat_missed: a periodic task — declared (BEAT_SCHEDULES, or through the
 * API) or learned from steady arrivals (schedules.ts) — is overdue: is
 * Celery Beat running? Each pass also keeps the schedules table current for
 * the schedules page.
 */
import type { AlertSpec } from "../../alerts/kinds.ts";
import { listSchedules, upsertSchedule } from "../../store/queries/detect.ts";
import type { Check } from "../pass.ts";
import { due, learnInterval, type Schedule, scheduleStatus } from "../schedules.ts";

/** Overdue schedules; cron ones are read in `timezone` (BEAT_TIMEZONE). */
export function detectBeatMissed(schedules: readonly Schedule[], now: number, tolerance: number, timezone = "UTC"): AlertSpec[] {
  const out: AlertSpec[] = [];
  for (const s of schedules) {
    const { status } = scheduleStatus(s, now, tolerance, timezone);
    const d = s.lastSeenAt === null ? null : due(s, s.lastSeenAt, timezone);
    if (status === "ok" || s.lastSeenAt === null || d === null) continue;
    const overdue = now - d.nextDueAt;
    const every = s.cron ? `cron ${s.cron} ${timezone}` : `every ${fmtInterval(d.periodS)}`;
    out.push({
      kind: "beat_missed",
      subject: s.name,
      summary: `Periodic task ${s.task} (${every}, ${s.source}) last arrived ${Math.round(now - s.lastSeenAt)} s ago and is ${Math.round(overdue)} s overdue${status === "missed" ? ", a run missed" : ""}: is Celery Beat running?`,
      details: {
        schedule: s.name,
        task: s.task,
        expected_interval_s: s.expectedIntervalS,
        cron: s.cron ?? null,
        ...(s.cron ? { timezone } : {}),
        source: s.source,
        last_seen_at: new Date(s.lastSeenAt * 1000).toISOString(),
        next_due_at: new Date(d.nextDueAt * 1000).toISOString(),
        status,
        missed_runs: Math.floor(overdue / d.periodS) + 1,
      },
    });
  }
  return out;
}

function fmtInterval(s: number): string {
  if (s < 120) return `${Math.round(s * 10) / 10} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

export const checkBeatMissed: Check = async (pass) => {
  const { database, config, now } = pass;
  const arrivals = pass.trackers.arrivals;
  const stored = new Map((await listSchedules(database)).map((s) => [s.name, s]));
  const toS = (d: Date | null | undefined) => (d ? d.getTime() / 1000 : 0);
  const schedules: Schedule[] = [];
  // Declared: in configuration, and through the API (stored; configuration wins a name).
  const configured = new Set(config.declaredSchedules.map((d) => d.name));
  // Declared schedules name a task, not a broker: the first broker's detector watches them.
  const declared: Schedule[] = !pass.primary ? [] : [
    ...config.declaredSchedules,
    ...[...stored.values()]
      .filter((r) => r.source === "api" && !configured.has(r.name))
      .map((r) => ({ name: r.name, task: r.task, expectedIntervalS: r.expectedIntervalS, cron: r.cron, source: "api" as const, lastSeenAt: null })),
  ];
  for (const d of declared) {
    const seen = arrivals.get(d.task)?.at(-1) ?? null;
    schedules.push({ ...d, lastSeenAt: Math.max(seen ?? 0, toS(stored.get(d.name)?.lastSeenAt)) || null });
  }
  // Learned: a task name arriving at a steady interval.
  const declaredTasks = new Set([...config.declaredSchedules, ...declared].map((d) => d.task));
  for (const [name, times] of arrivals) {
    if (declaredTasks.has(name)) continue;
    const interval = learnInterval(times);
    const prev = stored.get(name);
    if (interval === null && !prev) continue;
    schedules.push({
      name,
      task: name,
      expectedIntervalS: interval ?? prev?.expectedIntervalS ?? null,
      source: "learned",
      lastSeenAt: Math.max(times.at(-1) ?? 0, toS(prev?.lastSeenAt)) || null,
    });
  }
  // Learned schedules from before a restart keep being watched.
  for (const [name, row] of stored) {
    if (schedules.some((s) => s.name === name) || row.expectedIntervalS === null) continue;
    if (row.source !== "learned") continue; // no longer configured, or deleted
    if (row.broker !== pass.brokerName) continue; // another broker's detector watches it
    schedules.push({
      name,
      task: row.task,
      expectedIntervalS: row.expectedIntervalS,
      source: "learned",
      lastSeenAt: row.lastSeenAt ? row.lastSeenAt.getTime() / 1000 : null,
    });
  }
  const ms = (d: Date | null) => (d ? d.getTime() : null);
  for (const s of schedules) {
    const { status, nextDueAt } = scheduleStatus(s, now, config.beatTolerance, config.beatTimezone);
    const prev = stored.get(s.name);
    // Written only when something a reader sees changed, not every pass.
    if (
      prev &&
      prev.status === status &&
      prev.expectedIntervalS === s.expectedIntervalS &&
      prev.cron === (s.cron ?? null) &&
      prev.source === s.source &&
      ms(prev.lastSeenAt) === ms(s.lastSeenAt ? new Date(s.lastSeenAt * 1000) : null) &&
      ms(prev.nextDueAt) === ms(nextDueAt ? new Date(nextDueAt * 1000) : null)
    ) {
      continue;
    }
    await upsertSchedule(database, {
      name: s.name,
      task: s.task,
      expectedIntervalS: s.expectedIntervalS,
      cron: s.cron ?? null,
      source: s.source,
      lastSeenAt: s.lastSeenAt ? new Date(s.lastSeenAt * 1000) : null,
      nextDueAt: nextDueAt ? new Date(nextDueAt * 1000) : null,
      status,
      updatedAt: new Date(now * 1000),
      broker: pass.brokerName,
    });
  }
  await pass.sync("beat_missed", detectBeatMissed(schedules, now, config.beatTolerance, config.beatTimezone));
};
