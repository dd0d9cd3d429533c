/** @jsxImportSource hono/jsx */
/** One task: what it is, how it went (timeline, executions), what it carried, and its alerts. */
import type { Alert, Event, Task } from "../src/api/schemas.ts";
import { type TaskState, UNFINISHED_STATES } from "../src/celery/states.ts";
import { duration, NEVER_SEEN_HINT, REVOKED_REASON_TEXT, seconds } from "../src/format.ts";
import { State, When } from "./format.tsx";
import { taskNameHref } from "./task-names.tsx";
import { BrokerBadge } from "./brokers.tsx";

/** Celery can still stop an unfinished task; a finished one has nothing left to revoke. */
const REVOCABLE: ReadonlySet<TaskState> = new Set(UNFINISHED_STATES);

/** Finished without success, or lost with its worker: worth sending again (src/api/actions/retry.ts decides). */
const RETRIABLE: ReadonlySet<TaskState> = new Set(["FAILURE", "REVOKED", "REJECTED"]);
export const isRetriable = (t: Task) => RETRIABLE.has(t.state) || t.alerts.some((a) => a.kind === "task_lost" && a.status === "open");

export function TaskPage(props: {
  task: Task;
  events: Event[];
  now: number;
  /** Present for an admin: the form's token. */
  revoke?: { token: string };
  flash?: string;
}) {
  const t = props.task;
  return (
    <>
      {props.flash ? <p class="flash">{props.flash}</p> : null}
      <h1>
        <State state={t.state} /> {t.name ? <a href={taskNameHref(t.name)}>{t.name}</a> : "(unnamed task)"}
        <BrokerBadge name={t.broker} />
      </h1>
      <p class="mono muted">{t.id}</p>
      {t.revoked_reason === "expired" ? (
        <p class="card reason-note">
          <strong>Revoked: {REVOKED_REASON_TEXT.expired}.</strong> Its <code>expires</code> ({t.expires ?? "unknown"}) had passed when{" "}
          {t.worker ?? "a worker"} took it from the queue{duration(t.sent_at, t.finished_at) ? `, ${duration(t.sent_at, t.finished_at)} after it was sent` : ""}, so
          the worker discarded it unrun.
        </p>
      ) : null}
      {props.revoke && REVOCABLE.has(t.state) ? (
        <form
          method="post"
          action={`/tasks/${encodeURIComponent(t.id)}/revoke`}
          class="card revoke"
          hx-confirm="Revoke this task? Workers will discard it, and with terminate the one running it kills it."
        >
          <input type="hidden" name="csrf" value={props.revoke.token} />
          <label>
            <input type="checkbox" name="terminate" value="1" checked={t.state === "STARTED"} /> terminate it if it is running, with{" "}
            <select name="signal" aria-label="signal">
              <option>SIGTERM</option>
              <option>SIGKILL</option>
            </select>
          </label>
          <button type="submit" class="danger">
            Revoke
          </button>
        </form>
      ) : null}
      {props.revoke && isRetriable(t) ? (
        <form
          method="post"
          action={`/tasks/${encodeURIComponent(t.id)}/retry`}
          class="card revoke"
          hx-confirm="Send this task again, with the same arguments, as a new task?"
        >
          <input type="hidden" name="csrf" value={props.revoke.token} />
          <span>Send it again as a new task, with exactly the same arguments (refused when they are not known exactly).</span>
          <button type="submit">Retry</button>
        </form>
      ) : null}
      {t.alerts.length ? <Alerts alerts={t.alerts} now={props.now} /> : null}
      <div class="card">
        <dl class="facts">
          <dt>Worker</dt>
          <dd>{t.worker ? <a href={`/workers/${encodeURIComponent(t.worker)}`}>{t.worker}</a> : "—"}</dd>
          <dt>Queue</dt>
          <dd>{t.queue ?? "—"}</dd>
          <dt>Retries</dt>
          <dd>{t.retries ?? 0}</dd>
          <dt>Sent</dt>
          <dd><When iso={t.sent_at} now={props.now} /></dd>
          <dt>Queued for</dt>
          <dd>{duration(t.sent_at, t.started_at) ?? "—"}</dd>
          <dt>Ran for</dt>
          <dd>
            {t.runtime_s !== null
              ? seconds(t.runtime_s)
              : (duration(t.started_at, t.finished_at) ??
                (t.started_at && t.state === "STARTED" ? `running for ${seconds(props.now - Date.parse(t.started_at) / 1000)}` : "—"))}
          </dd>
          <dt>Finished</dt>
          <dd><When iso={t.finished_at} now={props.now} /></dd>
          {t.retry_of ? (
            <>
              <dt>Retry of</dt>
              <dd class="mono"><a href={`/tasks/${encodeURIComponent(t.retry_of)}`}>{t.retry_of}</a></dd>
            </>
          ) : null}
          {t.retried_as?.length ? (
            <>
              <dt>Retried as</dt>
              <dd class="mono retried-as">
                {t.retried_as.map((r) => (
                  <div><a href={`/tasks/${encodeURIComponent(r)}`}>{r}</a></div>
                ))}
              </dd>
            </>
          ) : null}
          <dt>Parent / root</dt>
          <dd class="mono">
            {t.parent_id ? <a href={`/tasks/${encodeURIComponent(t.parent_id)}`}>{t.parent_id}</a> : "—"} /{" "}
            {t.root_id && t.root_id !== t.id ? <a href={`/tasks/${encodeURIComponent(t.root_id)}`}>{t.root_id}</a> : "itself"}
          </dd>
        </dl>
      </div>
      <h2>Arguments</h2>
      <pre>{`args:   ${t.args ?? "—"}\nkwargs: ${t.kwargs ?? "—"}`}</pre>
      {t.result !== null ? (
        <>
          <h2>Result</h2>
          <pre>{t.result}</pre>
        </>
      ) : null}
      {t.exception !== null ? (
        <>
          <h2>Exception</h2>
          <pre>{t.exception}</pre>
        </>
      ) : null}
      {t.traceback ? (
        <>
          <h2>Traceback</h2>
          <pre>{t.traceback}</pre>
        </>
      ) : null}
      <h2>Executions {t.executions.length > 1 ? <span class="sev warning">({t.executions.length} runs)</span> : null}</h2>
      <table>
        <thead>
          <tr><th>Worker</th><th>Retries</th><th>Received</th><th>Started</th><th>Finished</th><th>State</th></tr>
        </thead>
        <tbody>
          {t.executions.map((x) => (
            <tr>
              <td>{x.worker}</td>
              <td>{x.retries ?? "?"}</td>
              <td><When iso={x.received_at} now={props.now} /></td>
              <td><When iso={x.started_at} now={props.now} /></td>
              <td><When iso={x.finished_at} now={props.now} /></td>
              <td><State state={x.state} /></td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Timeline</h2>
      <table>
        <thead>
          <tr><th>Event</th><th>From</th><th>At</th><th>After previous</th><th>Source</th></tr>
        </thead>
        <tbody>
          {timeline(props.events).map((e, i, all) => (
            <tr>
              <td class="mono">{e.type}</td>
              <td>{e.hostname}</td>
              <td><When iso={e.timestamp} now={props.now} /></td>
              <td>{i > 0 ? after(all[i - 1]?.timestamp ?? null, e.timestamp) : ""}</td>
              <td class="muted">{e.source}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

const FINISHED = new Set(["task-succeeded", "task-failed", "task-revoked"]);

/**
 * Events as a person reads them, in the order they happened:
 * - What the result backend says that the worker's own event already said
 *   (same kind, same worker) is one row, from both sources. The two clocks
 *   differ by milliseconds (Celery stamps task-started in the worker's main
 *   process, date_done in the child that ran the task), so the backend's copy
 *   would otherwise show up out of order.
 * - Celery's result backend stores no time for STARTED, so with task events
 *   off that event carries the moment Crisper received it, which for a task of
 *   a few milliseconds can fall after the finish. It is shown before it.
 */
export function timeline(events: Event[]): Event[] {
  const kind = (e: Event) => `${e.type} ${e.hostname}`;
  const fromStream = new Map<string, Event[]>();
  for (const e of events) {
    if (e.source === "result-backend") continue;
    const same = fromStream.get(kind(e));
    if (same) same.push(e);
    else fromStream.set(kind(e), [e]);
  }
  const confirmed = new Set<Event>();
  const out: Event[] = [];
  for (const e of events) {
    if (e.source === "result-backend") {
      const twin = fromStream.get(kind(e))?.find((x) => !confirmed.has(x));
      if (twin) {
        confirmed.add(twin);
        continue;
      }
    }
    out.push(e);
  }
  for (let i = 0; i < out.length; i++) {
    const e = out[i] as Event;
    if (confirmed.has(e)) out[i] = { ...e, source: `${e.source}, result-backend` };
  }
  for (let i = 1; i < out.length; i++) {
    const e = out[i] as Event;
    if (e.source !== "result-backend" || e.type !== "task-started") continue;
    for (let j = i; j > 0; j--) {
      const prev = out[j - 1] as Event;
      if (!FINISHED.has(prev.type) || prev.hostname !== e.hostname) break;
      out[j - 1] = e;
      out[j] = prev;
    }
  }
  return out;
}

/** Time since the previous row; blank when the clocks disagree (see timeline). */
function after(from: string | null, to: string | null): string {
  if (!from || !to || Date.parse(to) < Date.parse(from)) return "";
  return duration(from, to) ?? "";
}

export function NeverSeen(props: { id: string }) {
  return (
    <>
      <h1>Crisper has never seen this task</h1>
      <p class="mono">{props.id}</p>
      <div class="card">{NEVER_SEEN_HINT}</div>
    </>
  );
}

/**
 * `requeue`: an admin's form token, to offer requeueing on an open
 * prefetched_stranded alert (or, where the broker strands nothing, why not).
 */
export function Alerts(props: { alerts: Alert[]; now: number; requeue?: { token: string } | { unavailable: string } }) {
  return (
    <table>
      <thead>
        <tr><th>Kind</th><th>Subject</th><th>Summary</th><th>Opened</th><th>Status</th></tr>
      </thead>
      <tbody>
        {props.alerts.map((a) => (
          <tr>
            <td class={`sev ${a.severity}`}>{a.kind}</td>
            <td class="mono">{a.subject}<BrokerBadge name={a.broker} /></td>
            <td>
              {a.summary}
              {props.requeue && a.kind === "prefetched_stranded" && a.status === "open" ? <RequeueButton hostname={a.subject} requeue={props.requeue} /> : null}
            </td>
            <td><When iso={a.opened_at} now={props.now} /></td>
            <td>{a.status === "open" ? <strong>open</strong> : <span class="muted">resolved <When iso={a.resolved_at} now={props.now} /></span>}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Requeue a dead worker's stranded messages now (POST /workers/{hostname}/requeue-stranded), or why there is no such button. */
export function RequeueButton(props: { hostname: string; requeue: { token: string } | { unavailable: string } }) {
  if ("unavailable" in props.requeue) return <p class="muted">{props.requeue.unavailable}</p>;
  return (
    <form
      method="post"
      action={`/workers/${encodeURIComponent(props.hostname)}/requeue-stranded`}
      class="requeue"
      hx-confirm={`Put the messages ${props.hostname} left unacknowledged back on their queues now? The remaining workers will run them.`}
    >
      <input type="hidden" name="csrf" value={props.requeue.token} />
      <button type="submit">Requeue stranded messages</button>
    </form>
  );
}
