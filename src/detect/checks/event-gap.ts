/**
 * event_gap: open while the event stream is down; once it is back, the final
 * state of every task left unfinished is read from the result backend
 * (collector/reconcile.ts), and the alert resolves saying what was recovered.
 */
import { openAlerts, resolveAlert } from "../../alerts/store.ts";
import type { StreamGap } from "../../collector/collector.ts";
import { reconcileGap } from "../../collector/reconcile.ts";
import type { Check } from "../pass.ts";

export const checkEventGap: Check = async (pass) => {
  const { database, now } = pass;
  const gaps = pass.gaps();
  const open = await openAlerts(database, "event_gap");
  const current = gaps.at(-1);
  if (current && current.to === null) {
    await pass.sync(
      "event_gap",
      [
        {
          kind: "event_gap",
          subject: "collector",
          summary: `The event stream is interrupted since ${new Date(current.from * 1000).toISOString()} (${current.reason}): events published meanwhile are lost; Crisper will reconcile when it is back.`,
          details: { from: new Date(current.from * 1000).toISOString(), to: null, reason: current.reason },
        },
      ],
      { resolveMissing: false },
    );
    return;
  }
  const closed = gaps.filter((g): g is StreamGap & { to: number } => g.to !== null && !pass.trackers.reconciledGaps.has(g.from));
  for (const gap of closed) {
    pass.trackers.reconciledGaps.add(gap.from);
    const result = await reconcileGap({ database, broker: pass.broker, resultBackend: pass.config.resultBackend, gap, clock: pass.clock });
    // And ask the workers what they hold now.
    pass.inspectAgain();
    const details = {
      from: new Date(gap.from * 1000).toISOString(),
      to: new Date(gap.to * 1000).toISOString(),
      duration_s: Math.round((gap.to - gap.from) * 10) / 10,
      reason: gap.reason,
      ...result,
    };
    const summary = `The event stream was interrupted for ${details.duration_s} s (${gap.reason}). ${result.note}`;
    const existing = open.find((a) => a.subject === "collector");
    if (existing) {
      const r = await resolveAlert(database, existing.id, new Date(now * 1000), details);
      if (r) pass.announce({ opened: [], updated: [], resolved: [{ ...r, summary }] });
    } else {
      // A gap that came and went between two passes: record it, resolved.
      await pass.sync("event_gap", [{ kind: "event_gap", subject: "collector", summary, details }], { resolveMissing: false });
      const [a] = await openAlerts(database, "event_gap");
      if (a) await resolveAlert(database, a.id, new Date(now * 1000), details);
    }
  }
};
