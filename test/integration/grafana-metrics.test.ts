/**
 * The Grafana dashboard (deploy/grafana/) and the Prometheus rules
 * (deploy/prometheus/) name only metrics a real /metrics answer has: every
 * PromQL expression is read for its metric names (a histogram's _bucket,
 * _sum and _count series included), and each is looked up in the families
 * a running server declares.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type ServedStore, servedStore } from "../support/served-store.ts";

const ROOT = join(import.meta.dir, "..", "..");
const DASHBOARD = join(ROOT, "deploy", "grafana", "crisper-dashboard.json");
const RULES = join(ROOT, "deploy", "prometheus", "crisper-rules.yml");

/** Series Prometheus makes itself, not Crisper. */
const PROMETHEUS_OWN = new Set(["up"]);

/** PromQL words that are neither functions nor metrics. */
const KEYWORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or", "unless", "inf", "nan"]);

/**
 * The metric names a PromQL expression reads. Strings, label matchers
 * (`{kind=~"…"}`), ranges (`[5m]`, `[$__rate_interval]`) and label lists
 * with their keyword (`by (le, name)`) are taken out first, so `sum by
 * (le) (…)` reads as `sum (…)`; what is left that is a name and
 * not a function call (`rate(`) or a keyword is a metric.
 */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, " ");
  const names = new Set<string>();
  for (const m of bare.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*|[0-9.][0-9A-Za-z_.+]*/g)) {
    const word = m[0];
    if (/^[0-9.]/.test(word) || KEYWORDS.has(word.toLowerCase())) continue;
    const after = bare.slice((m.index ?? 0) + word.length);
    if (/^\s*\(/.test(after)) continue; // a function or an aggregation
    names.add(word);
  }
  return [...names];
}

interface Families {
  /** Family name → its TYPE (counter, gauge, histogram, summary, untyped). */
  types: Map<string, string>;
  text: string;
}

/** The families a /metrics answer declares (`# TYPE name type`). */
function families(text: string): Families {
  const types = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (\w+)$/gm)) types.set(m[1] ?? "", m[2] ?? "");
  return { types, text };
}

/** Whether a series name is in the answer: a family, or a histogram's (summary's) _bucket, _sum or _count. */
function present(name: string, f: Families): boolean {
  if (f.types.has(name)) return true;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  const type = m ? f.types.get(m[1] ?? "") : undefined;
  return type === "histogram" || (type === "summary" && m?.[2] !== "bucket");
}

interface Panel {
  id: number;
  type: string;
  title: string;
  targets?: { expr: string }[];
  panels?: Panel[];
}
interface Dashboard {
  panels: Panel[];
  templating: { list: { name: string; type: string; query?: unknown }[] };
}

const dashboard = JSON.parse(readFileSync(DASHBOARD, "utf8")) as Dashboard;
const rules = Bun.YAML.parse(readFileSync(RULES, "utf8")) as { groups: { name: string; rules: { alert: string; expr: string }[] }[] };
const dashboardExprs = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).flatMap((p) => (p.targets ?? []).map((t) => ({ where: p.title, expr: t.expr })));
const ruleExprs = rules.groups.flatMap((g) => g.rules.map((r) => ({ where: r.alert, expr: r.expr })));

let served: ServedStore;
let metrics: Families;

beforeAll(async () => {
  served = await servedStore("grafana");
  const res = await fetch(`${served.url}/metrics`);
  expect(res.status).toBe(200);
  metrics = families(await res.text());
});

afterAll(() => served?.stop());

describe("reading PromQL", () => {
  test("finds metric names, and only them", () => {
    expect(metricNames('histogram_quantile(0.95, sum by (le, name) (rate(celery_task_runtime_bucket{queue_name="a"}[$__rate_interval])))')).toEqual([
      "celery_task_runtime_bucket",
    ]);
    expect(metricNames('max by (kind) (crisper_alerts_open{kind=~"a|b"}) > 0 and on (kind) up offset 5m')).toEqual(["crisper_alerts_open", "up"]);
    expect(metricNames("count(x) > 0 and sum(y) == 1e3")).toEqual(["x", "y"]);
  });

  test("a name /metrics does not have is reported", () => {
    const absent = metricNames("rate(celery_task_sucess_total[5m]) + celery_task_runtime_buckets").filter((n) => !present(n, metrics));
    expect(absent).toEqual(["celery_task_sucess_total", "celery_task_runtime_buckets"]);
  });
});

describe("the dashboard and the rules", () => {
  test("every metric the dashboard names is in a real /metrics answer", () => {
    expect(dashboardExprs.length).toBeGreaterThan(20);
    const missing = dashboardExprs.flatMap(({ where, expr }) => metricNames(expr).filter((n) => !present(n, metrics)).map((n) => `${where}: ${n}`));
    expect(missing).toEqual([]);
  });

  test("every metric the rules name is in a real /metrics answer (or is Prometheus' own `up`)", () => {
    expect(ruleExprs.length).toBeGreaterThan(10);
    const missing = ruleExprs.flatMap(({ where, expr }) =>
      metricNames(expr)
        .filter((n) => !present(n, metrics) && !PROMETHEUS_OWN.has(n))
        .map((n) => `${where}: ${n}`),
    );
    expect(missing).toEqual([]);
  });

  test("the dashboard shows what the issue asks: outcomes, runtimes, queues, workers, alerts, collector health", () => {
    const named = new Set(dashboardExprs.flatMap(({ expr }) => metricNames(expr)));
    for (const name of [
      "celery_task_succeeded_total",
      "celery_task_failed_total",
      "celery_task_runtime_bucket",
      "celery_queue_length",
      "celery_worker_up",
      "crisper_alerts_open",
      "crisper_store_writable",
      "crisper_buffer_dropped_total",
    ]) {
      expect(named).toContain(name);
    }
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(dashboard.templating.list.map((v) => `${v.name} ${v.type}`)).toContain("datasource datasource");
  });

  test("open alerts by kind come from the store: every kind, the open one counted", () => {
    expect(metrics.types.get("crisper_alerts_open")).toBe("gauge");
    expect(metrics.text).toContain('crisper_alerts_open{kind="duplicate_execution"} 1');
    expect(metrics.text).toContain('crisper_alerts_open{kind="worker_offline"} 0');
    expect(metrics.text).toContain('crisper_alerts_open{kind="beat_missed"} 0');
  });
});
