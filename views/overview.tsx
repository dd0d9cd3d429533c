/** @jsxImportSource hono/jsx */
/** Where the trouble is, at a glance: the last hour's outcomes, workers, queues and open alerts. */
import type { alertJson, queueJson, workerJson } from "../src/api/serialize.ts";
import { When } from "./format.tsx";
import { Alerts } from "./task.tsx";

export function OverviewPage(props: {
  counts: Record<string, number>;
  workers: ReturnType<typeof workerJson>[];
  queues: ReturnType<typeof queueJson>[];
  alerts: ReturnType<typeof alertJson>[];
  now: number;
}) {
  const c = props.counts;
  const done = (c.SUCCESS ?? 0) + (c.FAILURE ?? 0);
  const failRate = done ? ((100 * (c.FAILURE ?? 0)) / done).toFixed(1) : "0.0";
  const online = props.workers.filter((w) => w.status === "online").length;
  return (
    <div hx-ext="sse" sse-connect="/live">
      <div hx-get="/" hx-trigger="sse:tasks, sse:alerts" hx-target="#main" hx-select="#main" hx-swap="outerHTML">
        <h1>Overview</h1>
        <div class="grid">
          {[
            [String(c.SUCCESS ?? 0), "succeeded, last hour"],
            [String(c.FAILURE ?? 0), "failed, last hour"],
            [`${failRate} %`, "failure rate"],
            [String((c.STARTED ?? 0) + (c.RECEIVED ?? 0)), "running or reserved"],
            [`${online} / ${props.workers.length}`, "workers online"],
            [String(props.alerts.length), "open alerts"],
          ].map(([n, l]) => (
            <div class="card stat">
              <div class="n">{n}</div>
              <div class="l">{l}</div>
            </div>
          ))}
        </div>
        <h2>Open alerts</h2>
        {props.alerts.length ? <Alerts alerts={props.alerts} now={props.now} /> : <p class="muted">None.</p>}
        <h2>Workers</h2>
        <table>
          <thead><tr><th>Worker</th><th>Status</th><th>Last heartbeat</th><th>Active</th><th>Reserved</th><th>Processed</th></tr></thead>
          <tbody>
            {props.workers.map((w) => (
              <tr>
                <td><a href={`/workers/${encodeURIComponent(w.hostname)}`}>{w.hostname}</a></td>
                <td>{w.status === "online" ? "online" : <span class="sev critical">offline{w.offline_reason === "shutdown" ? " (shut down)" : ""}</span>}</td>
                <td><When iso={w.last_heartbeat_at} now={props.now} /></td>
                <td>{w.active ?? "—"}</td>
                <td>{w.reserved ?? "—"}</td>
                <td>{w.processed ?? "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <h2>Queues</h2>
        <table>
          <thead><tr><th>Queue</th><th>Depth</th><th>By priority</th><th>Unacked</th><th>Oldest unacked</th></tr></thead>
          <tbody>
            {props.queues.map((q) => (
              <tr>
                <td><a href="/queues">{q.name}</a></td>
                <td>{q.depth}</td>
                <td class="mono">{Object.entries(q.by_priority).map(([p, n]) => `${p}:${n}`).join(" ")}</td>
                <td>{q.unacked}</td>
                <td>{q.oldest_unacked_age_s !== null ? `${Math.round(q.oldest_unacked_age_s)} s` : "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}
