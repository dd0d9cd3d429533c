/**
 * Periodic tasks (Celery Beat) without configuration: a task name that keeps
 * arriving at a steady interval becomes a learned schedule; one that stops
 * arriving is overdue (checks/beat-missed.ts). Irregular traffic never
 * qualifies. Pure functions.
 */
import { type Cron, nextFire, parseCron } from "./cron.ts";

/** Arrivals needed before an interval is trusted. */
export const LEARN_MIN_ARRIVALS = 5;
/** Largest spread of the intervals (coefficient of variation) still called steady. */
export const LEARN_MAX_CV = 0.15;
/** Beat does not go below a second; shorter gaps are bursts, not schedules. */
export const LEARN_MIN_INTERVAL_S = 1;

export interface Schedule {
  name: string;
  task: string;
  /** Every so many seconds; or, for declared ones, a cron expression (read in BEAT_TIMEZONE) instead. */
  expectedIntervalS: number | null;
  cron?: string | null;
  /** `configured`: BEAT_SCHEDULES; `api`: declared through POST /api/schedules; `learned`: from arrivals. */
  source: "configured" | "api" | "learned";
  lastSeenAt: number | null;
}

/** The steady interval of these arrival times (unix s, any order), or null if they are not steady. */
export function learnInterval(arrivals: readonly number[]): number | null {
  if (arrivals.length < LEARN_MIN_ARRIVALS) return null;
  const sorted = [...arrivals].sort((a, b) => a - b);
  const gaps: number[] = [];
  for (let i = 1; i < sorted.length; i++) gaps.push((sorted[i] as number) - (sorted[i - 1] as number));
  const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
  if (mean < LEARN_MIN_INTERVAL_S) return null;
  const sd = Math.sqrt(gaps.reduce((a, g) => a + (g - mean) ** 2, 0) / gaps.length);
  return sd / mean <= LEARN_MAX_CV ? mean : null;
}

export type ScheduleStatus = "ok" | "late" | "missed";

/** Parsed cron expressions, by timezone and text. */
const parsed = new Map<string, Cron>();
function cronOf(text: string, timezone: string): Cron {
  const key = `${timezone} ${text}`;
  let c = parsed.get(key);
  if (!c) {
    c = parseCron(text, timezone);
    if (parsed.size < 1000) parsed.set(key, c);
  }
  return c;
}

/**
 * When the run after `lastSeenAt` is due, and the length of one period there.
 * A cron schedule is read in `timezone` (BEAT_TIMEZONE).
 */
export function due(s: Schedule, lastSeenAt: number, timezone = "UTC"): { nextDueAt: number; periodS: number } | null {
  if (s.cron) {
    const c = cronOf(s.cron, timezone);
    const next = nextFire(c, lastSeenAt);
    const after = next === null ? null : nextFire(c, next);
    return next === null || after === null ? null : { nextDueAt: next, periodS: after - next };
  }
  if (!s.expectedIntervalS) return null;
  return { nextDueAt: lastSeenAt + s.expectedIntervalS, periodS: s.expectedIntervalS };
}

/**
 * `late` once the next arrival is past due by the tolerance (a fraction of
 * the period), `missed` once a whole period beyond that has gone by too.
 */
export function scheduleStatus(s: Schedule, now: number, tolerance: number, timezone = "UTC"): { status: ScheduleStatus; nextDueAt: number | null } {
  if (s.lastSeenAt === null) return { status: "ok", nextDueAt: null };
  const d = due(s, s.lastSeenAt, timezone);
  if (!d) return { status: "ok", nextDueAt: null };
  const lateAt = d.nextDueAt + Math.max(1, d.periodS * tolerance);
  if (now < lateAt) return { status: "ok", nextDueAt: d.nextDueAt };
  return { status: now < lateAt + d.periodS ? "late" : "missed", nextDueAt: d.nextDueAt };
}

/**
 * `BEAT_SCHEDULES`: entries separated by `;`, each `name=task@seconds` or
 * `name=task@cron(minute hour day month weekday)`, read in BEAT_TIMEZONE
 * (checked there; the expression alone is checked here).
 */
export function parseDeclaredSchedules(text: string): Schedule[] | string {
  const out: Schedule[] = [];
  for (const part of text.split(";").map((p) => p.trim()).filter(Boolean)) {
    const m = /^([^=]+)=([^@]+)@(?:(\d+(?:\.\d+)?)|cron\(([^)]*)\))$/.exec(part);
    if (!m) return `expected name=task@seconds or name=task@cron(expression), got ${JSON.stringify(part)}`;
    const name = (m[1] as string).trim();
    const task = (m[2] as string).trim();
    if (m[4] !== undefined) {
      try {
        parseCron(m[4]);
      } catch (e) {
        return `${name}: ${(e as Error).message}`;
      }
      out.push({ name, task, expectedIntervalS: null, cron: m[4].trim(), source: "configured", lastSeenAt: null });
      continue;
    }
    const interval = Number(m[3]);
    if (!(interval > 0)) return `interval must be positive in ${JSON.stringify(part)}`;
    out.push({ name, task, expectedIntervalS: interval, cron: null, source: "configured", lastSeenAt: null });
  }
  return out;
}
