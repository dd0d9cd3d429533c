/**
 * Periodic tasks (Celery Beat) without configuration: a task name that keeps
 * arriving at a steady interval becomes a learned schedule; one that stops
 * arriving is overdue. Irregular traffic never qualifies. Pure functions.
 */
import type { AlertSpec } from "../alerts/kinds.ts";

/** Arrivals needed before an interval is trusted. */
export const LEARN_MIN_ARRIVALS = 5;
/** Largest spread of the intervals (coefficient of variation) still called steady. */
export const LEARN_MAX_CV = 0.15;
/** Beat does not go below a second; shorter gaps are bursts, not schedules. */
export const LEARN_MIN_INTERVAL_S = 1;

export interface Schedule {
  name: string;
  task: string;
  expectedIntervalS: number;
  source: "configured" | "learned";
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

/**
 * `late` once the next arrival is past due by the tolerance (a fraction of
 * the interval), `missed` once a whole interval beyond that has gone by too.
 */
export function scheduleStatus(s: Schedule, now: number, tolerance: number): { status: ScheduleStatus; nextDueAt: number | null } {
  if (s.lastSeenAt === null) return { status: "ok", nextDueAt: null };
  const nextDueAt = s.lastSeenAt + s.expectedIntervalS;
  const lateAt = nextDueAt + Math.max(1, s.expectedIntervalS * tolerance);
  if (now < lateAt) return { status: "ok", nextDueAt };
  return { status: now < lateAt + s.expectedIntervalS ? "late" : "missed", nextDueAt };
}

export function detectBeatMissed(schedules: readonly Schedule[], now: number, tolerance: number): AlertSpec[] {
  const out: AlertSpec[] = [];
  for (const s of schedules) {
    const { status, nextDueAt } = scheduleStatus(s, now, tolerance);
    if (status === "ok" || s.lastSeenAt === null) continue;
    const overdue = now - (nextDueAt as number);
    out.push({
      kind: "beat_missed",
      subject: s.name,
      summary: `Periodic task ${s.task} (every ${fmtInterval(s.expectedIntervalS)}, ${s.source}) last arrived ${Math.round(now - s.lastSeenAt)} s ago and is ${Math.round(overdue)} s overdue${status === "missed" ? ", a run missed" : ""}: is Celery Beat running?`,
      details: {
        schedule: s.name,
        task: s.task,
        expected_interval_s: s.expectedIntervalS,
        source: s.source,
        last_seen_at: new Date(s.lastSeenAt * 1000).toISOString(),
        next_due_at: new Date((nextDueAt as number) * 1000).toISOString(),
        status,
        missed_runs: Math.floor(overdue / s.expectedIntervalS),
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

/** `BEAT_SCHEDULES`: `name=task@seconds` entries separated by `;` or `,`. */
export function parseDeclaredSchedules(text: string): Schedule[] | string {
  const out: Schedule[] = [];
  for (const part of text.split(/[;,]/).map((p) => p.trim()).filter(Boolean)) {
    const m = /^([^=]+)=([^@]+)@(\d+(?:\.\d+)?)$/.exec(part);
    if (!m) return `expected name=task@seconds, got ${JSON.stringify(part)}`;
    const interval = Number(m[3]);
    if (!(interval > 0)) return `interval must be positive in ${JSON.stringify(part)}`;
    out.push({ name: (m[1] as string).trim(), task: (m[2] as string).trim(), expectedIntervalS: interval, source: "configured", lastSeenAt: null });
  }
  return out;
}
