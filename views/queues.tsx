/** @jsxImportSource hono/jsx */
/** Queue depths with their history as server-rendered SVG charts (no chart library, light pages). */
import type { Queue } from "../src/api/schemas.ts";
import { seconds } from "../src/format.ts";
import type { BrokerNote } from "../src/web/brokers.ts";
import { BrokerBadge, BrokerLinks } from "./brokers.tsx";

/** A queue's name is unique per broker: its charts are keyed by both. */
export function queueKey(broker: string, name: string): string {
  return `${broker}\u0000${name}`;
}

function Consumers(props: { note: BrokerNote | undefined; queue: string }) {
  const list = props.note?.consumers?.get(props.queue);
  if (!props.note?.consumers) return null;
  if (!list?.length) return <p class="muted">No consumer.</p>;
  return (
    <table>
      <thead>
        <tr><th>Consumer</th><th>Prefetch</th><th>Unacknowledged (its channel)</th></tr>
      </thead>
      <tbody>
        {list.slice(0, 50).map((c) => (
          <tr>
            <td class="mono">{c.peer ?? c.channel}<div class="muted">{c.consumerTag}</div></td>
            <td>{c.prefetch === null ? "—" : c.prefetch === 0 ? "unlimited" : c.prefetch}</td>
            <td>{c.unacked ?? "—"}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function DepthChart(props: { points: { at: number; depth: number }[]; width?: number; height?: number }) {
  const w = props.width ?? 560;
  const h = props.height ?? 90;
  const pts = props.points;
  if (pts.length < 2) return <p class="muted">Not enough samples yet.</p>;
  const t0 = pts[0]?.at ?? 0;
  const t1 = pts.at(-1)?.at ?? 1;
  const max = Math.max(1, ...pts.map((p) => p.depth));
  const x = (t: number) => ((t - t0) / Math.max(1, t1 - t0)) * (w - 40) + 36;
  const y = (d: number) => h - 14 - (d / max) * (h - 24);
  const path = pts.map((p, i) => `${i ? "L" : "M"}${x(p.at).toFixed(1)},${y(p.depth).toFixed(1)}`).join(" ");
  return (
    <svg width={w} height={h} viewBox={`0 0 ${w} ${h}`} role="img" aria-label="queue depth over time">
      <line x1="36" y1={h - 14} x2={w - 4} y2={h - 14} stroke="#d0d5dd" />
      <text x="30" y="12" font-size="10" text-anchor="end" fill="#667085">{max}</text>
      <text x="30" y={h - 14} font-size="10" text-anchor="end" fill="#667085">0</text>
      <text x="36" y={h - 2} font-size="10" fill="#667085">{new Date(t0 * 1000).toISOString().slice(11, 19)}</text>
      <text x={w - 4} y={h - 2} font-size="10" text-anchor="end" fill="#667085">{new Date(t1 * 1000).toISOString().slice(11, 19)} UTC</text>
      <path d={path} fill="none" stroke="#2f5bd3" stroke-width="1.5" />
    </svg>
  );
}

export function QueuesPage(props: {
  queues: Queue[];
  history: Map<string, { at: number; depth: number }[]>;
  windowMin: number;
  broker?: string;
  brokers?: readonly string[];
  /** Per broker: consumers, and what is not known (src/web/brokers.ts). */
  notes?: BrokerNote[];
}) {
  const notes = new Map((props.notes ?? []).map((n) => [n.broker, n]));
  const several = (props.brokers?.length ?? 0) > 1;
  return (
    <div hx-ext="sse" sse-connect="/live">
      <div hx-get={`/queues${props.broker ? `?broker=${encodeURIComponent(props.broker)}` : ""}`} hx-trigger="sse:tasks" hx-target="#main" hx-select="#main" hx-swap="outerHTML">
        <h1>Queues</h1>
        <BrokerLinks brokers={props.brokers} current={props.broker} path="/queues" />
        {[...notes.values()].filter((n) => n.unknown).map((n) => (
          <p class="card problem s400 not-known">
            {several ? <strong>{n.broker}: </strong> : null}
            {n.unknown}
          </p>
        ))}
        {props.queues.length === 0 ? <p class="muted">No queue seen yet.</p> : null}
        {props.queues.map((q) => (
          <div class="card">
            <h2>
              <a href={`/tasks?queue=${encodeURIComponent(q.name)}${q.broker !== "default" ? `&broker=${encodeURIComponent(q.broker)}` : ""}`}>{q.name}</a>
              <BrokerBadge name={q.broker} />
            </h2>
            <dl class="facts">
              <dt>Waiting</dt><dd>{q.depth} <span class="mono muted">({Object.entries(q.by_priority).map(([p, n]) => `priority ${p}: ${n}`).join(", ")})</span></dd>
              <dt>Unacknowledged</dt><dd>{q.unacked}{q.oldest_unacked_age_s !== null ? `, oldest ${seconds(q.oldest_unacked_age_s)}` : ""}</dd>
            </dl>
            <DepthChart points={props.history.get(queueKey(q.broker, q.name)) ?? []} />
            <Consumers note={notes.get(q.broker)} queue={q.name} />
            <p class="live">Depth over the last {props.windowMin} minutes.</p>
          </div>
        ))}
      </div>
    </div>
  );
}
