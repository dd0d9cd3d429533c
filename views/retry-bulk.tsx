/** @jsxImportSource hono/jsx */
/**
 * Retrying every failure of one task name in a window: first the count and
 * the failures (GET), then a confirmation of that count (POST), then what
 * was sent and what was refused, with the reasons.
 */
import type { BulkRetryAnswer } from "../src/api/schemas.ts";

export function BulkRetryPage(props: {
  name: string;
  since: string;
  until: string;
  /** The failures a confirmation would send again. */
  ids: string[];
  max: number;
  token?: string;
  done?: BulkRetryAnswer;
}) {
  const { done } = props;
  return (
    <>
      <h1>Retry failures of {props.name || "a task"}</h1>
      <form class="filters" method="get" action="/tasks/retry-failures">
        <label>Task name<input name="name" value={props.name} required /></label>
        <label>Since (ISO 8601)<input name="since" value={props.since} required /></label>
        <label>Until (ISO 8601)<input name="until" value={props.until} required /></label>
        <button type="submit">Count</button>
      </form>
      {done ? (
        <div class="card">
          <p class="flash">
            Retried {done.retried.length} of {done.matched}; {done.refused.length} refused.
          </p>
          {done.refused.length ? (
            <table>
              <thead><tr><th>Task</th><th>Why not</th></tr></thead>
              <tbody>
                {done.refused.map((r) => (
                  <tr><td class="mono"><a href={`/tasks/${encodeURIComponent(r.task_id)}`}>{r.task_id}</a></td><td>{r.reason}</td></tr>
                ))}
              </tbody>
            </table>
          ) : null}
        </div>
      ) : props.name && props.since && props.until ? (
        <div class="card">
          <p class="count">
            <strong>{props.ids.length}</strong> failure{props.ids.length === 1 ? "" : "s"} of <span class="mono">{props.name}</span> first seen in this window, not retried
            before{props.ids.length >= props.max ? ` (at most ${props.max} at a time)` : ""}.
          </p>
          {props.token && props.ids.length ? (
            <form method="post" action="/tasks/retry-failures" class="revoke" hx-confirm={`Send ${props.ids.length} task(s) again?`}>
              <input type="hidden" name="csrf" value={props.token} />
              <input type="hidden" name="name" value={props.name} />
              <input type="hidden" name="since" value={props.since} />
              <input type="hidden" name="until" value={props.until} />
              <input type="hidden" name="confirm" value={String(props.ids.length)} />
              <button type="submit" class="danger">Retry {props.ids.length} failure{props.ids.length === 1 ? "" : "s"}</button>
            </form>
          ) : null}
          <ul class="mono">
            {props.ids.slice(0, 50).map((id) => (
              <li><a href={`/tasks/${encodeURIComponent(id)}`}>{id}</a></li>
            ))}
          </ul>
        </div>
      ) : null}
    </>
  );
}
