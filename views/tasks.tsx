/** @jsxImportSource hono/jsx */
/**
 * Task search: the filter form (its values live in the query string), and
 * the rows — one component for the full page, the htmx fragment and the
 * live refresh (SSE `tasks` events re-fetch the rows with the same filters).
 */
import type { Task } from "../src/api/schemas.ts";
import { TASK_STATES } from "../src/celery/states.ts";
import { seconds } from "../src/format.ts";
import { REVOKED_REASON_TEXT } from "../src/format.ts";
import { RevokedReason, State, When } from "./format.tsx";
import { BrokerBadge, BrokerSelect } from "./brokers.tsx";

/** The filters a tasks page shows and keeps in its links. */
export interface TaskQuery {
  name?: string;
  state?: string;
  worker?: string;
  queue?: string;
  /** `expired`: only tasks that expired in the queue. */
  reason?: string;
  broker?: string;
  q?: string;
}

const STATES = ["", ...TASK_STATES];

export function queryString(q: TaskQuery, extra: Record<string, string> = {}): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries({ ...q, ...extra })) if (v) p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : "";
}

export interface TaskRowsProps {
  tasks: Task[];
  query: TaskQuery;
  nextCursor: string | null;
  /** Set when a text search stopped after this many tasks (store/queries/tasks.ts, SEARCH_WINDOW). */
  searchedWindow?: number;
  now: number;
  /** The watched brokers' names, for the filter (BROKERS; one needs no filter). */
  brokers?: readonly string[];
}

export function TaskRows(props: TaskRowsProps) {
  const searched = props.searchedWindow?.toLocaleString("en-US");
  return (
    <tbody
      id="task-rows"
      hx-get={`/tasks${queryString(props.query, { fragment: "rows" })}`}
      hx-trigger="sse:tasks"
      hx-swap="outerHTML"
    >
      {props.tasks.length === 0 ? (
        <tr>
          <td colspan={6} class="muted">
            {searched ? `No match among these ${searched} tasks.` : "No task matches."}
          </td>
        </tr>
      ) : (
        props.tasks.map((t) => (
          <tr data-task-id={t.id}>
            <td>
              <State state={t.state} />
              {t.revoked_reason ? (
                <div>
                  <RevokedReason reason={t.revoked_reason} />
                </div>
              ) : null}
            </td>
            <td>
              <a href={`/tasks/${encodeURIComponent(t.id)}`}>{t.name ?? "(unnamed)"}</a>
              <BrokerBadge name={t.broker} />
              <div class="mono muted">{t.id}</div>
            </td>
            <td class="mono">{clip(t.args, 80)}</td>
            <td>{t.worker ?? <span class="muted">—</span>}</td>
            <td>
              <When iso={t.finished_at ?? t.started_at ?? t.received_at ?? t.sent_at} now={props.now} />
            </td>
            <td>{t.runtime_s !== null ? seconds(t.runtime_s) : ""}</td>
          </tr>
        ))
      )}
      {props.nextCursor ? (
        <tr>
          <td colspan={6}>
            <a href={`/tasks${queryString(props.query, { cursor: props.nextCursor })}`}>
              {searched ? `Searched ${searched} tasks: search older ones →` : "Older tasks →"}
            </a>
          </td>
        </tr>
      ) : null}
    </tbody>
  );
}

export function TasksPage(props: TaskRowsProps) {
  const q = props.query;
  return (
    <>
      <h1>Tasks</h1>
      <form class="filters" method="get" action="/tasks" hx-get="/tasks" hx-target="#main" hx-select="#main" hx-swap="outerHTML" hx-push-url="true">
        <label>
          Search
          <input type="search" name="q" value={q.q ?? ""} placeholder="id, name, args, exception" size={28} />
        </label>
        <label>
          Name
          <input name="name" value={q.name ?? ""} placeholder="app.tasks.charge" />
        </label>
        <label>
          State
          <select name="state">
            {STATES.map((s) => (
              <option value={s} selected={s === (q.state ?? "")}>
                {s || "any"}
              </option>
            ))}
          </select>
        </label>
        <label>
          Reason
          <select name="reason">
            <option value="" selected={!q.reason}>
              any
            </option>
            <option value="expired" selected={q.reason === "expired"} title={REVOKED_REASON_TEXT.expired}>
              expired
            </option>
          </select>
        </label>
        <label>
          Worker
          <input name="worker" value={q.worker ?? ""} />
        </label>
        <label>
          Queue
          <input name="queue" value={q.queue ?? ""} />
        </label>
        <BrokerSelect brokers={props.brokers} current={q.broker} />
        <button type="submit">Search</button>
      </form>
      {q.name && q.state === "FAILURE" ? (
        <p>
          <a href={`/tasks/retry-failures?name=${encodeURIComponent(q.name)}&since=${new Date((props.now - 86_400) * 1000).toISOString()}&until=${new Date(props.now * 1000).toISOString()}`}>
            Retry the failures of {q.name} →
          </a>
        </p>
      ) : null}
      <div hx-ext="sse" sse-connect="/live">
        <table>
          <thead>
            <tr>
              <th>State</th>
              <th>Task</th>
              <th>Args</th>
              <th>Worker</th>
              <th>When</th>
              <th>Runtime</th>
            </tr>
          </thead>
          <TaskRows {...props} />
        </table>
        <p class="live">Live: new matching tasks appear as they happen.</p>
      </div>
    </>
  );
}

function clip(s: string | null, n: number): string {
  if (!s) return "";
  return s.length > n ? `${s.slice(0, n)}…` : s;
}
