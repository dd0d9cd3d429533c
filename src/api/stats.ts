/**
 * The statistics' JSON API: `GET /api/stats` (one task name's buckets) and
 * `GET /api/task-names` (every name's totals). Thin handlers over
 * stats/queries.ts; what they send is typed by the schemas.
 */
import { Hono } from "hono";
import type { Env } from "../http/context.ts";
import { HttpError, validated } from "../http/errors.ts";
import { API } from "./registry.ts";
import type { Database } from "../store/database.ts";
import { type StatsBucket as Bucket, type TaskNameSummary, statsWindow, taskNameStats, taskNameSummaries } from "../stats/queries.ts";
import type { StatsAnswer, StatsBucket, TaskNameStats, TaskNamesAnswer } from "./schemas.ts";

const iso = (unixS: number) => new Date(unixS * 1000).toISOString();

export function statsBucketJson(b: Bucket): StatsBucket {
  return {
    start: iso(b.start),
    succeeded: b.succeeded,
    failed: b.failed,
    retried: b.retried,
    revoked: b.revoked,
    expired: b.expired,
    runtime_p50: b.runtimeP50,
    runtime_p95: b.runtimeP95,
    runtime_p99: b.runtimeP99,
    wait_p95: b.waitP95,
  };
}

export function taskNameStatsJson(s: TaskNameSummary, windowS: number): TaskNameStats {
  return {
    name: s.name,
    total: s.total,
    succeeded: s.succeeded,
    failed: s.failed,
    retried: s.retried,
    revoked: s.revoked,
    expired: s.expired,
    failure_rate: s.failureRate,
    throughput_per_min: s.total / (windowS / 60),
    runtime_p50: s.runtimeP50,
    runtime_p95: s.runtimeP95,
    runtime_p99: s.runtimeP99,
    wait_p95: s.waitP95,
  };
}

export function createStatsRoutes(deps: { database: Database; now: () => number }) {
  const api = new Hono<Env>();

  api.get(API.taskStats.path, validated("query", API.taskStats.query), async (c) => {
    const q = c.req.valid("query");
    const window = statsWindow(q, deps.now());
    if (typeof window === "string") throw new HttpError(400, window);
    const buckets = await taskNameStats(deps.database, { ...window, name: q.name, queue: q.queue });
    return c.json({ buckets: buckets.map(statsBucketJson), bucket_s: window.bucket } satisfies StatsAnswer);
  });

  api.get(API.taskNames.path, validated("query", API.taskNames.query), async (c) => {
    const window = statsWindow(c.req.valid("query"), deps.now());
    if (typeof window === "string") throw new HttpError(400, window);
    const windowS = (window.to.getTime() - window.from.getTime()) / 1000;
    const names = await taskNameSummaries(deps.database, window);
    return c.json({
      task_names: names.map((s) => taskNameStatsJson(s, windowS)),
      from: window.from.toISOString(),
      to: window.to.toISOString(),
    } satisfies TaskNamesAnswer);
  });

  return api;
}
