/**
 * Words Crisper says to people, in one place so the pages, the API and Slack
 * say the same thing: lengths of time, and what a task id never seen means.
 * Plain text; the pages wrap these in markup (views/format.tsx), Slack in
 * mrkdwn (bot/mrkdwn.ts).
 */

/** A length of time in the unit a person reads at a glance: 4 ms, 2.5 s, 3.2 min, 2.1 h. */
export function seconds(s: number): string {
  // Clocks of different machines can put an end a little before its start.
  const t = Math.max(0, s);
  if (t > 0 && t < 0.0005) return "< 1 ms";
  if (t < 1) return `${Math.round(t * 1000)} ms`;
  if (t < 120) return `${t.toFixed(1)} s`;
  if (t < 7200) return `${(t / 60).toFixed(1)} min`;
  return `${(t / 3600).toFixed(1)} h`;
}

/** The time between two ISO 8601 instants, or null when either is unknown. */
export function duration(from: string | null, to: string | null): string | null {
  if (!from || !to) return null;
  return seconds((Date.parse(to) - Date.parse(from)) / 1000);
}

/** "12 s ago", "in 3 min", "now": how far an instant is from now, `s` seconds before it (negative: after). */
export function ago(s: number): string {
  const future = s < 0;
  const a = Math.abs(s);
  const text = a < 1 ? "now" : a < 60 ? `${Math.round(a)} s` : a < 3600 ? `${Math.round(a / 60)} min` : a < 86400 ? `${(a / 3600).toFixed(1)} h` : `${(a / 86400).toFixed(1)} d`;
  return text === "now" ? text : future ? `in ${text}` : `${text} ago`;
}

/**
 * What it means that Crisper has no trace of a task id. Celery's own answer
 * for such an id is PENDING, which misleads: this says why instead (the API's
 * 404 hint, the task page, Slack's `/celery task`).
 */
export const NEVER_SEEN_HINT =
  "Crisper has no event and no result for this id. Either it was never sent, or it ran before Crisper was watching, " +
  "or its workers send no task events and no result backend is configured (RESULT_BACKEND_URL). " +
  "Note that Celery's AsyncResult reports PENDING for any unknown id, even one that never existed.";

/** The headline for a task id never seen. */
export const neverSeen = (id: string) => `Crisper has never seen task ${id}`;

/** Why a REVOKED task was revoked, in words (the API's `revoked_reason`). */
export const REVOKED_REASON_TEXT: Record<"expired", string> = {
  expired: "expired before a worker took it",
};

/** Retention as a duration a person reads: `30d`, `12h`, `90s`. */
export function formatRetention(seconds: number): string {
  for (const [unit, s] of [["d", 86_400], ["h", 3600], ["m", 60]] as const) if (seconds >= s && seconds % s === 0) return `${seconds / s}${unit}`;
  return `${seconds}s`;
}
