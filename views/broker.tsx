/** @jsxImportSource hono/jsx */
/**
 * The broker's own health (/broker): memory against its limit, the eviction
 * policy, clients, throughput and evictions, with the last hour's memory as
 * a server-rendered SVG chart. What is risky is said in words next to it.
 */
import type { Alert, BrokerHealth } from "../src/api/schemas.ts";
import { seconds } from "../src/format.ts";
import { Alerts } from "./task.tsx";
import { When } from "./format.tsx";

/** Bytes as a person reads them: 812 KB, 153.2 MB, 1.5 GB. */
export function byteSize(b: number | null): string {
  if (b === null) return "—";
  if (b < 1024 * 1024) return `${Math.round(b / 1024)} KB`;
  if (b < 1024 ** 3) return `${(b / 1024 ** 2).toFixed(1)} MB`;
  return `${(b / 1024 ** 3).toFixed(2)} GB`;
}

/** Memory over time, with the limit as a dashed line when there is one. */
export function MemoryChart(props: { b: BrokerHealth; width?: number; height?: number }) {
  const w = props.width ?? 960;
  const h = props.height ?? 140;
  const pts = props.b.history.filter((p) => p.used_memory_bytes !== null).map((p) => ({ at: Date.parse(p.at) / 1000, v: p.used_memory_bytes as number }));
  if (pts.length < 2) return <p class="muted">Not enough samples yet for a chart.</p>;
  const limit = props.b.max_memory_bytes;
  const t0 = pts[0]?.at ?? 0;
  const t1 = pts.at(-1)?.at ?? 1;
  const peak = Math.max(1, ...pts.map((p) => p.v));
  // The limit is drawn when memory is anywhere near it; far below it, the
  // chart is scaled to the memory itself so that its trend shows.
  const showLimit = limit !== null && peak >= limit * 0.4;
  const top = (showLimit && limit !== null ? Math.max(limit, peak) : peak) * 1.1;
  const left = 64;
  const x = (t: number) => ((t - t0) / Math.max(1, t1 - t0)) * (w - left - 6) + left;
  const y = (v: number) => h - 16 - (v / top) * (h - 28);
  const path = pts.map((p, i) => `${i ? "L" : "M"}${x(p.at).toFixed(1)},${y(p.v).toFixed(1)}`).join(" ");
  const area = `${path} L${x(t1).toFixed(1)},${h - 16} L${left},${h - 16} Z`;
  const label = `broker memory over time: ${byteSize(pts.at(-1)?.v ?? null)} now${limit ? `, limit ${byteSize(limit)}` : ""}`;
  return (
    <figure class="chart">
      <svg width={w} height={h} viewBox={`0 0 ${w} ${h}`} role="img" aria-label={label}>
        <line x1={left} y1={h - 16} x2={w - 4} y2={h - 16} stroke="#d0d5dd" />
        <text x={left - 6} y="12" font-size="10" text-anchor="end" fill="#667085">{byteSize(top)}</text>
        <text x={left - 6} y={h - 16} font-size="10" text-anchor="end" fill="#667085">0</text>
        <text x={left} y={h - 3} font-size="10" fill="#667085">{new Date(t0 * 1000).toISOString().slice(11, 19)}</text>
        <text x={w - 4} y={h - 3} font-size="10" text-anchor="end" fill="#667085">{new Date(t1 * 1000).toISOString().slice(11, 19)} UTC</text>
        <path d={area} fill="#2f5bd3" fill-opacity="0.12" stroke="none" />
        <path d={path} fill="none" stroke="#2f5bd3" stroke-width="1.5" />
        {showLimit && limit !== null ? (
          <>
            <line x1={left} y1={y(limit)} x2={w - 4} y2={y(limit)} stroke="#d92d20" stroke-dasharray="5 4" />
            <text x={w - 6} y={y(limit) - 4} font-size="10" text-anchor="end" fill="#d92d20">limit {byteSize(limit)}</text>
            <line x1={left} y1={y(limit * 0.8)} x2={w - 4} y2={y(limit * 0.8)} stroke="#f79009" stroke-dasharray="2 4" />
            <text x={w - 6} y={y(limit * 0.8) - 4} font-size="10" text-anchor="end" fill="#b54708">80 %</text>
          </>
        ) : null}
      </svg>
      <figcaption class="live">
        Memory in use over the last hour
        {showLimit ? "; dashed: the limit and 80 % of it (broker_memory_high)" : limit !== null ? `; the limit, ${byteSize(limit)}, is far above` : "; no limit"}.
      </figcaption>
    </figure>
  );
}

function Policy(props: { b: BrokerHealth }) {
  const b = props.b;
  if (b.kind !== "redis") return <>—</>;
  if (b.max_memory_policy === null) return <span class="muted">unknown</span>;
  if (b.eviction_possible) {
    return (
      <>
        <strong class="sev warning">{b.max_memory_policy}</strong> — Redis may evict Celery's queues, the unacked set and results when it reaches maxmemory. Set{" "}
        <code>noeviction</code>.
      </>
    );
  }
  return (
    <>
      {b.max_memory_policy}
      {b.max_memory_policy === "noeviction" ? "" : <span class="muted"> (no maxmemory: Redis never evicts)</span>}
    </>
  );
}

function BrokerCard(props: { b: BrokerHealth; now: number }) {
  const b = props.b;
  const ratio = b.memory_used_ratio;
  const state = b.memory_alarm || b.disk_alarm || ((b.evicted_keys ?? 0) > 0 && b.eviction_possible) ? "bad" : b.eviction_possible || (ratio ?? 0) >= 0.8 ? "warn" : "";
  const stale = props.now - Date.parse(b.sampled_at) / 1000 > 60;
  return (
    <div class={`card health ${state}`} data-broker={b.broker}>
      <h2>
        {b.kind === "redis" ? "Redis" : "RabbitMQ"} {b.version ?? ""} <span class="muted">· broker {b.broker}</span>
      </h2>
      <div class="grid">
        <div class="stat">
          <div class="n">{byteSize(b.used_memory_bytes)}</div>
          <div class="l">memory used{b.max_memory_bytes ? ` of ${byteSize(b.max_memory_bytes)} (${Math.round((ratio ?? 0) * 100)} %)` : ", no limit"}</div>
        </div>
        <div class="stat">
          <div class="n">{b.connected_clients ?? "—"}</div>
          <div class="l">clients</div>
        </div>
        <div class="stat">
          <div class="n">{b.ops_per_second ?? "—"}</div>
          <div class="l">{b.kind === "redis" ? "ops/s" : "published/s"}</div>
        </div>
        {b.kind === "redis" ? (
          <div class="stat">
            <div class="n">{b.evicted_keys ?? "—"}</div>
            <div class="l">keys evicted since start</div>
          </div>
        ) : null}
      </div>
      <dl class="facts">
        <dt>maxmemory-policy</dt>
        <dd>
          <Policy b={b} />
        </dd>
        <dt>Uptime</dt>
        <dd>{b.uptime_s !== null ? seconds(b.uptime_s) : "—"}</dd>
        {b.kind === "rabbitmq" ? (
          <>
            <dt>Alarms</dt>
            <dd>
              {b.memory_alarm ? <strong class="sev critical">memory alarm: publishers blocked</strong> : "memory ok"},{" "}
              {b.disk_alarm ? <strong class="sev critical">disk alarm: publishers blocked</strong> : "disk ok"}
            </dd>
            <dt>Disk free</dt>
            <dd>{byteSize(b.disk_free_bytes)}</dd>
          </>
        ) : null}
        <dt>Sampled</dt>
        <dd>
          <When iso={b.sampled_at} now={props.now} />
          {stale ? <span class="muted"> — no recent sample: is a collector running, and can it reach the broker?</span> : null}
        </dd>
      </dl>
      <MemoryChart b={b} />
    </div>
  );
}

export function BrokerPage(props: { brokers: BrokerHealth[]; alerts: Alert[]; now: number }) {
  return (
    <div hx-ext="sse" sse-connect="/live">
      <div hx-get="/broker" hx-trigger="sse:alerts, every 15s" hx-target="#main" hx-select="#main" hx-swap="outerHTML">
        <h1>Broker</h1>
        {props.alerts.length ? (
          <div class="broker-alerts">
            <Alerts alerts={props.alerts} now={props.now} />
          </div>
        ) : null}
        {props.brokers.length === 0 ? (
          <p class="muted">
            No health sample yet. The collector reads the broker's health with each queue sample (QUEUE_SAMPLE_INTERVAL_S); on RabbitMQ it needs
            RABBITMQ_MANAGEMENT_URL.
          </p>
        ) : null}
        {props.brokers.map((b) => (
          <BrokerCard b={b} now={props.now} />
        ))}
      </div>
    </div>
  );
}
