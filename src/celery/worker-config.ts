/**
 * A worker's configuration as it tells it over remote control: `conf`
 * (with defaults: `app.conf.table()`, celery/worker/control.py), `stats`
 * (pool, broker, prefetch count, rusage) and `registered` with the task
 * attributes that decide redelivery (time limits, late acks). The replies
 * come from whoever can write to the broker: every field is validated on its
 * own (a junk field is unknown, never a crash) and the result is a small,
 * bounded subset — never the whole dump, which also names URLs and paths.
 * Shapes: test/fixtures/worker-config/*.json (real Celery 5.2 replies).
 */
import { z } from "zod";

/** `registered`'s task attributes Crisper asks for (Celery's `taskinfoitems`). */
export const TASK_INFO_ITEMS = ["time_limit", "soft_time_limit", "acks_late", "reject_on_worker_lost"] as const;

/** The three requests, in the order they are sent. */
export const CONFIG_REQUESTS = [
  { method: "conf", arguments: { with_defaults: true } },
  { method: "stats", arguments: {} },
  { method: "registered", arguments: { taskinfoitems: [...TASK_INFO_ITEMS] } },
] as const;

/** Tasks kept per worker: only those whose own settings differ from the worker's. */
const MAX_TASKS = 200;
const MAX_NAME = 255;
/** `registered` lines read per worker. */
const MAX_REGISTERED = 2000;

export type PoolKind = "prefork" | "solo" | "threads" | "gevent" | "eventlet" | "unknown";
export const POOL_KINDS: readonly PoolKind[] = ["prefork", "solo", "threads", "gevent", "eventlet", "unknown"];

/** A task whose own time limit or acknowledgement differs from the worker's settings (decorator options or task_annotations). */
export interface TaskOverride {
  name: string;
  time_limit: number | null;
  soft_time_limit: number | null;
  acks_late: boolean | null;
  reject_on_worker_lost: boolean | null;
}

/** What Crisper keeps of a worker's configuration (the API's `config`, less the memory history). */
export interface WorkerSettings {
  pool: {
    kind: PoolKind;
    /** `-c`: processes, threads or greenlets. */
    concurrency: number | null;
    /** Prefork's `max-tasks-per-child`; null when unset ("N/A"). */
    max_tasks_per_child: number | null;
  };
  /** The worker's current QoS: multiplier × concurrency (0: unbounded). ETA tasks raise it for a while. */
  prefetch_count: number | null;
  /** Peak resident memory of the worker's main process, KiB (Linux `ru_maxrss`). */
  maxrss_kb: number | null;
  uptime_s: number | null;
  /** kombu's transport: `redis`, `amqp`, … */
  transport: string | null;
  /** `broker_transport_options.visibility_timeout` as the worker has it; null when unset (kombu's default 3600 then applies on Redis). */
  visibility_timeout_s: number | null;
  task_acks_late: boolean | null;
  task_reject_on_worker_lost: boolean | null;
  /** The hard time limit for every task, seconds; null: none. */
  task_time_limit: number | null;
  task_soft_time_limit: number | null;
  worker_prefetch_multiplier: number | null;
  worker_send_task_events: boolean | null;
  task_send_sent_event: boolean | null;
  task_track_started: boolean | null;
  /** Seconds; null: never (or unknown). */
  result_expires: number | null;
  /** Whether a result backend is configured (its URL is never kept). */
  result_backend: boolean | null;
  worker_max_memory_per_child: number | null;
  tasks: TaskOverride[];
  /** Tasks the worker has registered (its `registered` reply's length). */
  registered_tasks: number;
}

// ---- field readers: each falls back to null on junk, so one bad field loses only itself ----

/**
 * Numbers as far as a worker could mean them: past a billion (seconds: 31
 * years) a value is junk, and would make dates Crisper cannot write (a
 * visibility timeout of 1e308 s puts the redelivery time out of range).
 */
const MAX_NUMBER = 1e9;
const num = z.number().min(-MAX_NUMBER).max(MAX_NUMBER).nullable().catch(null);
const bool = z.boolean().nullable().catch(null);
const count = z.number().int().min(0).max(1e9).nullable().catch(null);
/** Short plain text: no control character or lone surrogate, which PostgreSQL's jsonb refuses (a NUL) or JSON cannot carry. */
const shortText = z
  .string()
  .max(64)
  .regex(/^[^\u0000-\u001f\u007f-\u009f\ud800-\udfff]*$/u)
  .nullable()
  .catch(null);

/**
 * A duration as Celery's `conf` reply writes it: seconds, or a timedelta's
 * str() (`"1 day, 0:00:00"`, `"2 days, 3:04:05.5"`, `"0:05:00"`).
 */
export function durationSeconds(v: unknown): number | null {
  if (typeof v === "number") return Number.isFinite(v) && Math.abs(v) <= MAX_NUMBER ? v : null;
  if (typeof v !== "string" || v.length > 40) return null;
  const m = /^(?:(-?\d+) days?, )?(\d+):(\d\d):(\d\d(?:\.\d+)?)$/.exec(v);
  if (!m) return null;
  const s = Number(m[1] ?? 0) * 86_400 + Number(m[2]) * 3600 + Number(m[3]) * 60 + Number(m[4]);
  return Math.abs(s) <= MAX_NUMBER ? s : null;
}

/** A number of seconds where 0 and negative mean "none" (time limits). */
const limit = (v: unknown) => {
  const s = durationSeconds(v);
  return s !== null && s > 0 ? s : null;
};

const ConfReply = z.looseObject({
  task_acks_late: bool,
  task_reject_on_worker_lost: bool,
  task_time_limit: z.unknown().optional().transform(limit),
  task_soft_time_limit: z.unknown().optional().transform(limit),
  worker_prefetch_multiplier: num,
  worker_send_task_events: bool,
  task_send_sent_event: bool,
  task_track_started: bool,
  result_expires: z.unknown().optional().transform((v) => durationSeconds(v)),
  result_backend: z.unknown().optional().transform((v) => (v === undefined ? null : typeof v === "string" && v.length > 0)),
  worker_max_memory_per_child: num,
  worker_max_tasks_per_child: num,
  worker_pool: shortText,
  broker_transport_options: z.looseObject({ visibility_timeout: num }).nullable().catch(null),
});

const StatsReply = z.looseObject({
  uptime: num,
  prefetch_count: count,
  pool: z
    .looseObject({
      "max-concurrency": count,
      "max-tasks-per-child": count,
      implementation: shortText,
      processes: z.array(z.unknown()).max(100_000).nullable().catch(null),
      writes: z.unknown().optional(),
      threads: z.unknown().optional(),
      "free-threads": z.unknown().optional(),
      timeouts: z.array(z.unknown()).max(2).nullable().catch(null),
    })
    .nullable()
    .catch(null),
  broker: z.looseObject({ transport: shortText, transport_options: z.looseObject({ visibility_timeout: num }).nullable().catch(null) }).nullable().catch(null),
  rusage: z.looseObject({ maxrss: count }).nullable().catch(null),
});

type Stats = z.infer<typeof StatsReply>;

/**
 * Which pool runs the tasks. `conf`'s `worker_pool` misses the command
 * line's `-P` (a gevent worker started with `-P gevent` still says
 * "prefork"), so the shape of `stats.pool` decides, as Celery 5.2 writes it:
 * prefork lists `processes` and `writes`, solo one process and no writes,
 * threads counts `threads`, eventlet `free-threads`, gevent only
 * `max-concurrency`. Newer Celery names the `implementation`.
 */
export function poolKind(pool: Stats["pool"], confPool: string | null): PoolKind {
  // `celery.concurrency.thread:TaskPool` is the threads pool; conf says "threads".
  const named = `${pool?.implementation ?? ""} ${confPool ?? ""}`;
  for (const [word, kind] of [["gevent", "gevent"], ["eventlet", "eventlet"], ["thread", "threads"], ["solo", "solo"]] as const) if (named.includes(word)) return kind;
  if (!pool) return "unknown";
  if (pool.processes && pool.writes !== undefined) return "prefork";
  if (pool.processes) return "solo";
  if (pool.threads !== undefined) return "threads";
  if (pool["free-threads"] !== undefined) return "eventlet";
  // Celery 5.2's gevent pool keeps the base pool's info: max-concurrency alone.
  if (pool["max-concurrency"] !== null && pool.timeouts === null && pool["max-tasks-per-child"] === null) return "gevent";
  return "unknown";
}

/**
 * One line of a `registered` reply: `"app.tasks.charge [time_limit=7200 acks_late=True]"`
 * (values are Python's str()); a line without brackets has no attribute set.
 */
export function parseRegistered(line: unknown): TaskOverride | null {
  if (typeof line !== "string" || line.length > 2000) return null;
  const open = line.lastIndexOf(" [");
  const bracketed = open > 0 && line.endsWith("]");
  const name = (bracketed ? line.slice(0, open) : line).trim();
  // A task name is one word (module path and function); what is not is junk.
  if (!name || name.length > MAX_NAME || !/^[^\s\u0000-\u001f\u007f-\u009f[\]\ud800-\udfff]+$/u.test(name)) return null;
  const task: TaskOverride = { name, time_limit: null, soft_time_limit: null, acks_late: null, reject_on_worker_lost: null };
  if (!bracketed) return task;
  for (const pair of line.slice(open + 2, -1).split(" ")) {
    const eq = pair.indexOf("=");
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    if (key === "time_limit" || key === "soft_time_limit") {
      const n = Number(value);
      task[key] = n > 0 && n <= MAX_NUMBER ? n : null;
    } else if (key === "acks_late" || key === "reject_on_worker_lost") {
      task[key] = value === "True" ? true : value === "False" ? false : null;
    }
  }
  return task;
}

/** A reply that is a worker's error (`{"error": "..."}`) or absent is no reply. */
const isReply = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v) && !("error" in v && Object.keys(v).length === 1);

/**
 * A worker's settings from its three replies; null when neither `conf` nor
 * `stats` came (an older or busy worker: asked again next time).
 */
export function workerSettings(replies: { conf?: unknown; stats?: unknown; registered?: unknown }): WorkerSettings | null {
  const hasConf = isReply(replies.conf);
  const hasStats = isReply(replies.stats);
  if (!hasConf && !hasStats) return null;
  const conf = ConfReply.safeParse(hasConf ? replies.conf : {}).data ?? ConfReply.parse({});
  const stats = StatsReply.safeParse(hasStats ? replies.stats : {}).data ?? StatsReply.parse({});
  // prefork's `timeouts` are the limits in force, the command line's (`--time-limit`) included.
  const [softInForce, hardInForce] = (stats.pool?.timeouts ?? []).map(limit);
  const registered = Array.isArray(replies.registered) ? replies.registered.slice(0, MAX_REGISTERED) : [];
  const tasks = registered.map(parseRegistered).filter((t): t is TaskOverride => t !== null);
  const taskTimeLimit = conf.task_time_limit ?? hardInForce ?? null;
  const acksLate = conf.task_acks_late;
  const rejectOnWorkerLost = conf.task_reject_on_worker_lost ?? false;
  // Only what differs from the worker's own settings is worth keeping.
  const overrides = tasks.filter(
    (t) =>
      (t.time_limit !== null && t.time_limit !== taskTimeLimit) ||
      (t.soft_time_limit !== null && t.soft_time_limit !== (conf.task_soft_time_limit ?? softInForce ?? null)) ||
      (t.acks_late !== null && acksLate !== null && t.acks_late !== acksLate) ||
      (t.reject_on_worker_lost !== null && t.reject_on_worker_lost !== rejectOnWorkerLost),
  );
  const maxPerChild = stats.pool?.["max-tasks-per-child"] ?? conf.worker_max_tasks_per_child;
  return {
    pool: {
      kind: poolKind(stats.pool, conf.worker_pool),
      concurrency: stats.pool?.["max-concurrency"] ?? null,
      max_tasks_per_child: maxPerChild !== null && maxPerChild > 0 ? maxPerChild : null,
    },
    prefetch_count: stats.prefetch_count,
    maxrss_kb: stats.rusage?.maxrss ?? null,
    uptime_s: stats.uptime,
    transport: stats.broker?.transport ?? null,
    visibility_timeout_s: positive(conf.broker_transport_options?.visibility_timeout ?? stats.broker?.transport_options?.visibility_timeout ?? null),
    task_acks_late: acksLate,
    task_reject_on_worker_lost: conf.task_reject_on_worker_lost,
    task_time_limit: taskTimeLimit,
    task_soft_time_limit: conf.task_soft_time_limit ?? softInForce ?? null,
    worker_prefetch_multiplier: conf.worker_prefetch_multiplier,
    worker_send_task_events: conf.worker_send_task_events,
    task_send_sent_event: conf.task_send_sent_event,
    task_track_started: conf.task_track_started,
    result_expires: conf.result_expires !== null && conf.result_expires > 0 ? conf.result_expires : null,
    result_backend: conf.result_backend,
    worker_max_memory_per_child: positive(conf.worker_max_memory_per_child),
    tasks: overrides.slice(0, MAX_TASKS),
    registered_tasks: tasks.length,
  };
}

const positive = (n: number | null) => (n !== null && n > 0 ? n : null);
