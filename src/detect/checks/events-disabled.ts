/**
 * events_disabled: a live worker completes tasks (the `processed` count in
 * its heartbeats grows) but no task event comes from it: it runs without -E
 * and nothing turned events on.
 */
import type { AlertSpec } from "../../alerts/kinds.ts";
import type { DetectConfig } from "../config.ts";
import type { Check } from "../pass.ts";
import { iso } from "./summary.ts";

export interface ActivityView {
  hostname: string;
  /** `processed` from heartbeats at the start and end of the window we watched. */
  processedFrom: number;
  processedTo: number;
  watchedSince: number;
  lastTaskEventAt: number | null;
}

export function detectEventsDisabled(activity: readonly ActivityView[], now: number, cfg: DetectConfig): AlertSpec[] {
  const out: AlertSpec[] = [];
  for (const a of activity) {
    if (now - a.watchedSince < cfg.eventsDisabledAfterS) continue;
    if (a.processedTo <= a.processedFrom) continue;
    if (a.lastTaskEventAt !== null && now - a.lastTaskEventAt < cfg.eventsDisabledAfterS) continue;
    out.push({
      kind: "events_disabled",
      subject: a.hostname,
      summary: `Worker ${a.hostname} processed ${a.processedTo - a.processedFrom} tasks in the last ${Math.round(now - a.watchedSince)} s but sent no task events: start it with -E (worker_send_task_events=True), or let Crisper broadcast enable_events (ENABLE_EVENTS).`,
      details: { hostname: a.hostname, processed: a.processedTo - a.processedFrom, window_s: Math.round(now - a.watchedSince), last_task_event_at: iso(a.lastTaskEventAt) },
    });
  }
  return out;
}

export const checkEventsDisabled: Check = async (pass) => {
  const { now, trackers } = pass;
  const views: ActivityView[] = [];
  for (const w of pass.workers) {
    // Watched while alive and heard from within two heartbeats.
    if (w.processed === null || pass.deadWorkers.has(w.hostname) || w.lastHeartbeatAt === null || now - w.lastHeartbeatAt > (w.freq ?? 2) * 2) {
      trackers.forgetActivity(w.hostname);
      continue;
    }
    const a = trackers.activityWindow(w.hostname, w.processed, now);
    views.push({ hostname: w.hostname, processedFrom: a.processedFrom, processedTo: w.processed, watchedSince: a.watchedSince, lastTaskEventAt: trackers.lastTaskEventAt(w.hostname) });
  }
  await pass.sync("events_disabled", detectEventsDisabled(views, now, pass.config));
};
