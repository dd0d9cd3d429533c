/** @jsxImportSource hono/jsx */
/** Workers by Celery's heartbeat rule, and one worker with what it holds. */
import type { Alert, Worker, WorkerAnswer } from "../src/api/schemas.ts";
import { When } from "./format.tsx";
import { Alerts, RequeueButton } from "./task.tsx";
import { WorkerConfiguration } from "./worker-config.tsx";
import { BrokerBadge, BrokerLinks } from "./brokers.tsx";

export function WorkerStatus(props: { w: Worker }) {
  if (props.w.status === "online") return <span class="state SUCCESS">online</span>;
  return <span class="state FAILURE">{props.w.offline_reason === "shutdown" ? "shut down" : "offline"}</span>;
}

export function WorkersTable(props: { workers: Worker[]; now: number }) {
  return (
    <table>
      <thead>
        <tr><th>Worker</th><th>Status</th><th>Last heartbeat</th><th>Active</th><th>Reserved</th><th>Processed</th><th>Load</th><th>Celery</th></tr>
      </thead>
      <tbody>
        {props.workers.map((w) => (
          <tr>
            <td><a href={`/workers/${encodeURIComponent(w.hostname)}${w.broker !== "default" ? `?broker=${encodeURIComponent(w.broker)}` : ""}`}>{w.hostname}</a><BrokerBadge name={w.broker} /></td>
            <td><WorkerStatus w={w} /></td>
            <td><When iso={w.last_heartbeat_at} now={props.now} /></td>
            <td>{w.active ?? "—"}</td>
            <td>{w.reserved ?? "—"}</td>
            <td>{w.processed ?? "—"}</td>
            <td class="mono">{Array.isArray(w.loadavg) ? w.loadavg.map((x) => Number(x).toFixed(2)).join(" ") : "—"}</td>
            <td>{w.sw_ver ?? "—"}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function WorkersPage(props: { workers: Worker[]; now: number; broker?: string; brokers?: readonly string[] }) {
  return (
    <div hx-ext="sse" sse-connect="/live">
      <div hx-get={`/workers${props.broker ? `?broker=${encodeURIComponent(props.broker)}` : ""}`} hx-trigger="sse:tasks" hx-target="#main" hx-select="#main" hx-swap="outerHTML">
        <h1>Workers</h1>
        <BrokerLinks brokers={props.brokers} current={props.broker} path="/workers" />
        {props.workers.length ? <WorkersTable workers={props.workers} now={props.now} /> : <p class="muted">No worker seen yet.</p>}
      </div>
    </div>
  );
}

/** `w` with `config` (GET /api/workers/{hostname}) also shows its configuration. */
export function WorkerPage(props: {
  w: Worker & Partial<Pick<WorkerAnswer, "config" | "config_findings">>;
  alerts: Alert[];
  now: number;
  /** For an admin: the form token for requeueing a dead worker's stranded messages, or why the broker has none. */
  requeue?: { token: string } | { unavailable: string };
  flash?: string;
}) {
  const w = props.w;
  const held = (title: string, list: { id: string; name: string | null }[]) => (
    <>
      <h2>{title} ({list.length})</h2>
      {list.length ? (
        <table>
          <tbody>
            {list.map((t) => (
              <tr>
                <td><a href={`/tasks/${encodeURIComponent(t.id)}`}>{t.name ?? t.id}</a></td>
                <td class="mono muted">{t.id}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p class="muted">None.</p>
      )}
    </>
  );
  return (
    <>
      {props.flash ? <p class="flash">{props.flash}</p> : null}
      <h1>
        <WorkerStatus w={w} /> {w.hostname}
        <BrokerBadge name={w.broker} />
      </h1>
      {props.requeue && w.status === "offline" ? (
        <div class="card">
          {"token" in props.requeue ? (<p class="muted">
            What a dead worker had prefetched waits unacknowledged in the broker until the visibility timeout hands it back. Requeueing puts its
            messages back on their queues now, once each.
          </p>) : null}
          <RequeueButton hostname={w.hostname} requeue={props.requeue} />
        </div>
      ) : null}
      {props.alerts.length ? <Alerts alerts={props.alerts} now={props.now} /> : null}
      <div class="card">
        <dl class="facts">
          <dt>Last heartbeat</dt><dd><When iso={w.last_heartbeat_at} now={props.now} /> (every {w.freq_s ?? 2} s)</dd>
          <dt>Online since</dt><dd><When iso={w.online_since} now={props.now} /></dd>
          {w.offline_at ? (<><dt>Offline since</dt><dd><When iso={w.offline_at} now={props.now} /></dd></>) : null}
          <dt>Active / processed</dt><dd>{w.active ?? "—"} / {w.processed ?? "—"}</dd>
          <dt>Pid, version</dt><dd>{w.pid ?? "—"}, {w.sw_ident ?? ""} {w.sw_ver ?? ""} {w.sw_sys ?? ""}</dd>
          <dt>Asked what it holds</dt><dd><When iso={w.inspected_at} now={props.now} /></dd>
        </dl>
      </div>
      {held("Running", w.active_tasks)}
      {held("Prefetched (reserved, not started)", w.reserved_tasks)}
      {w.config !== undefined ? <WorkerConfiguration config={w.config} findings={w.config_findings ?? []} now={props.now} /> : null}
      <p><a href={`/tasks?worker=${encodeURIComponent(w.hostname)}${w.broker !== "default" ? `&broker=${encodeURIComponent(w.broker)}` : ""}`}>Tasks on this worker →</a></p>
    </>
  );
}
