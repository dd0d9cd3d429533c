/** @jsxImportSource hono/jsx */
/**
 * A worker's configuration as it reported it (`conf`, `stats`), the risky
 * settings marked with the fix for each, and its memory over time.
 */
import type { ConfigFinding, WorkerConfig } from "../src/api/schemas.ts";
import { When } from "./format.tsx";

type Value = string | number | boolean | null;

const shown = (v: Value | undefined) => (v === null || v === undefined ? "—" : v === true ? "True" : v === false ? "False" : String(v));
const secondsText = (v: number | null, none = "none") => (v === null ? none : `${v} s`);

/** One row: what a person reads, and the setting names findings use for it. */
interface Row {
  label: string;
  value: string;
  names: string[];
}

function rows(c: WorkerConfig): Row[] {
  const vt = c.visibility_timeout_s;
  return [
    { label: "Pool", value: `${c.pool.kind} × ${c.pool.concurrency ?? "?"}${c.pool.max_tasks_per_child ? `, ${c.pool.max_tasks_per_child} tasks per child` : ""}`, names: ["worker_pool", "worker_concurrency"] },
    { label: "worker_prefetch_multiplier", value: `${shown(c.worker_prefetch_multiplier)} (prefetch count now: ${shown(c.prefetch_count)})`, names: ["worker_prefetch_multiplier", "prefetch_count"] },
    { label: "task_acks_late", value: shown(c.task_acks_late), names: ["task_acks_late", "acks_late"] },
    { label: "task_reject_on_worker_lost", value: c.task_reject_on_worker_lost === null ? "None (off)" : shown(c.task_reject_on_worker_lost), names: ["task_reject_on_worker_lost"] },
    { label: "task_time_limit", value: `${secondsText(c.task_time_limit)} (soft: ${secondsText(c.task_soft_time_limit)})`, names: ["task_time_limit"] },
    {
      label: "visibility_timeout",
      value:
        c.transport !== null && c.transport !== "redis"
          ? `unused on ${c.transport}: RabbitMQ's consumer_timeout (BROKER_CONSUMER_TIMEOUT) applies`
          : vt === null
            ? "not set by the worker (BROKER_VISIBILITY_TIMEOUT applies)"
            : `${vt} s (broker_transport_options)`,
      names: ["broker_transport_options.visibility_timeout", "consumer_timeout"],
    },
    { label: "worker_send_task_events", value: shown(c.worker_send_task_events), names: ["worker_send_task_events"] },
    { label: "task_send_sent_event", value: shown(c.task_send_sent_event), names: ["task_send_sent_event"] },
    { label: "task_track_started", value: shown(c.task_track_started), names: ["task_track_started"] },
    { label: "result_expires", value: `${secondsText(c.result_expires, "never")}${c.result_backend === false ? " (no result backend)" : ""}`, names: ["result_expires"] },
    { label: "worker_max_memory_per_child", value: c.worker_max_memory_per_child === null ? "none" : `${c.worker_max_memory_per_child} KiB`, names: ["worker_max_memory_per_child"] },
  ];
}

/** The worst level of the findings naming any of these settings. */
function levelOf(names: string[], findings: ConfigFinding[]): "risk" | "advice" | null {
  let level: "risk" | "advice" | null = null;
  for (const f of findings) {
    if (!f.settings.some((s) => names.includes(s.name))) continue;
    if (f.level === "risk") return "risk";
    level = "advice";
  }
  return level;
}

function Mark(props: { level: "risk" | "advice" | null }) {
  if (props.level === "risk") return <span class="mark risk">risk</span>;
  if (props.level === "advice") return <span class="mark advice">advice</span>;
  return null;
}

export function Finding(props: { f: ConfigFinding }) {
  const f = props.f;
  return (
    <div class={`card finding ${f.level}`}>
      <p>
        <Mark level={f.level} /> {f.problem}
      </p>
      <p class="mono">{f.settings.map((s) => `${s.name} = ${shown(s.value)}`).join(" · ")}</p>
      <p class="muted">Fix:</p>
      <pre>{f.fix}</pre>
    </div>
  );
}

/** maxrss at each reading: a peak, so it only rises while the process lives; a drop is a restart. */
export function MemoryChart(props: { points: { at: string; maxrss_kb: number }[]; width?: number; height?: number }) {
  const w = props.width ?? 560;
  const h = props.height ?? 110;
  const pts = props.points.map((p) => ({ at: Date.parse(p.at) / 1000, mb: p.maxrss_kb / 1024 }));
  if (pts.length < 2) return <p class="muted">{pts.length ? `One reading so far: ${pts[0]?.mb.toFixed(0)} MiB.` : "No reading yet."}</p>;
  const t0 = pts[0]?.at ?? 0;
  const t1 = pts.at(-1)?.at ?? 1;
  const max = Math.max(1, ...pts.map((p) => p.mb)) * 1.1;
  // Room on the left for a four-digit scale ("1330 MiB"): a label wider than that is cut by the SVG's edge.
  const left = 64;
  const x = (t: number) => ((t - t0) / Math.max(1, t1 - t0)) * (w - left - 4) + left;
  const y = (mb: number) => h - 14 - (mb / max) * (h - 24);
  const path = pts.map((p, i) => `${i ? "L" : "M"}${x(p.at).toFixed(1)},${y(p.mb).toFixed(1)}`).join(" ");
  return (
    <svg width={w} height={h} viewBox={`0 0 ${w} ${h}`} role="img" aria-label="worker memory (maxrss) over time">
      <line x1={left} y1={h - 14} x2={w - 4} y2={h - 14} stroke="#d0d5dd" />
      <text x={left - 6} y="12" font-size="10" text-anchor="end" fill="#667085">{`${max.toFixed(0)} MiB`}</text>
      <text x={left - 6} y={h - 14} font-size="10" text-anchor="end" fill="#667085">0</text>
      <text x={left} y={h - 2} font-size="10" fill="#667085">{new Date(t0 * 1000).toISOString().slice(5, 16).replace("T", " ")}</text>
      <text x={w - 4} y={h - 2} font-size="10" text-anchor="end" fill="#667085">{new Date(t1 * 1000).toISOString().slice(5, 16).replace("T", " ")} UTC</text>
      <path d={path} fill="none" stroke="#2f5bd3" stroke-width="1.5" />
      {pts.map((p) => (
        <circle cx={x(p.at).toFixed(1)} cy={y(p.mb).toFixed(1)} r="2" fill="#2f5bd3" />
      ))}
    </svg>
  );
}

export function WorkerConfiguration(props: { config: WorkerConfig | null; findings: ConfigFinding[]; now: number }) {
  const c = props.config;
  if (!c) {
    return (
      <>
        <h2>Configuration</h2>
        <p class="muted">Not read yet: Crisper asks each online worker for its configuration (remote control `conf` and `stats`) when it comes online.</p>
      </>
    );
  }
  const risks = props.findings.filter((f) => f.level === "risk");
  const advice = props.findings.filter((f) => f.level === "advice");
  return (
    <>
      <h2 id="configuration">Configuration</h2>
      <p class="muted">
        As the worker reported it <When iso={c.read_at} now={props.now} />
        {risks.length ? ` — ${risks.length} risk${risks.length === 1 ? "" : "s"}: settings that will duplicate or lose work` : props.findings.length ? "" : " — nothing to change"}.
      </p>
      {risks.map((f) => (
        <Finding f={f} />
      ))}
      <table class="settings">
        <tbody>
          {rows(c).map((r) => {
            const level = levelOf(r.names, props.findings);
            return (
              <tr class={level ?? ""}>
                <td class="mono">{r.label}</td>
                <td class="mono">{r.value}</td>
                <td><Mark level={level} /></td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {c.tasks.length ? (
        <>
          <h2>Tasks with their own settings</h2>
          <table>
            <thead>
              <tr><th>Task</th><th>time_limit</th><th>soft_time_limit</th><th>acks_late</th><th>reject_on_worker_lost</th></tr>
            </thead>
            <tbody>
              {c.tasks.map((t) => (
                <tr class={props.findings.some((f) => f.level === "risk" && f.tasks?.includes(t.name)) ? "risk" : ""}>
                  <td class="mono">{t.name}</td>
                  <td>{secondsText(t.time_limit, "—")}</td>
                  <td>{secondsText(t.soft_time_limit, "—")}</td>
                  <td>{shown(t.acks_late)}</td>
                  <td>{shown(t.reject_on_worker_lost)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      ) : null}
      {advice.length ? <h2>Advice</h2> : null}
      {advice.map((f) => (
        <Finding f={f} />
      ))}
      <h2>Memory</h2>
      <figure class="chart">
        <MemoryChart points={c.memory} />
        <figcaption class="muted">
          Peak resident memory of the worker's main process (rusage maxrss) at each reading; now {c.maxrss_kb === null ? "unknown" : `${(c.maxrss_kb / 1024).toFixed(0)} MiB`}. Pool processes are not counted.
        </figcaption>
      </figure>
    </>
  );
}
