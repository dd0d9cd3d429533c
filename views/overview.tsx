/** @jsxImportSource hono/jsx */
/** Where the trouble is, at a glance: the last hour's outcomes, workers, queues and open alerts. */
import type { Alert, Queue, Worker } from "../src/api/schemas.ts";
import type { MinuteCounts } from "../src/store/queries/tasks.ts";
import { AT_WORKER_STATES } from "../src/celery/states.ts";
import { ago, formatRetention, seconds } from "../src/format.ts";
import { ChartKey, When } from "./format.tsx";
import { Alerts } from "./task.tsx";
import type { ReachabilityState } from "../src/broker/reachability.ts";

/** The broker cannot be reached: what Crisper tried, and what to do (the same as its one log line). */
export function NoBroker(props: { broker: ReachabilityState; now: number }) {
  const b = props.broker;
  return (
    <div class="card health bad nobroker">
      <strong>{b.everReached ? `Broker unreachable since ${ago(props.now - b.since)}` : `No broker at ${b.url}`}</strong>
      <span>
        Tried <code>{b.url}</code>: {b.reason ?? "no answer"}. Retrying.
      </span>
      {b.everReached ? (
        <span>What happens once it is back is collected again; events published meanwhile are lost (an event_gap alert says so).</span>
      ) : (
        <span>
          To watch your Celery: start your broker (redis-server), set <code>BROKER_URL</code> to the one your Celery uses, or run <code>crisper demo</code> to
          see Crisper on a simulated cluster. This page reloads every 10 s.
        </span>
      )}
    </div>
  );
}

/** Bars per minute, stacked by outcome, in the states' colours. */
export function ThroughputChart(props: { minutes: MinuteCounts[]; now: number; windowMin: number; width?: number; height?: number }) {
  const w = props.width ?? 720;
  const h = props.height ?? 120;
  const end = Math.floor(props.now / 60) * 60;
  const start = end - (props.windowMin - 1) * 60;
  const byMinute = new Map(props.minutes.map((m) => [m.minute, m.byState]));
  const layers: [string, string, (c: Record<string, number>) => number][] = [
    ["succeeded", "#12b76a", (c) => c.SUCCESS ?? 0],
    ["failed", "#d92d20", (c) => c.FAILURE ?? 0],
    ["retried, revoked or rejected", "#f79009", (c) => (c.RETRY ?? 0) + (c.REVOKED ?? 0) + (c.REJECTED ?? 0)],
    ["not finished", "#98a2b3", (c) => (c.PENDING ?? 0) + (c.RECEIVED ?? 0) + (c.STARTED ?? 0)],
  ];
  const totals: number[] = [];
  for (let m = start; m <= end; m += 60) totals.push(layers.reduce((n, [, , f]) => n + f(byMinute.get(m) ?? {}), 0));
  const max = Math.max(1, ...totals);
  const plotW = w - 44;
  const barW = plotW / props.windowMin;
  const y = (n: number) => ((h - 26) * n) / max;
  const bars = [];
  for (let i = 0; i < props.windowMin; i++) {
    const counts = byMinute.get(start + i * 60) ?? {};
    let base = h - 16;
    for (const [label, colour, f] of layers) {
      const n = f(counts);
      if (!n) continue;
      const hh = Math.max(1, y(n));
      base -= hh;
      bars.push(
        <rect x={(40 + i * barW).toFixed(1)} y={base.toFixed(1)} width={Math.max(1, barW - 1).toFixed(1)} height={hh.toFixed(1)} fill={colour}>
          <title>{`${new Date((start + i * 60) * 1000).toISOString().slice(11, 16)} UTC: ${n} ${label}`}</title>
        </rect>,
      );
    }
  }
  return (
    <figure class="chart">
      <svg width={w} height={h} viewBox={`0 0 ${w} ${h}`} role="img" aria-label="tasks per minute by outcome">
        <line x1="40" y1={h - 16} x2={w - 4} y2={h - 16} stroke="#d0d5dd" />
        <text x="0" y="10" font-size="10" fill="#667085">{max}/min</text>
        <text x="34" y={h - 16} font-size="10" text-anchor="end" fill="#667085">0</text>
        <text x="40" y={h - 3} font-size="10" fill="#667085">{props.windowMin} min ago</text>
        <text x={w - 4} y={h - 3} font-size="10" text-anchor="end" fill="#667085">now</text>
        {bars}
      </svg>
      <ChartKey items={layers.map(([label, colour]) => [label, colour])} />
    </figure>
  );
}

/** Is the event stream alive, and was it ever cut? */
export function StreamHealth(props: { lastTaskAt: number | null; lastHeartbeatAt: number | null; gaps: Alert[]; now: number }) {
  const open = props.gaps.find((g) => g.status === "open");
  const quiet = props.lastHeartbeatAt === null || props.now - props.lastHeartbeatAt > 30;
  const last = props.gaps.find((g) => g.status === "resolved");
  const d = (last?.details ?? {}) as Record<string, unknown>;
  return (
    <div class={`card health ${open ? "bad" : quiet ? "warn" : "good"}`}>
      <strong>{open ? "Event stream interrupted" : quiet ? "No heartbeat from any worker for a while" : "Event stream healthy"}</strong>
      <span>
        last worker heartbeat {props.lastHeartbeatAt === null ? "never" : ago(props.now - props.lastHeartbeatAt)} · last new task{" "}
        {props.lastTaskAt === null ? "never" : ago(props.now - props.lastTaskAt)}
      </span>
      <span>
        gaps in the last 24 h: {props.gaps.length}
        {last
          ? ` · the last lasted ${d.duration_s ?? "?"} s (${String(d.reason ?? "").slice(0, 120)}), ${d.recovered ?? 0} of ${d.checked ?? 0} unfinished tasks recovered`
          : ""}
      </span>
    </div>
  );
}

export function OverviewPage(props: {
  counts: Record<string, number>;
  minutes: MinuteCounts[];
  windowMin: number;
  lastTaskAt: number | null;
  gaps: Alert[];
  workers: Worker[];
  queues: Queue[];
  alerts: Alert[];
  now: number;
  /** Whether the broker can be reached; unset where nothing watches it (a web-only process). */
  broker?: ReachabilityState;
  /** The database's size, and how long tasks and resolved alerts are kept (when this process knows). */
  storage?: { databaseBytes: number; retention?: { taskS: number; alertS: number } };
}) {
  // A Crisper that never reached its broker and holds nothing has only that to say.
  const nothingYet = props.broker?.status === "unreachable" && !props.broker.everReached && props.workers.length === 0 && props.lastTaskAt === null;
  return (
    <div hx-ext="sse" sse-connect="/live">
      <div hx-get="/" hx-trigger="sse:tasks, sse:alerts" hx-target="#main" hx-select="#main" hx-swap="outerHTML">
        <h1>Overview</h1>
        {props.broker?.status === "unreachable" ? <NoBroker broker={props.broker} now={props.now} /> : null}
        {nothingYet ? null : <OverviewBody {...props} />}
      </div>
    </div>
  );
}

function OverviewBody(props: Parameters<typeof OverviewPage>[0]) {
  const c = props.counts;
  const done = (c.SUCCESS ?? 0) + (c.FAILURE ?? 0);
  const failRate = done ? ((100 * (c.FAILURE ?? 0)) / done).toFixed(1) : "0.0";
  const online = props.workers.filter((w) => w.status === "online").length;
  return (
    <>
        <StreamHealth
          lastTaskAt={props.lastTaskAt}
          lastHeartbeatAt={Math.max(...props.workers.map((w) => (w.last_heartbeat_at ? Date.parse(w.last_heartbeat_at) / 1000 : 0)), 0) || null}
          gaps={props.gaps}
          now={props.now}
        />
        <div class="grid">
          {[
            [String(c.SUCCESS ?? 0), "succeeded, last hour"],
            [String(c.FAILURE ?? 0), "failed, last hour"],
            [`${failRate} %`, "failure rate"],
            [String(AT_WORKER_STATES.reduce((n, s) => n + (c[s] ?? 0), 0)), "running or reserved"],
            [`${online} / ${props.workers.length}`, "workers online"],
            [String(props.alerts.length), "open alerts"],
          ].map(([n, l]) => (
            <div class="card stat">
              <div class="n">{n}</div>
              <div class="l">{l}</div>
            </div>
          ))}
        </div>
        <h2>Tasks per minute, by outcome</h2>
        <ThroughputChart minutes={props.minutes} now={props.now} windowMin={props.windowMin} />
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
                <td>{q.oldest_unacked_age_s !== null ? seconds(q.oldest_unacked_age_s) : "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {props.storage ? <Storage {...props.storage} /> : null}
    </>
  );
}

/** One line: the database's size and the retention in force. */
function Storage(props: { databaseBytes: number; retention?: { taskS: number; alertS: number } }) {
  const r = props.retention;
  return (
    <p class="muted" id="storage">
      Database: {bytes(props.databaseBytes)}
      {r ? ` · tasks and their events kept ${formatRetention(r.taskS)} after their last event, resolved alerts ${formatRetention(r.alertS)}` : ""}
    </p>
  );
}

function bytes(n: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  for (; n >= 1024 && i < units.length - 1; i++) n /= 1024;
  return `${n.toFixed(i === 0 || n >= 100 ? 0 : 1)} ${units[i]}`;
}
