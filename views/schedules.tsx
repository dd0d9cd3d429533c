/** @jsxImportSource hono/jsx */
/** Periodic tasks (Celery Beat): learned from steady arrivals or declared, and whether they are on time. */
import type { Schedule } from "../src/api/schemas.ts";
import { seconds } from "../src/format.ts";
import { When } from "./format.tsx";

export function SchedulesPage(props: { schedules: Schedule[]; now: number }) {
  const cls = { ok: "SUCCESS", late: "RETRY", missed: "FAILURE" } as Record<string, string>;
  return (
    <>
      <h1>Schedules</h1>
      {props.schedules.length === 0 ? (
        <p class="muted">No periodic task yet. Tasks that arrive at a steady interval are learned here; others can be declared with BEAT_SCHEDULES.</p>
      ) : (
        <table>
          <thead>
            <tr><th>Schedule</th><th>Task</th><th>Every</th><th>Source</th><th>Last seen</th><th>Next due</th><th>Status</th></tr>
          </thead>
          <tbody>
            {props.schedules.map((s) => (
              <tr>
                <td>{s.name}</td>
                <td><a href={`/tasks?name=${encodeURIComponent(s.task)}`}>{s.task}</a></td>
                <td class="mono">{s.cron ? `cron ${s.cron}` : s.expected_interval_s !== null ? seconds(s.expected_interval_s) : "—"}</td>
                <td>{s.source}</td>
                <td><When iso={s.last_seen_at} now={props.now} /></td>
                <td><When iso={s.next_due_at} now={props.now} /></td>
                <td><span class={`state ${cls[s.status] ?? "PENDING"}`}>{s.status}</span></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
