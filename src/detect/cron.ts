/**
 * Celery's `crontab()` schedules, written as five cron fields (minute hour
 * day-of-month month day-of-week), read by croner. Two points where Celery
 * is not cron, and Crisper follows Celery:
 *  - When both day fields are restricted, a day must match BOTH (Celery's
 *    crontab checks day_of_month and day_of_week together); cron's rule is
 *    either. `0 22 1-7 * 6` is "the first Saturday of the month", not "the
 *    first seven days and every Saturday".
 *  - Times are in Beat's timezone (Celery's `timezone` setting, UTC unless
 *    set): BEAT_TIMEZONE.
 * Names work as in Celery (`mon-fri`, `jan`); day-of-week 0 or 7 is Sunday.
 */
import { Cron as Croner } from "croner";

export interface Cron {
  /** The expression as written. */
  text: string;
  timezone: string;
  pattern: Croner;
}

export function parseCron(text: string, timezone = "UTC"): Cron {
  const fields = text.trim().split(/\s+/);
  if (fields.length !== 5) throw new Error(`cron: expected 5 fields (minute hour day month weekday), got ${fields.length}`);
  try {
    // A paused job with no function: croner only computes times here.
    const pattern = new Croner(fields.join(" "), { mode: "5-part", domAndDow: true, timezone, paused: true });
    return { text, timezone, pattern };
  } catch (e) {
    throw new Error(`cron: cannot read ${JSON.stringify(text)}: ${(e as Error).message}`);
  }
}

/**
 * The IANA name of a timezone as Intl and croner know it ("europe/paris" →
 * "Europe/Paris"), or null for a zone neither can read: what BEAT_TIMEZONE
 * is checked with at start-up.
 */
export function timezoneName(zone: string): string | null {
  if (!zone.trim()) return null;
  try {
    const name = new Intl.DateTimeFormat("en-US", { timeZone: zone }).resolvedOptions().timeZone;
    // croner converts through Intl too; computing one firing proves it can.
    return nextFire(parseCron("0 0 * * *", name), 0) === null ? null : name;
  } catch {
    return null;
  }
}

/** The first firing strictly after `after` (unix s); null if there is none. */
export function nextFire(c: Cron, after: number): number | null {
  // croner's nextRun(t) is the first run after t, to the second.
  const next = c.pattern.nextRun(new Date(Math.floor(after) * 1000));
  return next ? next.getTime() / 1000 : null;
}
