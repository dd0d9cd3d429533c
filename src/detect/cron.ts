/**
 * Five-field cron expressions (minute hour day-of-month month day-of-week),
 * as Celery's `crontab()` schedules are usually written, evaluated in UTC
 * (Celery Beat's default timezone). `*`, lists, ranges and steps; day-of-week
 * 0 or 7 is Sunday. When both day fields are restricted, either may match
 * (cron's rule).
 */
export interface Cron {
  minutes: Set<number>;
  hours: Set<number>;
  days: Set<number>;
  months: Set<number>;
  weekdays: Set<number>;
  anyDay: boolean;
  anyWeekday: boolean;
}

function field(text: string, min: number, max: number, name: string): Set<number> {
  const out = new Set<number>();
  for (const part of text.split(",")) {
    const m = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part);
    if (!m) throw new Error(`cron ${name}: cannot read ${JSON.stringify(part)}`);
    const lo = m[1] === "*" ? min : Number(m[2]);
    const hi = m[1] === "*" ? max : m[3] !== undefined ? Number(m[3]) : m[4] !== undefined ? max : lo;
    const step = m[4] !== undefined ? Number(m[4]) : 1;
    if (lo < min || hi > max || lo > hi || step < 1) throw new Error(`cron ${name}: ${JSON.stringify(part)} is outside ${min}-${max}`);
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return out;
}

export function parseCron(text: string): Cron {
  const parts = text.trim().split(/\s+/);
  if (parts.length !== 5) throw new Error(`cron: expected 5 fields (minute hour day month weekday), got ${parts.length}`);
  const [mi, h, d, mo, wd] = parts as [string, string, string, string, string];
  const weekdays = field(wd, 0, 7, "weekday");
  if (weekdays.has(7)) weekdays.add(0);
  return {
    minutes: field(mi, 0, 59, "minute"),
    hours: field(h, 0, 23, "hour"),
    days: field(d, 1, 31, "day"),
    months: field(mo, 1, 12, "month"),
    weekdays,
    anyDay: d === "*",
    anyWeekday: wd === "*",
  };
}

function dayMatches(c: Cron, date: Date): boolean {
  if (!c.months.has(date.getUTCMonth() + 1)) return false;
  const dom = c.days.has(date.getUTCDate());
  const dow = c.weekdays.has(date.getUTCDay());
  if (c.anyDay && c.anyWeekday) return true;
  if (c.anyDay) return dow;
  if (c.anyWeekday) return dom;
  return dom || dow;
}

/** The first firing strictly after `after` (unix s), within five years; null if none. */
export function nextFire(c: Cron, after: number): number | null {
  const start = new Date(Math.floor(after / 60) * 60_000 + 60_000);
  const day = new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), start.getUTCDate()));
  const hours = [...c.hours].sort((a, b) => a - b);
  const minutes = [...c.minutes].sort((a, b) => a - b);
  for (let i = 0; i < 366 * 5; i++, day.setUTCDate(day.getUTCDate() + 1)) {
    if (!dayMatches(c, day)) continue;
    for (const h of hours) {
      for (const m of minutes) {
        const t = Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate(), h, m);
        if (t >= start.getTime()) return t / 1000;
      }
    }
  }
  return null;
}
