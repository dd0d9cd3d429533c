/**
 * What a worker's configuration (celery/worker-config.ts) will do to its
 * tasks. Risks duplicate or lose work and open `config_risk`
 * (checks/config-risk.ts); advice is shown on the worker's page and in the
 * API, and never pages anyone. A worker on sane settings gets nothing.
 * Pure: tested on real `conf` replies (test/fixtures/worker-config/).
 */
import type { WorkerSettings } from "../celery/worker-config.ts";
import type { DetectConfig } from "./config.ts";

export type FindingLevel = "risk" | "advice";

export type ConfigRule =
  | "time_limit_beyond_visibility_timeout"
  | "runtime_beyond_visibility_timeout"
  | "prefetch_on_async_pool"
  | "prefetch_unbounded"
  | "task_events_off"
  | "acks_late_with_reject_on_worker_lost"
  | "short_result_expires";

export interface ConfigFinding {
  rule: ConfigRule;
  level: FindingLevel;
  /** The settings that make it, with the values the worker reported. */
  settings: { name: string; value: string | number | boolean | null }[];
  /** What will happen, in a sentence. */
  problem: string;
  /** What to change: Celery settings a person can paste. */
  fix: string;
  /** The task names concerned, when it is about some tasks only (bounded). */
  tasks?: string[];
}

/** The broker's limit on an unacknowledged message, as it applies to one worker. */
export interface RedeliveryLimit {
  /** The setting's name as a person would look for it. */
  setting: string;
  seconds: number;
  /** "worker": its own broker_transport_options; "crisper": BROKER_VISIBILITY_TIMEOUT / BROKER_CONSUMER_TIMEOUT. */
  source: "worker" | "crisper";
}

/** Observed runtimes of a task name on this worker (its latest tasks; store/queries/worker-config.ts). */
export interface NameRuntime {
  name: string;
  p99S: number;
  runs: number;
}

/** `result_expires` below this is short: results gone before a slow client or a reconciliation reads them. */
export const SHORT_RESULT_EXPIRES_S = 3600;
/** Task names listed in one finding. */
const MAX_NAMED = 10;

const VISIBILITY_SETTING = "broker_transport_options.visibility_timeout";

/**
 * The limit that applies to this worker's tasks: on Redis its own
 * `broker_transport_options.visibility_timeout` when it reports one
 * (BROKER_VISIBILITY_TIMEOUT otherwise); on RabbitMQ the server's
 * `consumer_timeout` (BROKER_CONSUMER_TIMEOUT), whatever the worker says.
 */
export function redeliveryLimitOf(w: Pick<WorkerSettings, "visibility_timeout_s"> | null, cfg: Pick<DetectConfig, "visibilityTimeoutS" | "redeliveryLimit">): RedeliveryLimit {
  if (cfg.redeliveryLimit === "consumer_timeout") return { setting: "consumer_timeout", seconds: cfg.visibilityTimeoutS, source: "crisper" };
  if (w?.visibility_timeout_s) return { setting: VISIBILITY_SETTING, seconds: w.visibility_timeout_s, source: "worker" };
  return { setting: VISIBILITY_SETTING, seconds: cfg.visibilityTimeoutS, source: "crisper" };
}

/** How to lift the limit above `seconds`. */
function raiseLimit(limit: RedeliveryLimit, seconds: number): string {
  const above = Math.ceil((seconds * 1.25) / 60) * 60;
  return limit.setting === "consumer_timeout"
    ? `raise RabbitMQ's consumer_timeout above ${Math.round(seconds)} s (e.g. consumer_timeout = ${above * 1000} in rabbitmq.conf; then BROKER_CONSUMER_TIMEOUT=${above} for Crisper)`
    : `raise the visibility timeout above it: broker_transport_options = {"visibility_timeout": ${above}}`;
}

const named = (names: string[]) => names.slice(0, MAX_NAMED).join(", ") + (names.length > MAX_NAMED ? ` and ${names.length - MAX_NAMED} more` : "");

export function configFindings(w: WorkerSettings, limit: RedeliveryLimit, runtimes: readonly NameRuntime[] = []): ConfigFinding[] {
  const out: ConfigFinding[] = [];
  const limitSetting = { name: limit.setting, value: limit.seconds };
  const overrides = new Map(w.tasks.map((t) => [t.name, t]));
  const acksLateFor = (name: string) => overrides.get(name)?.acks_late ?? w.task_acks_late;

  // A hard time limit longer than the visibility timeout, with late acks: the
  // message goes back to the queue while the task still runs, so it runs twice
  // before the time limit stops the first run.
  const globalRisk = w.task_acks_late === true && w.task_time_limit !== null && w.task_time_limit > limit.seconds;
  if (globalRisk && w.task_time_limit !== null) {
    out.push({
      rule: "time_limit_beyond_visibility_timeout",
      level: "risk",
      settings: [{ name: "task_time_limit", value: w.task_time_limit }, { name: "task_acks_late", value: true }, limitSetting],
      problem: `Tasks may run for up to ${w.task_time_limit} s, but with late acks their message stays unacknowledged while they run, and after ${limit.seconds} s the broker hands it to another worker: a task running past ${limit.seconds} s runs twice before its time limit stops it.`,
      fix: `Either ${raiseLimit(limit, w.task_time_limit)}, or lower task_time_limit below ${limit.seconds}.`,
    });
  }
  const riskyTasks = w.tasks.filter((t) => {
    const acks = t.acks_late ?? w.task_acks_late;
    const hard = t.time_limit ?? w.task_time_limit;
    if (!(acks === true && hard !== null && hard > limit.seconds)) return false;
    // Already said for every task above.
    return !(globalRisk && hard === w.task_time_limit);
  });
  if (riskyTasks.length) {
    const longest = Math.max(...riskyTasks.map((t) => t.time_limit ?? w.task_time_limit ?? 0));
    out.push({
      rule: "time_limit_beyond_visibility_timeout",
      level: "risk",
      settings: [
        ...riskyTasks.slice(0, MAX_NAMED).map((t) => ({ name: `${t.name}: time_limit`, value: t.time_limit ?? w.task_time_limit })),
        { name: "acks_late", value: true },
        limitSetting,
      ],
      problem: `${named(riskyTasks.map((t) => t.name))} may run for up to ${longest} s with late acks, longer than the ${limit.seconds} s after which the broker hands their message to another worker: such a run is duplicated before its time limit stops it.`,
      fix: `Either ${raiseLimit(limit, longest)}, or give these tasks a time_limit below ${limit.seconds} (the task decorator or task_annotations).`,
      tasks: riskyTasks.slice(0, MAX_NAMED).map((t) => t.name),
    });
  }

  // Seen, not configured: tasks that did run longer than the limit, with late acks.
  const slow = runtimes.filter((r) => r.p99S > limit.seconds && acksLateFor(r.name) === true).sort((a, b) => b.p99S - a.p99S);
  if (slow.length) {
    const longest = slow[0]?.p99S ?? 0;
    out.push({
      rule: "runtime_beyond_visibility_timeout",
      level: "risk",
      settings: [limitSetting, { name: "task_acks_late", value: true }, ...slow.slice(0, MAX_NAMED).map((r) => ({ name: `${r.name}: p99 runtime (s)`, value: Math.round(r.p99S * 10) / 10 }))],
      problem: `${named(slow.map((r) => r.name))} ${slow.length === 1 ? "has" : "have"} run longer than ${limit.seconds} s here (p99 over the latest runs), with late acks: past ${limit.seconds} s the broker gives the unacknowledged message to another worker, which runs the task again.`,
      fix: `Either ${raiseLimit(limit, longest)}, or give these tasks a time_limit below ${limit.seconds}.`,
      tasks: slow.slice(0, MAX_NAMED).map((r) => r.name),
    });
  }

  const async = w.pool.kind === "gevent" || w.pool.kind === "eventlet";
  const multiplier = w.worker_prefetch_multiplier;
  if (multiplier === 0 || w.prefetch_count === 0) {
    out.push({
      rule: "prefetch_unbounded",
      level: "risk",
      settings: [
        { name: "worker_prefetch_multiplier", value: multiplier },
        { name: "prefetch_count", value: w.prefetch_count },
      ],
      problem: "The worker takes every message waiting in its queues at once, unacknowledged in one process: other workers starve, and when it dies they all wait for the visibility timeout (Redis) or are run again (late acks).",
      fix: "worker_prefetch_multiplier = 1 (or Celery's default, 4).",
    });
  } else if (async && multiplier !== null && multiplier > 1) {
    out.push({
      rule: "prefetch_on_async_pool",
      level: "risk",
      settings: [
        { name: "worker_pool", value: w.pool.kind },
        { name: "worker_concurrency", value: w.pool.concurrency },
        { name: "worker_prefetch_multiplier", value: multiplier },
        { name: "prefetch_count", value: w.prefetch_count },
      ],
      problem: `A ${w.pool.kind} pool of ${w.pool.concurrency ?? "?"} reserves ${multiplier} messages per greenlet${w.prefetch_count ? ` (${w.prefetch_count})` : ""} in one process: they wait behind any task that blocks its event loop, and all of them are stranded when that process dies.`,
      fix: "worker_prefetch_multiplier = 1 (the concurrency already keeps that many tasks in flight).",
    });
  }

  // ---- advice ----
  const off = (["worker_send_task_events", "task_send_sent_event", "task_track_started"] as const).filter((k) => w[k] === false);
  if (off.length) {
    out.push({
      rule: "task_events_off",
      level: "advice",
      settings: off.map((k) => ({ name: k, value: false })),
      problem: `${off.join(", ")} ${off.length === 1 ? "is" : "are"} off: Crisper ${off.includes("worker_send_task_events") ? "sees this worker's tasks only once it has switched events on remotely (enable_events), and loses them again at every restart until then" : "cannot see when tasks are sent or started"} (unless the worker runs with -E).`,
      fix: "worker_send_task_events = True\ntask_send_sent_event = True\ntask_track_started = True",
    });
  }
  const rejecting = w.task_acks_late === true && w.task_reject_on_worker_lost === true;
  const rejectingTasks = w.tasks.filter((t) => (t.acks_late ?? w.task_acks_late) === true && (t.reject_on_worker_lost ?? w.task_reject_on_worker_lost) === true).map((t) => t.name);
  if (rejecting || rejectingTasks.length) {
    out.push({
      rule: "acks_late_with_reject_on_worker_lost",
      level: "advice",
      settings: [
        { name: "task_acks_late", value: true },
        { name: "task_reject_on_worker_lost", value: true },
      ],
      problem: `A task whose pool process is killed (the OOM killer, a SIGKILL) goes back to the queue and runs again: fine for idempotent tasks only, and a task that kills its process runs again and again.`,
      fix: "Keep it only for idempotent tasks: task_reject_on_worker_lost = False, and acks_late=True, reject_on_worker_lost=True on those tasks alone.",
      ...(rejecting ? {} : { tasks: rejectingTasks.slice(0, MAX_NAMED) }),
    });
  }
  if (w.result_backend !== false && w.result_expires !== null && w.result_expires < SHORT_RESULT_EXPIRES_S) {
    out.push({
      rule: "short_result_expires",
      level: "advice",
      settings: [{ name: "result_expires", value: w.result_expires }],
      problem: `Results are deleted ${w.result_expires} s after a task ends: a client that asks later (AsyncResult.get, a chord's callback) finds PENDING, and Crisper cannot read final states back after an interruption of its event stream.`,
      fix: "result_expires = 86400 (Celery's default: one day).",
    });
  }
  return out;
}
