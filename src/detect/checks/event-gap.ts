/**
 * event_gap: the event stream was interrupted (a disconnect, Redis cutting a
 * subscriber that fell behind, Crisper not running, the collector's buffer
 * full). Events published meanwhile are lost; once the stream is back, the
 * final state of every task left unfinished is read from the result backend
 * (collector/reconcile.ts), once per interruption.
 *
 * One alert for a stormy stream, not one per interruption. Anyone who can
 * publish a 50 MB message gets Crisper cut off by Redis (output buffer
 * overflow), and could otherwise post to the alert channel at will. So an
 * interruption while the alert is open extends it: its `details` count the
 * interruptions (`cuts`) and add up their time and reconciliations. The alert
 * resolves once, after the stream has stayed up for EVENT_GAP_MERGE_S
 * (`mergeS`, 10 minutes by default). Slack sees one post when the alert
 * opens and one when it resolves; updates in between are not posted.
 *
 * What the alert has counted lives in its `details` (read back as a
 * `GapEpisode`), so a Crisper restart carries on with the same alert.
 */
import type { Alert, AlertSpec } from "../../alerts/kinds.ts";
import { openAlerts, resolveAlert } from "../../alerts/store.ts";
import type { StreamGap } from "../../collector/collector.ts";
import { type Reconciliation, reconcileGap } from "../../collector/reconcile.ts";
import { type Check, summaryOn } from "../pass.ts";

/** Recovered task ids named in the details (the count is always whole). */
const MAX_NAMED = 50;

/** The interruptions one event_gap alert stands for. Times are unix seconds. */
export interface GapEpisode {
  /** Interruptions counted. */
  cuts: number;
  /** When the first began. */
  from: number;
  /** When the stream last came back; null if no interruption has ended yet. */
  lastBackAt: number | null;
  /** When the interruption under way began; null while the stream is up. */
  downSince: number | null;
  /** Seconds the stream was down, over the interruptions that ended. */
  downS: number;
  /** Why the latest interruption happened. */
  reason: string;
  /** Unfinished tasks looked up in the result backend, over all reconciliations. */
  checked: number;
  /** Of those, tasks found finished there (and now written). */
  recovered: number;
  recoveredTasks: string[];
}

/** An interruption begins (or is first seen, perhaps already over). */
export function cutBegan(e: GapEpisode | null, gap: StreamGap): GapEpisode {
  const base: GapEpisode = e ?? {
    cuts: 0,
    from: gap.from,
    lastBackAt: null,
    downSince: null,
    downS: 0,
    reason: gap.reason,
    checked: 0,
    recovered: 0,
    recoveredTasks: [],
  };
  return {
    ...base,
    cuts: base.cuts + 1,
    from: Math.min(base.from, gap.from),
    downSince: gap.to === null ? gap.from : base.downSince,
    reason: gap.reason,
  };
}

/** An interruption ended; `r` is what reconciling its window found (null: not reconciled). */
export function cutEnded(e: GapEpisode, gap: { from: number; to: number }, r: Pick<Reconciliation, "checked" | "recovered" | "recovered_tasks"> | null): GapEpisode {
  // Time already counted (overlapping windows) is not counted twice.
  const countFrom = Math.max(gap.from, e.lastBackAt ?? gap.from);
  // Times read back from ISO strings are only true to the millisecond.
  const thisOne = e.downSince !== null && Math.abs(e.downSince - gap.from) < 0.01;
  return {
    ...e,
    lastBackAt: Math.max(e.lastBackAt ?? gap.to, gap.to),
    downSince: thisOne ? null : e.downSince,
    downS: e.downS + Math.max(0, gap.to - countFrom),
    checked: e.checked + (r?.checked ?? 0),
    recovered: e.recovered + (r?.recovered ?? 0),
    recoveredTasks: [...new Set([...e.recoveredTasks, ...(r?.recovered_tasks ?? [])])].slice(0, MAX_NAMED),
  };
}

/** Whether the stream has been up for the whole merge window since the last interruption. */
export function steady(e: GapEpisode, now: number, mergeS: number): boolean {
  return e.downSince === null && e.lastBackAt !== null && now - e.lastBackAt >= mergeS;
}

const at = (t: number) => new Date(Math.round(t * 1000)).toISOString();
const round1 = (s: number) => Math.round(s * 10) / 10;

export interface GapAlertSettings {
  /** EVENT_GAP_MERGE_S. */
  mergeS: number;
  /** Whether reconciliation can read the result backend (RESULT_BACKEND_URL set). */
  canReconcile: boolean;
}

/** The alert for an episode: open, or `resolved` with the totals. The same episode always gives the same alert. */
export function eventGapAlert(e: GapEpisode, o: GapAlertSettings, resolved = false): AlertSpec {
  const down = round1(e.downS);
  const up = e.downSince === null && e.lastBackAt !== null;
  let note: string | null = null;
  if (e.lastBackAt !== null) {
    if (!o.canReconcile) note = `${e.checked} unfinished tasks could not be checked: set RESULT_BACKEND_URL to recover their final states.`;
    else if (e.cuts === 1) note = `Reconciled: ${e.recovered} of ${e.checked} unfinished tasks had a final state in the result backend.`;
    else note = `Reconciled after each: ${e.recovered} unfinished tasks had a final state in the result backend (${e.checked} looked up in all).`;
  }
  let summary: string;
  if (e.downSince !== null) {
    summary =
      `The event stream is interrupted since ${at(e.downSince)} (${e.reason}): events published meanwhile are lost; Crisper will reconcile when it is back.` +
      (e.cuts > 1 ? ` Interruption ${e.cuts} since ${at(e.from)}; ${down} s down before this one.` : "");
  } else {
    summary =
      (e.cuts === 1
        ? `The event stream was interrupted for ${down} s (${e.reason}).`
        : `The event stream was interrupted ${e.cuts} times between ${at(e.from)} and ${at(e.lastBackAt ?? e.from)}, ${down} s in all (last: ${e.reason}).`) +
      (note ? ` ${note}` : "") +
      (resolved ? "" : ` Resolves once the stream has stayed up for ${o.mergeS} s; interruptions until then are counted here.`);
  }
  return {
    kind: "event_gap",
    subject: "collector",
    summary,
    details: {
      from: at(e.from),
      // The whole window's end: null while an interruption is under way.
      to: up && e.lastBackAt !== null ? at(e.lastBackAt) : null,
      duration_s: down,
      reason: e.reason,
      cuts: e.cuts,
      interrupted_since: e.downSince === null ? null : at(e.downSince),
      last_back_at: e.lastBackAt === null ? null : at(e.lastBackAt),
      checked: e.checked,
      recovered: e.recovered,
      recovered_tasks: e.recoveredTasks,
      note,
      merge_window_s: o.mergeS,
      resolves_at: up && e.lastBackAt !== null ? at(e.lastBackAt + o.mergeS) : null,
    },
  };
}

/** The episode an open alert stands for, read back from its details (alerts of older versions included). */
export function episodeFromAlert(a: Pick<Alert, "details" | "openedAt">): GapEpisode {
  const d = a.details;
  const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : null);
  const time = (v: unknown) => {
    if (typeof v !== "string") return null;
    const ms = Date.parse(v);
    return Number.isNaN(ms) ? null : ms / 1000;
  };
  const from = time(d.from) ?? a.openedAt.getTime() / 1000;
  // Before interruptions were merged, an open alert had `to: null` and no `interrupted_since`.
  const downSince = Object.hasOwn(d, "interrupted_since") ? time(d.interrupted_since) : d.to === null ? from : null;
  const named = Array.isArray(d.recovered_tasks) ? d.recovered_tasks.filter((t): t is string => typeof t === "string") : [];
  return {
    cuts: num(d.cuts) ?? 1,
    from,
    lastBackAt: time(d.last_back_at) ?? time(d.to),
    downSince,
    downS: num(d.duration_s) ?? 0,
    reason: typeof d.reason === "string" ? d.reason : "unknown",
    checked: num(d.checked) ?? 0,
    recovered: num(d.recovered) ?? 0,
    recoveredTasks: named.slice(0, MAX_NAMED),
  };
}

export const checkEventGap: Check = async (pass) => {
  const { database, now, config } = pass;
  const watch = pass.trackers.gapWatch;
  watch.startedAt ??= now;
  const gaps = pass.gaps();
  // Only gaps the collector still lists can come up again.
  const listed = new Set(gaps.map((g) => g.from));
  for (const seen of [watch.counted, watch.reconciled]) for (const from of seen) if (!listed.has(from)) seen.delete(from);

  const alert = (await openAlerts(database, "event_gap", pass.brokerName)).find((a) => a.subject === "collector") ?? null;
  let episode = alert ? episodeFromAlert(alert) : null;
  // Marked as done only once the alert says so: a pass that fails counts them again.
  const counted: number[] = [];
  const reconciled: number[] = [];
  for (const gap of gaps) {
    if (!watch.counted.has(gap.from)) {
      episode = cutBegan(episode, gap);
      counted.push(gap.from);
    }
    if (gap.to === null || watch.reconciled.has(gap.from)) continue;
    const result = await reconcileGap({ database, broker: pass.broker, brokerName: pass.brokerName, resultBackend: config.resultBackend, gap, clock: pass.clock });
    // And ask the workers what they hold now.
    pass.inspectAgain();
    episode = cutEnded(episode ?? cutBegan(null, gap), { from: gap.from, to: gap.to }, result);
    reconciled.push(gap.from);
  }
  if (!episode) return;
  // An interruption under way when an earlier Crisper process stopped ended,
  // for this alert, when this process's stream came up.
  const up = pass.streamUpSince;
  const underWay = gaps.some((g) => g.to === null);
  if (up !== null && !underWay && episode.downSince !== null && episode.downSince < watch.startedAt) {
    episode = cutEnded(episode, { from: episode.downSince, to: Math.max(episode.downSince, Math.min(up, now)) }, null);
  }

  const settings = { mergeS: config.eventGapMergeS, canReconcile: config.resultBackend && pass.broker !== null };
  // Never resolved while the stream is down, recorded as a gap or not (a broker unreachable at start).
  if (up !== null && steady(episode, now, config.eventGapMergeS)) {
    const final = eventGapAlert(episode, settings, true);
    let open: Alert | null = alert;
    if (!open) {
      // Interruptions that came and went, and the window is already over
      // (a short EVENT_GAP_MERGE_S): recorded all the same, resolved.
      await pass.sync("event_gap", [final], { resolveMissing: false });
      open = (await openAlerts(database, "event_gap", pass.brokerName)).find((a) => a.subject === "collector") ?? null;
    }
    const summary = summaryOn(pass.brokerName, final.summary);
    const r = open ? await resolveAlert(database, open.id, new Date(now * 1000), { summary, details: final.details }) : null;
    if (r) pass.announce({ opened: [], updated: [], resolved: [r] });
  } else {
    await pass.sync("event_gap", [eventGapAlert(episode, settings)], { resolveMissing: false });
  }
  for (const from of counted) watch.counted.add(from);
  for (const from of reconciled) watch.reconciled.add(from);
};
