/** @jsxImportSource hono/jsx */
/**
 * Per task name: every name with its throughput, failure rate and runtime
 * (sortable, like Sidekiq's metrics page), and one name's charts over a
 * window. Server-rendered SVG, no chart library. Names are untrusted: JSX
 * escapes them, and every URL built from one is percent-encoded.
 */
import type { StatsBucket, StatsWindowName, Task, TaskNameSort, TaskNameStats } from "../src/api/schemas.ts";
import { seconds } from "../src/format.ts";
import { ChartKey, When } from "./format.tsx";

const WINDOWS: StatsWindowName[] = ["1h", "24h", "7d", "30d"];

export const taskNameHref = (name: string, window?: StatsWindowName) =>
  `/task-names/${encodeURIComponent(name)}${window ? `?window=${window}` : ""}`;

const maybeSeconds = (s: number | null) => (s === null ? "—" : seconds(s));
const percent = (r: number | null) => (r === null ? "—" : `${(r * 100).toFixed(r > 0 && r < 0.001 ? 2 : 1)} %`);
const perMinute = (n: number) => (n === 0 ? "0" : n < 0.1 ? n.toFixed(3) : n < 10 ? n.toFixed(2) : n.toFixed(0));

/** Links to the same page over each window; the current one in bold. */
function WindowLinks(props: { current: StatsWindowName; href: (w: StatsWindowName) => string }) {
  return (
    <p class="windows">
      {WINDOWS.map((w) =>
        w === props.current ? (
          <strong aria-current="true">{w}</strong>
        ) : (
          <a href={props.href(w)}>{w}</a>
        ),
      )}
    </p>
  );
}

/** Tasks per step over the window, as a small line. */
export function Sparkline(props: { series: number[]; width?: number; height?: number }) {
  const w = props.width ?? 120;
  const h = props.height ?? 24;
  const max = Math.max(1, ...props.series);
  const step = props.series.length > 1 ? w / (props.series.length - 1) : w;
  const points = props.series.map((n, i) => `${(i * step).toFixed(1)},${(h - 2 - (n / max) * (h - 4)).toFixed(1)}`).join(" ");
  return (
    <svg class="spark" width={w} height={h} viewBox={`0 0 ${w} ${h}`} role="img" aria-label={`throughput, at most ${max} per step`}>
      <polyline points={points} fill="none" stroke="#2f5bd3" stroke-width="1.5" />
    </svg>
  );
}

export interface TaskNameRow extends TaskNameStats {
  series: number[];
}

const COLUMNS: [TaskNameSort | null, string][] = [
  ["name", "Task name"],
  ["total", "Tasks"],
  [null, "Per minute"],
  ["failure_rate", "Failure rate"],
  ["runtime_p95", "Runtime p95"],
  ["wait_p95", "Wait p95"],
  [null, "Throughput"],
];

/** Nulls last whichever the direction: a name with no runtime is not the fastest. */
function sortRows(rows: TaskNameRow[], sort: TaskNameSort, dir: "asc" | "desc"): TaskNameRow[] {
  const sign = dir === "asc" ? 1 : -1;
  return [...rows].sort((a, b) => {
    if (sort === "name") return sign * (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    const x = a[sort];
    const y = b[sort];
    if (x === null || y === null) return x === y ? 0 : x === null ? 1 : -1;
    return sign * (x - y) || (a.name < b.name ? -1 : 1);
  });
}

export function TaskNamesPage(props: { rows: TaskNameRow[]; window: StatsWindowName; sort: TaskNameSort; dir?: "asc" | "desc" }) {
  // Names read A to Z; numbers biggest first, unless asked otherwise.
  const dir = props.dir ?? (props.sort === "name" ? "asc" : "desc");
  const href = (o: { window?: StatsWindowName; sort?: TaskNameSort; dir?: string }) =>
    `/task-names?window=${o.window ?? props.window}&sort=${o.sort ?? props.sort}&dir=${o.dir ?? dir}`;
  const rows = sortRows(props.rows, props.sort, dir);
  return (
    <>
      <h1>Task names</h1>
      <WindowLinks current={props.window} href={(w) => href({ window: w })} />
      {rows.length === 0 ? (
        <p class="muted">No task finished in the last {props.window}. A minute's figures appear once it is over.</p>
      ) : (
        <table class="task-names">
          <thead>
            <tr>
              {COLUMNS.map(([key, label]) => {
                if (!key) return <th>{label}</th>;
                const here = key === props.sort;
                const next = here ? (dir === "asc" ? "desc" : "asc") : key === "name" ? "asc" : "desc";
                return (
                  <th aria-sort={here ? (dir === "asc" ? "ascending" : "descending") : undefined}>
                    <a href={href({ sort: key, dir: next })}>
                      {label}
                      {here ? (dir === "asc" ? " ▲" : " ▼") : ""}
                    </a>
                  </th>
                );
              })}
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr>
                <td class="mono">
                  <a href={taskNameHref(r.name, props.window)}>{r.name}</a>
                </td>
                <td>
                  {r.total}
                  {r.failed ? <span class="muted"> ({r.failed} failed)</span> : null}
                </td>
                <td>{perMinute(r.throughput_per_min)}</td>
                <td class={r.failure_rate && r.failure_rate >= 0.05 ? "bad" : ""}>{percent(r.failure_rate)}</td>
                <td>{maybeSeconds(r.runtime_p95)}</td>
                <td>{maybeSeconds(r.wait_p95)}</td>
                <td>
                  <Sparkline series={r.series} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p class="live">
        Tasks that reached an outcome (succeeded, failed, revoked, expired) in the last {props.window}. Failure rate: failed of those that ran to an end.
        Percentiles within 4.4 %.
      </p>
    </>
  );
}

const OUTCOMES: [keyof Pick<StatsBucket, "succeeded" | "failed" | "retried" | "revoked" | "expired">, string, string][] = [
  ["succeeded", "succeeded", "#12b76a"],
  ["failed", "failed", "#d92d20"],
  ["retried", "retried", "#f79009"],
  ["revoked", "revoked", "#475467"],
  ["expired", "expired", "#9e77ed"],
];

/** A bucket's start as the axis shows it: the time within a day, the date beyond. */
const label = (start: string, bucketS: number) => (bucketS >= 86_400 ? start.slice(0, 10) : bucketS >= 3600 ? `${start.slice(5, 10)} ${start.slice(11, 16)}` : start.slice(11, 16));


function Axis(props: { w: number; h: number; top: string; buckets: StatsBucket[]; bucketS: number }) {
  const first = props.buckets[0]?.start ?? "";
  const last = props.buckets.at(-1)?.start ?? "";
  return (
    <>
      <line x1="48" y1={props.h - 16} x2={props.w - 4} y2={props.h - 16} stroke="#d0d5dd" />
      <text x="42" y="12" font-size="10" text-anchor="end" fill="#667085">{props.top}</text>
      <text x="42" y={props.h - 16} font-size="10" text-anchor="end" fill="#667085">0</text>
      <text x="48" y={props.h - 3} font-size="10" fill="#667085">{label(first, props.bucketS)}</text>
      <text x={props.w - 4} y={props.h - 3} font-size="10" text-anchor="end" fill="#667085">{label(last, props.bucketS)} UTC</text>
    </>
  );
}

/** Tasks per bucket, stacked by outcome. */
export function OutcomeChart(props: { buckets: StatsBucket[]; bucketS: number; width?: number; height?: number }) {
  const w = props.width ?? 940;
  const h = props.height ?? 140;
  const n = Math.max(1, props.buckets.length);
  const max = Math.max(1, ...props.buckets.map((b) => OUTCOMES.reduce((s, [k]) => s + b[k], 0)));
  const barW = (w - 52) / n;
  const bars = [];
  for (const [i, b] of props.buckets.entries()) {
    let base = h - 16;
    for (const [k, name, colour] of OUTCOMES) {
      if (!b[k]) continue;
      const hh = Math.max(1, ((h - 26) * b[k]) / max);
      base -= hh;
      bars.push(
        <rect x={(48 + i * barW).toFixed(1)} y={base.toFixed(1)} width={Math.max(1, barW - 1).toFixed(1)} height={hh.toFixed(1)} fill={colour}>
          <title>{`${label(b.start, props.bucketS)}: ${b[k]} ${name}`}</title>
        </rect>,
      );
    }
  }
  return (
    <figure class="chart">
      <svg width={w} height={h} viewBox={`0 0 ${w} ${h}`} role="img" aria-label="tasks per bucket by outcome">
        <Axis w={w} h={h} top={String(max)} buckets={props.buckets} bucketS={props.bucketS} />
        {bars}
      </svg>
      <ChartKey items={OUTCOMES.map(([, name, colour]) => [name, colour])} />
    </figure>
  );
}

type Series = [keyof Pick<StatsBucket, "runtime_p50" | "runtime_p95" | "runtime_p99" | "wait_p95">, string, string];

/** Durations per bucket as lines; a bucket without tasks breaks the line. */
export function DurationChart(props: { buckets: StatsBucket[]; bucketS: number; series: Series[]; label: string; width?: number; height?: number }) {
  const w = props.width ?? 940;
  const h = props.height ?? 140;
  const n = Math.max(1, props.buckets.length);
  const values = props.buckets.flatMap((b) => props.series.map(([k]) => b[k] ?? 0));
  const max = Math.max(0.001, ...values);
  const x = (i: number) => 48 + ((i + 0.5) * (w - 52)) / n;
  const y = (v: number) => h - 16 - (v / max) * (h - 26);
  const lines = props.series.map(([k, name, colour]) => {
    const parts: string[] = [];
    const dots = [];
    let pen = "M";
    for (const [i, b] of props.buckets.entries()) {
      const v = b[k];
      if (v === null) {
        pen = "M";
        continue;
      }
      parts.push(`${pen}${x(i).toFixed(1)},${y(v).toFixed(1)}`);
      pen = "L";
      dots.push(
        <circle cx={x(i).toFixed(1)} cy={y(v).toFixed(1)} r="1.8" fill={colour}>
          <title>{`${label(b.start, props.bucketS)}: ${name} ${seconds(v)}`}</title>
        </circle>,
      );
    }
    return (
      <g>
        <path d={parts.join(" ")} fill="none" stroke={colour} stroke-width="1.5" />
        {dots}
      </g>
    );
  });
  return (
    <figure class="chart">
      <svg width={w} height={h} viewBox={`0 0 ${w} ${h}`} role="img" aria-label={props.label}>
        <Axis w={w} h={h} top={seconds(max)} buckets={props.buckets} bucketS={props.bucketS} />
        {lines}
      </svg>
      <ChartKey items={props.series.map(([, name, colour]) => [name, colour])} />
    </figure>
  );
}

export function TaskNamePage(props: {
  name: string;
  queue?: string;
  window: StatsWindowName;
  bucketS: number;
  buckets: StatsBucket[];
  failures: Task[];
  now: number;
}) {
  const total = (k: keyof Pick<StatsBucket, "succeeded" | "failed" | "retried" | "revoked" | "expired">) => props.buckets.reduce((n, b) => n + b[k], 0);
  const queue = props.queue ? `&queue=${encodeURIComponent(props.queue)}` : "";
  return (
    <>
      <h1>{props.name}</h1>
      <p>
        <a href="/task-names">All task names</a> · <a href={`/tasks?name=${encodeURIComponent(props.name)}`}>Its tasks</a>
        {props.queue ? <span class="muted"> · queue {props.queue}</span> : null}
      </p>
      <WindowLinks current={props.window} href={(w) => `${taskNameHref(props.name, w)}${queue}`} />
      <div class="grid">
        {OUTCOMES.map(([k, name]) => (
          <div class="card stat">
            <div class="n">{total(k)}</div>
            <div class="l">{name}</div>
          </div>
        ))}
      </div>
      <div class="card">
        <h2>Throughput by outcome</h2>
        <OutcomeChart buckets={props.buckets} bucketS={props.bucketS} />
      </div>
      <div class="card">
        <h2>Runtime</h2>
        <DurationChart
          buckets={props.buckets}
          bucketS={props.bucketS}
          label="runtime percentiles per bucket"
          series={[
            ["runtime_p50", "p50", "#2f5bd3"],
            ["runtime_p95", "p95", "#f79009"],
            ["runtime_p99", "p99", "#d92d20"],
          ]}
        />
      </div>
      <div class="card">
        <h2>Wait before starting</h2>
        <DurationChart buckets={props.buckets} bucketS={props.bucketS} label="wait p95 per bucket" series={[["wait_p95", "p95 wait (sent → started)", "#7a5af8"]]} />
      </div>
      <p class="live">
        One bar or point per {props.bucketS >= 86_400 ? "day" : props.bucketS >= 3600 ? "hour" : "minute"} (UTC). Percentiles within 4.4 %. The
        minute going on is counted once it is over.
      </p>
      <h2>Recent failures</h2>
      {props.failures.length === 0 ? (
        <p class="muted">No failed task of this name is kept.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Task</th>
              <th>Exception</th>
              <th>Worker</th>
              <th>Finished</th>
            </tr>
          </thead>
          <tbody>
            {props.failures.map((t) => (
              <tr>
                <td class="mono">
                  <a href={`/tasks/${encodeURIComponent(t.id)}`}>{t.id}</a>
                </td>
                <td class="mono">{(t.exception ?? "").slice(0, 200)}</td>
                <td>{t.worker ?? "—"}</td>
                <td>
                  <When iso={t.finished_at} now={props.now} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
