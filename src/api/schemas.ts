/**
 * What the JSON API takes and returns (CONTRACT.md), as zod schemas: the
 * requests are validated through them (src/http/errors.ts, `validated`), the
 * answers are typed by them (serialize.ts), the pages and the Slack messages
 * take the same types, and the OpenAPI document is generated from them.
 *
 * Query strings come as text: each parameter's schema reads the text and
 * turns it into what the store's queries take, with a message that says what
 * was expected. An empty parameter counts as absent (an HTML form sends every
 * field, empty or not). So a request schema is documented as what it takes
 * (`z.toJSONSchema(s, { io: "input" })`), an answer as what it gives.
 */
import { z } from "zod";
import { ALERT_KINDS, type AlertKind, isAlertKind } from "../alerts/kinds.ts";
import { TASK_STATES, type TaskState, isTaskState } from "../celery/states.ts";
import { parseCron } from "../detect/cron.ts";
import { decodeCursor } from "../store/queries/cursor.ts";

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 500;
const MAX_TEXT = 255;

/** Signals a worker may send to a pool process. */
export const REVOKE_SIGNALS = ["SIGTERM", "SIGKILL", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2"] as const;
export const ALERT_STATUSES = ["open", "resolved", "all"] as const;
/** Why a REVOKED task was revoked, where Celery says: `expired` (task-revoked with expired: true). */
export const REVOKED_REASONS = ["expired"] as const;
export type RevokedReason = (typeof REVOKED_REASONS)[number];

const ALERT_KIND_NAMES = Object.keys(ALERT_KINDS).join(", ");

// ---- building blocks ------------------------------------------------------------------------

/** An instant, ISO 8601 UTC (`2026-11-24T12:00:00.000Z`). */
const instant = z.iso.datetime().meta({ example: "2026-11-24T12:00:00.000Z" });
const maybeInstant = instant.nullable();

/** What a caller sent, shortened, for a message that says what was wrong. */
const shown = (v: string) => JSON.stringify(v.slice(0, 40));

/**
 * Text a person or a worker could have written: no control character (C0,
 * DEL, C1: a NUL would make PostgreSQL refuse the query, a newline would
 * forge log lines) and no half of a UTF-16 surrogate pair (JSON's "\ud800"
 * decodes to one; it is not text). With the `u` flag a whole pair is one
 * code point, outside the class; a lone half is inside it.
 */
const PLAIN = /^[^\u0000-\u001f\u007f-\u009f\ud800-\udfff]*$/u;
const PLAIN_PROBLEM = "control characters and lone surrogates are not allowed";

/** A name, id, hostname or search: plain text of at most 255 characters. */
const plainText = () => z.string().max(MAX_TEXT, `at most ${MAX_TEXT} characters`).regex(PLAIN, PLAIN_PROBLEM);
const isPlainText = (v: string) => v.length <= MAX_TEXT && PLAIN.test(v);

/** Adds the issue and gives up on this value. */
function invalid(ctx: z.RefinementCtx, message: string): never {
  ctx.addIssue({ code: "custom", message });
  return z.NEVER;
}

/** A text filter: at most 255 characters; empty is no filter. */
const textParam = (description: string) =>
  plainText()
    .optional()
    .transform((v) => v || undefined)
    .meta({ description });

/** ISO 8601, or unix seconds. */
const timeParam = (description: string) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (!v) return undefined;
      const n = Number(v);
      const d = Number.isFinite(n) && /^\d+(\.\d+)?$/.test(v) ? new Date(n * 1000) : new Date(v);
      return Number.isNaN(d.getTime()) ? invalid(ctx, `expected an ISO 8601 time or unix seconds, got ${shown(v)}`) : d;
    })
    .meta({ description: `${description}: ISO 8601, or unix seconds`, example: "2026-11-24T12:00:00Z" });

/** How many to return: default 50; more than 500 is 500. Digits only: not `1e3`, `-1`, `2.5` or ` 5`. */
const limitParam = z
  .string()
  .optional()
  .transform((v, ctx) => {
    if (!v) return DEFAULT_LIMIT;
    const n = Number(v);
    if (!/^[0-9]+$/.test(v) || n < 1) return invalid(ctx, `expected a whole number from 1 to ${MAX_LIMIT}, got ${shown(v)}`);
    return Math.min(n, MAX_LIMIT);
  })
  .meta({ description: `How many to return, 1 to ${MAX_LIMIT} (default ${DEFAULT_LIMIT}; more is taken as ${MAX_LIMIT}).`, example: "50" });

// ---- requests ---------------------------------------------------------------------------------

/** `/api/tasks/{id}`: Celery's task id. */
export const TaskIdParams = z.object({
  id: plainText().meta({ description: "Celery's task id", example: "6f1c0d6e-8e4b-4c6a-9d1e-2f3a4b5c6d7e" }),
});

/** `broker=`: one watched broker's records (its name in BROKERS; "default" for BROKER_URL alone). */
const brokerParam = z
  .string()
  .optional()
  .transform((v, ctx) => {
    if (!v) return undefined;
    return /^[a-z0-9_-]{1,32}$/.test(v) ? v : invalid(ctx, `expected a broker's name from BROKERS (a-z 0-9 _ -, at most 32), got ${shown(v)}`);
  })
  .meta({ description: "A broker's name (BROKERS; `default` when only BROKER_URL is set).", example: "default" });

/** `GET /api/workers`, `GET /api/queues` and their pages: one broker's. */
export const BrokerQuery = z.object({ broker: brokerParam });

/** `GET /api/tasks` and the tasks page: filters, newest first, paged by cursor. */
export const TaskListQuery = z.object({
  name: textParam("The task's name, exactly (`app.tasks.charge`)."),
  state: z
    .string()
    .optional()
    .transform((v, ctx): TaskState | undefined => {
      if (!v) return undefined;
      const s = v.toUpperCase();
      return isTaskState(s) ? s : invalid(ctx, `expected one of ${TASK_STATES.join(", ")}, got ${shown(v)}`);
    })
    .meta({ description: `Celery's state, any case: ${TASK_STATES.join(", ")}.`, example: "FAILURE" }),
  worker: textParam("The worker's hostname (`celery@web-1`)."),
  queue: textParam("The queue it was sent to."),
  reason: z
    .string()
    .optional()
    .transform((v, ctx): RevokedReason | undefined => {
      if (!v) return undefined;
      return (REVOKED_REASONS as readonly string[]).includes(v) ? (v as RevokedReason) : invalid(ctx, `expected ${REVOKED_REASONS.join(" or ")}, got ${shown(v)}`);
    })
    .meta({ description: "Why it was revoked: `expired` (a worker took it after its `expires` and discarded it unrun).", example: "expired" }),
  broker: brokerParam,
  q: textParam("Text searched in the id, name, args, kwargs and exception."),
  since: timeParam("First seen at or after"),
  until: timeParam("First seen at or before"),
  limit: limitParam,
  cursor: z
    .string()
    .max(MAX_TEXT, `at most ${MAX_TEXT} characters`)
    .optional()
    .transform((v, ctx) => {
      if (!v) return null;
      const cursor = decodeCursor(v);
      // It came back from the client: its parts go into a query, so they are checked like any other parameter.
      if (!cursor || !POSTGRES_TIMESTAMP.test(cursor.at) || !isPlainText(cursor.id)) {
        return invalid(ctx, "not a cursor this server gave out (use next_cursor from the previous page)");
      }
      return cursor;
    })
    .meta({ description: "`next_cursor` of the previous page." }),
});
export type TaskListQuery = z.output<typeof TaskListQuery>;

/** A timestamp as PostgreSQL prints it (a task cursor's sort key): `2026-11-24 12:00:00.123456+00`. */
const POSTGRES_TIMESTAMP = /^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d{1,6})?([+-]\d\d(:\d\d)?|Z)?$/;

/** `/workers/{hostname}` (the worker's page). */
export const WorkerParams = z.object({
  hostname: plainText().meta({ description: "The worker's hostname", example: "celery@web-1" }),
});

/** Which alerts: `GET /api/alerts` and the alerts page. */
export const AlertFilter = z.object({
  status: z
    .union([z.enum(ALERT_STATUSES), z.literal("")], { error: "expected open, resolved or all" })
    .optional()
    .transform((v) => v || "open")
    .meta({ description: "open (default), resolved or all." }),
  kind: z
    .string()
    .optional()
    .transform((v, ctx): AlertKind | undefined => {
      if (!v) return undefined;
      return isAlertKind(v) ? v : invalid(ctx, `expected one of ${ALERT_KIND_NAMES}`);
    })
    .meta({ description: `One kind: ${ALERT_KIND_NAMES}.`, example: "task_lost" }),
  broker: brokerParam,
});
export type AlertFilter = z.output<typeof AlertFilter>;

/** `GET /api/alerts`: newest first, paged by cursor. */
export const AlertListQuery = AlertFilter.extend({
  limit: limitParam,
  cursor: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (!v) return undefined;
      // Exactly what alertCursor gives out: base64url of a whole number (Buffer's decoder skips what is not base64).
      const text = /^[A-Za-z0-9_-]{1,24}$/.test(v) ? Buffer.from(v, "base64url").toString("utf8") : "";
      const beforeId = /^[0-9]{1,15}$/.test(text) ? Number(text) : NaN;
      return Number.isSafeInteger(beforeId) ? beforeId : invalid(ctx, "not a cursor from this API");
    })
    .meta({ description: "`next_cursor` of the previous page." }),
});

/** The opaque cursor of an alerts page: the id of its last alert. */
export const alertCursor = (id: number) => Buffer.from(String(id)).toString("base64url");

const revokeSignal = z
  .string({ error: `expected one of ${REVOKE_SIGNALS.join(", ")}` })
  .toUpperCase()
  .pipe(z.enum(REVOKE_SIGNALS, { error: `expected one of ${REVOKE_SIGNALS.join(", ")}` }))
  .default("SIGTERM")
  .meta({ description: `The signal for the pool process running it, with terminate: ${REVOKE_SIGNALS.join(", ")} (any case).`, example: "SIGTERM" });

/** `POST /api/tasks/{id}/revoke`. */
export const RevokeBody = z
  .object(
    {
      terminate: z
        .boolean({ error: "expected true or false" })
        .default(false)
        .meta({ description: "Also stop it if a worker is running it (Celery's `terminate`)." }),
      signal: revokeSignal,
    },
    { error: 'expected a JSON object: {"terminate": bool, "signal": "SIGTERM"}' },
  )
  .meta({ example: { terminate: true, signal: "SIGTERM" } });
export type RevokeRequest = z.output<typeof RevokeBody>;

/** The revoke form on a task's page: a checkbox and a signal. */
export const RevokeForm = z.object({
  terminate: z
    .string()
    .optional()
    .transform((v) => v === "1"),
  signal: revokeSignal,
});

const scheduleName = "expected a non-empty string (at most 255 characters)";
const taskName = "expected the Celery task name";

/** `POST /api/schedules`: a periodic task to watch, every so many seconds or by cron (in BEAT_TIMEZONE). */
export const ScheduleBody = z
  .object(
    {
      name: z.string({ error: scheduleName }).trim().min(1, scheduleName).max(MAX_TEXT, scheduleName).regex(PLAIN, PLAIN_PROBLEM).meta({ example: "nightly" }),
      task: z.string({ error: taskName }).trim().min(1, taskName).max(MAX_TEXT, taskName).regex(PLAIN, PLAIN_PROBLEM).meta({ example: "app.tasks.report" }),
      every_s: z
        .number({ error: "expected a positive number of seconds" })
        .positive("expected a positive number of seconds")
        .max(366 * 86_400, "at most a year (31622400 seconds)")
        .optional()
        .meta({ description: "Every so many seconds.", example: 86400 }),
      cron: z
        .string({ error: "expected a string" })
        .trim()
        .superRefine((v, ctx) => {
          try {
            parseCron(v);
          } catch (e) {
            ctx.addIssue({ code: "custom", message: e instanceof Error ? e.message : String(e) });
          }
        })
        .optional()
        .meta({ description: "minute hour day month weekday, in BEAT_TIMEZONE (instead of every_s).", example: "0 3 * * *" }),
    },
    { error: 'expected a JSON object: {"name": "nightly", "task": "app.tasks.report", "every_s": 86400} or "cron": "0 3 * * *"' },
  )
  .refine((s) => (s.every_s === undefined) !== (s.cron === undefined), "give either every_s (seconds) or cron (minute hour day month weekday, in BEAT_TIMEZONE)")
  .meta({ example: { name: "nightly", task: "app.tasks.report", cron: "0 3 * * *" } });

/** `DELETE /api/schedules/{name}`. */
export const ScheduleNameParams = z.object({ name: plainText().meta({ description: "The schedule's name", example: "nightly" }) });

// ---- answers ----------------------------------------------------------------------------------

export const Execution = z
  .object({
    worker: z.string(),
    retries: z.number().int().nullable(),
    received_at: maybeInstant,
    started_at: maybeInstant,
    finished_at: maybeInstant,
    state: z.enum(TASK_STATES),
  })
  .meta({ id: "Execution", description: "One time a worker ran the task. Two at the same `retries` count is a duplicate execution." });
export type Execution = z.infer<typeof Execution>;

export const Alert = z
  .object({
    id: z.number().int(),
    kind: z.string().meta({ description: `One of ${ALERT_KIND_NAMES}.`, example: "task_lost" }),
    subject: z.string().meta({ description: "What it is about: a task id, a hostname, a queue, a schedule name (by kind)." }),
    severity: z.string().meta({ description: "critical or warning" }),
    status: z.enum(["open", "resolved"]),
    opened_at: instant,
    updated_at: instant,
    resolved_at: maybeInstant,
    summary: z.string(),
    details: z.record(z.string(), z.unknown()),
    broker: z.string().meta({ description: "The broker it is about (BROKERS; `default`)." }),
  })
  .meta({ id: "Alert" });
export type Alert = z.infer<typeof Alert>;

export const Task = z
  .object({
    id: z.string(),
    name: z.string().nullable(),
    state: z.enum(TASK_STATES).meta({ description: "Celery's state. PENDING: sent, not yet received." }),
    worker: z.string().nullable(),
    queue: z.string().nullable(),
    routing_key: z.string().nullable(),
    args: z.string().nullable().meta({ description: "As the worker printed them (repr); untrusted." }),
    kwargs: z.string().nullable(),
    result: z.string().nullable(),
    exception: z.string().nullable(),
    traceback: z.string().nullable(),
    retries: z.number().int().nullable(),
    root_id: z.string().nullable(),
    parent_id: z.string().nullable(),
    eta: z.string().nullable(),
    expires: z.string().nullable(),
    revoked_reason: z
      .enum(REVOKED_REASONS)
      .nullable()
      .meta({ description: "For a REVOKED task, why, where Celery says: `expired` — it expired in the queue before a worker took it." }),
    sent_at: maybeInstant,
    received_at: maybeInstant,
    started_at: maybeInstant,
    finished_at: maybeInstant,
    runtime_s: z.number().nullable(),
    first_seen_at: maybeInstant,
    last_event_at: maybeInstant,
    executions: z.array(Execution),
    alerts: z.array(Alert).meta({ description: "Its alerts, open and resolved (on GET /api/tasks/{id}; empty in lists)." }),
    retry_of: z.string().nullable().optional().meta({ description: "The task an admin retried to send this one (on GET /api/tasks/{id})." }),
    retried_as: z.array(z.string()).optional().meta({ description: "The tasks sent as retries of this one, oldest first (on GET /api/tasks/{id})." }),
    broker: z.string().meta({ description: "The broker it was sent through (BROKERS; `default`)." }),
  })
  .meta({ id: "Task" });
export type Task = z.infer<typeof Task>;

export const Event = z
  .looseObject({
    type: z.string().meta({ description: "Celery's event type", example: "task-started" }),
    hostname: z.string(),
    timestamp: maybeInstant,
    local_received: maybeInstant,
    source: z.string().meta({ description: "`events` (the event stream) or `result-backend`." }),
  })
  .meta({ id: "Event", description: "A task event as it came, with its other fields." });
export type Event = z.infer<typeof Event>;

const HeldTask = z.object({ id: z.string(), name: z.string().nullable() });

export const Worker = z
  .object({
    hostname: z.string(),
    status: z.enum(["online", "offline"]),
    offline_reason: z.enum(["shutdown", "heartbeat_lost"]).nullable(),
    last_heartbeat_at: maybeInstant,
    freq_s: z.number().nullable(),
    active: z.number().int().nullable(),
    processed: z.number().int().nullable(),
    reserved: z.number().int().nullable(),
    loadavg: z.array(z.number()).nullable(),
    pid: z.number().int().nullable(),
    sw_ident: z.string().nullable(),
    sw_ver: z.string().nullable(),
    sw_sys: z.string().nullable(),
    online_since: maybeInstant,
    offline_at: maybeInstant,
    first_seen_at: maybeInstant,
    inspected_at: maybeInstant,
    reserved_tasks: z.array(HeldTask).meta({ description: "Prefetched, not started, when last asked (inspected_at)." }),
    active_tasks: z.array(HeldTask),
    broker: z.string().meta({ description: "The broker it consumes from (BROKERS; `default`): a hostname is unique per broker." }),
  })
  .meta({ id: "Worker" });
export type Worker = z.infer<typeof Worker>;

export const Queue = z
  .object({
    name: z.string(),
    depth: z.number().int().meta({ description: "Waiting messages, all priorities." }),
    by_priority: z.record(z.string(), z.number()),
    unacked: z.number().int().meta({ description: "Delivered to a worker, not yet acknowledged." }),
    oldest_unacked_age_s: z.number().nullable(),
    sampled_at: maybeInstant,
    broker: z.string().meta({ description: "The broker it lives on (BROKERS; `default`): a queue name is unique per broker." }),
  })
  .meta({ id: "Queue" });
export type Queue = z.infer<typeof Queue>;

export const Schedule = z
  .object({
    name: z.string(),
    task: z.string(),
    expected_interval_s: z.number().nullable(),
    cron: z.string().nullable(),
    source: z.string().meta({ description: "configured, api or learned" }),
    last_seen_at: maybeInstant,
    next_due_at: maybeInstant,
    status: z.string().meta({ description: "ok, late or missed" }),
    broker: z.string().meta({ description: "The broker whose tasks it was learned from (declared: the first broker)." }),
  })
  .meta({ id: "Schedule" });
export type Schedule = z.infer<typeof Schedule>;

const bytes = (description: string) => z.number().nullable().meta({ description });

/** One point of a broker's history (the /broker page's chart). */
export const BrokerHistoryPoint = z.object({
  at: instant,
  used_memory_bytes: z.number().nullable(),
  evicted_keys: z.number().nullable(),
  ops_per_second: z.number().nullable(),
});
export type BrokerHistoryPoint = z.infer<typeof BrokerHistoryPoint>;

export const BrokerHealth = z
  .object({
    broker: z.string().meta({ description: "The broker's name: `default` for BROKER_URL.", example: "default" }),
    kind: z.enum(["redis", "rabbitmq"]),
    version: z.string().nullable(),
    uptime_s: z.number().nullable(),
    used_memory_bytes: bytes("Memory in use (Redis `used_memory`, RabbitMQ `mem_used`)."),
    max_memory_bytes: bytes("The limit: Redis `maxmemory` (null: none), RabbitMQ's memory high watermark."),
    memory_used_ratio: z.number().nullable().meta({ description: "used / max, when there is a limit. broker_memory_high opens at 0.8." }),
    max_memory_policy: z
      .string()
      .nullable()
      .meta({ description: "Redis `maxmemory-policy`; anything but `noeviction` with a maxmemory may evict Celery's keys.", example: "noeviction" }),
    eviction_possible: z.boolean().meta({ description: "Redis has a maxmemory and a policy other than noeviction (broker_eviction_risk)." }),
    connected_clients: z.number().int().nullable(),
    ops_per_second: z.number().nullable().meta({ description: "Redis `instantaneous_ops_per_sec`; RabbitMQ: messages published per second." }),
    evicted_keys: z.number().nullable().meta({ description: "Redis: keys evicted since the server started." }),
    memory_alarm: z.boolean().nullable().meta({ description: "RabbitMQ: the memory alarm is raised (publishers blocked)." }),
    disk_alarm: z.boolean().nullable().meta({ description: "RabbitMQ: the disk alarm is raised (publishers blocked)." }),
    disk_free_bytes: z.number().nullable(),
    sampled_at: instant,
    history: z.array(BrokerHistoryPoint).meta({ description: "The last hour's samples, oldest first." }),
  })
  .meta({ id: "BrokerHealth" });
export type BrokerHealth = z.infer<typeof BrokerHealth>;

// ---- whole answers ----------------------------------------------------------------------------

export const TaskAnswer = z.object({ task: Task, events: z.array(Event) });
export type TaskAnswer = z.infer<typeof TaskAnswer>;
export const TaskList = z.object({ tasks: z.array(Task), next_cursor: z.string().nullable() });
export type TaskList = z.infer<typeof TaskList>;
export const WorkerList = z.object({ workers: z.array(Worker) });
export type WorkerList = z.infer<typeof WorkerList>;
export const QueueList = z.object({ queues: z.array(Queue) });
export type QueueList = z.infer<typeof QueueList>;
export const AlertList = z.object({ alerts: z.array(Alert), next_cursor: z.string().nullable() });
export type AlertList = z.infer<typeof AlertList>;
export const ScheduleList = z.object({ schedules: z.array(Schedule) });
export const BrokerAnswer = z.object({ brokers: z.array(BrokerHealth) });
export type BrokerAnswer = z.infer<typeof BrokerAnswer>;
export type ScheduleList = z.infer<typeof ScheduleList>;
export const ScheduleDeclared = z.object({ schedule: Schedule });
export type ScheduleDeclared = z.infer<typeof ScheduleDeclared>;
export const ScheduleDeleted = z.object({ deleted: z.string() });
export type ScheduleDeleted = z.infer<typeof ScheduleDeleted>;
export const RevokeAnswer = z.object({
  task_id: z.string(),
  known: z.boolean().meta({ description: "Whether Crisper has seen this task (a revoke is sent either way)." }),
  terminate: z.boolean(),
  signal: z.enum(REVOKE_SIGNALS),
  acknowledged_by: z.array(z.string()).meta({ description: "Workers that acknowledged the revoke within 1.5 s." }),
});
export type RevokeAnswer = z.infer<typeof RevokeAnswer>;
/** Every error: `{"error": "…"}`, with a `hint` where there is more to say. */
export const ErrorAnswer = z.looseObject({ error: z.string(), hint: z.string().optional() }).meta({ id: "Error" });

// ---- a worker's configuration (GET /api/workers/{hostname}) ---------------------------------

const seconds = z.number().nullable();

export const ConfigFinding = z
  .object({
    rule: z.string().meta({ example: "time_limit_beyond_visibility_timeout" }),
    level: z.enum(["risk", "advice"]).meta({ description: "risk: opens config_risk (duplicates or lost work); advice: shown, never alerted." }),
    settings: z.array(z.object({ name: z.string(), value: z.union([z.string(), z.number(), z.boolean(), z.null()]) })).meta({ description: "The settings that make it, with the worker's values." }),
    problem: z.string(),
    fix: z.string().meta({ description: "Celery settings to change, one per line." }),
    tasks: z.array(z.string()).optional().meta({ description: "The task names concerned, when it is about some tasks only." }),
  })
  .meta({ id: "ConfigFinding" });
export type ConfigFinding = z.infer<typeof ConfigFinding>;

export const WorkerConfig = z
  .object({
    read_at: instant.meta({ description: "When the worker answered `conf` and `stats`." }),
    pool: z.object({
      kind: z.enum(["prefork", "solo", "threads", "gevent", "eventlet", "unknown"]),
      concurrency: z.number().int().nullable(),
      max_tasks_per_child: z.number().int().nullable(),
    }),
    prefetch_count: z.number().int().nullable().meta({ description: "The worker's QoS now: worker_prefetch_multiplier × concurrency; 0 is unbounded." }),
    maxrss_kb: z.number().nullable().meta({ description: "Peak resident memory of the main process, KiB (rusage maxrss)." }),
    uptime_s: seconds,
    transport: z.string().nullable(),
    visibility_timeout_s: seconds.meta({ description: "broker_transport_options.visibility_timeout as the worker reports it; it replaces BROKER_VISIBILITY_TIMEOUT for its tasks." }),
    task_acks_late: z.boolean().nullable(),
    task_reject_on_worker_lost: z.boolean().nullable(),
    task_time_limit: seconds,
    task_soft_time_limit: seconds,
    worker_prefetch_multiplier: z.number().nullable(),
    worker_send_task_events: z.boolean().nullable(),
    task_send_sent_event: z.boolean().nullable(),
    task_track_started: z.boolean().nullable(),
    result_expires: seconds,
    result_backend: z.boolean().nullable().meta({ description: "Whether a result backend is configured (its URL is not kept)." }),
    worker_max_memory_per_child: z.number().nullable(),
    tasks: z
      .array(z.object({ name: z.string(), time_limit: seconds, soft_time_limit: seconds, acks_late: z.boolean().nullable(), reject_on_worker_lost: z.boolean().nullable() }))
      .meta({ description: "Tasks whose own settings differ from the worker's (decorator options, task_annotations)." }),
    registered_tasks: z.number().int(),
    memory: z.array(z.object({ at: instant, maxrss_kb: z.number() })).meta({ description: "maxrss at each reading, oldest first (bounded)." }),
  })
  .meta({ id: "WorkerConfig", description: "What the worker said of its configuration over remote control: a bounded subset of `conf` and `stats`." });
export type WorkerConfig = z.infer<typeof WorkerConfig>;

export const WorkerAnswer = Worker.extend({
  config: WorkerConfig.nullable().meta({ description: "null until the worker has answered." }),
  config_findings: z.array(ConfigFinding).meta({ description: "Risks first, then advice; empty for a worker on sane settings." }),
  config_findings_at: maybeInstant,
}).meta({ id: "WorkerAnswer" });
export type WorkerAnswer = z.infer<typeof WorkerAnswer>;
// ---- statistics (src/stats/) --------------------------------------------------------------------

/** `GET /api/stats`: one task name's (or every name's) outcomes and percentiles per bucket. */
export const StatsQuery = z.object({
  name: textParam("One task name, exactly; every name when absent."),
  queue: textParam("One queue; every queue when absent (\"\" counts as absent)."),
  from: timeParam("Start of the window, inclusive (default: `to` minus 24 h)"),
  to: timeParam("End of the window, exclusive (default: now)"),
  bucket: z
    .string()
    .optional()
    .transform((v, ctx): 60 | 3600 | 86400 | undefined => {
      if (!v) return undefined;
      if (v === "60" || v === "3600" || v === "86400") return Number(v) as 60 | 3600 | 86400;
      return invalid(ctx, `expected 60, 3600 or 86400 (seconds), got ${shown(v)}`);
    })
    .meta({ description: "Bucket size in seconds: 60, 3600 or 86400 (UTC days). Default: by the window's length.", example: "3600" }),
});
export type StatsQuery = z.output<typeof StatsQuery>;

/** `GET /api/task-names`. */
export const TaskNamesQuery = StatsQuery.pick({ from: true, to: true });
export type TaskNamesQuery = z.output<typeof TaskNamesQuery>;

const durationS = (description: string) => z.number().nullable().meta({ description: `${description}, seconds; null when no task had one.` });
const outcomeCounts = {
  succeeded: z.number().int().meta({ description: "Tasks that succeeded." }),
  failed: z.number().int().meta({ description: "Tasks that failed." }),
  retried: z.number().int().meta({ description: "Retries of the tasks counted here (a task retried twice counts 2)." }),
  revoked: z.number().int().meta({ description: "Tasks revoked (expired ones not included)." }),
  expired: z.number().int().meta({ description: "Tasks revoked because their `expires` passed before a worker ran them." }),
};
const runtimePercentiles = {
  runtime_p50: durationS("Median runtime of the succeeded and failed tasks"),
  runtime_p95: durationS("95th percentile runtime"),
  runtime_p99: durationS("99th percentile runtime"),
  wait_p95: durationS("95th percentile wait from sent (or received) to started"),
};

export const StatsBucket = z
  .object({ start: instant.meta({ description: "The bucket's start (UTC)." }), ...outcomeCounts, ...runtimePercentiles })
  .meta({
    id: "StatsBucket",
    description:
      "Tasks whose outcome fell in the bucket. Percentiles are read from log-scale histograms merged across minutes: within 4.43 % of the exact value.",
  });
export type StatsBucket = z.infer<typeof StatsBucket>;

export const StatsAnswer = z.object({
  buckets: z.array(StatsBucket).meta({ description: "Oldest first, every bucket of the window (empty ones with zeros)." }),
  bucket_s: z.number().int().meta({ description: "The bucket size used, seconds." }),
});
export type StatsAnswer = z.infer<typeof StatsAnswer>;

export const TaskNameStats = z
  .object({
    name: z.string().meta({ description: "The task's name (untrusted text)." }),
    total: z.number().int().meta({ description: "Tasks with an outcome in the window: succeeded + failed + revoked + expired." }),
    ...outcomeCounts,
    failure_rate: z.number().nullable().meta({ description: "failed / (succeeded + failed), 0 to 1; null when none ran to an end." }),
    throughput_per_min: z.number().meta({ description: "total per minute of the window." }),
    ...runtimePercentiles,
  })
  .meta({ id: "TaskNameStats" });
export type TaskNameStats = z.infer<typeof TaskNameStats>;

export const TaskNamesAnswer = z.object({
  task_names: z.array(TaskNameStats).meta({ description: "Busiest first, at most 500." }),
  from: instant,
  to: instant,
});
export type TaskNamesAnswer = z.infer<typeof TaskNamesAnswer>;

/** The windows the task-name pages offer (`window=`), in seconds. */
export const STATS_WINDOWS = { "1h": 3600, "24h": 86_400, "7d": 7 * 86_400, "30d": 30 * 86_400 } as const;
export type StatsWindowName = keyof typeof STATS_WINDOWS;
const windowParam = z
  .string()
  .optional()
  .transform((v, ctx): StatsWindowName => {
    if (!v) return "24h";
    return Object.hasOwn(STATS_WINDOWS, v) ? (v as StatsWindowName) : invalid(ctx, `expected one of ${Object.keys(STATS_WINDOWS).join(", ")}, got ${shown(v)}`);
  })
  .meta({ description: "1h, 24h (default), 7d or 30d." });

/** The columns `/task-names` sorts by (`sort=`). */
export const TASK_NAME_SORTS = ["name", "total", "failure_rate", "runtime_p95", "wait_p95"] as const;
export type TaskNameSort = (typeof TASK_NAME_SORTS)[number];

/** `/task-names`: the window, and the column to sort by. */
export const TaskNamesPageQuery = z.object({
  window: windowParam,
  sort: z
    .string()
    .optional()
    .transform((v, ctx): TaskNameSort => {
      if (!v) return "total";
      return (TASK_NAME_SORTS as readonly string[]).includes(v) ? (v as TaskNameSort) : invalid(ctx, `expected one of ${TASK_NAME_SORTS.join(", ")}, got ${shown(v)}`);
    }),
  dir: z
    .string()
    .optional()
    .transform((v, ctx): "asc" | "desc" | undefined => (!v ? undefined : v === "asc" || v === "desc" ? v : invalid(ctx, `expected asc or desc, got ${shown(v)}`))),
});
export type TaskNamesPageQuery = z.output<typeof TaskNamesPageQuery>;

/** `/task-names/{name}`. */
export const TaskNameParams = z.object({ name: plainText().meta({ description: "The task's name", example: "app.tasks.charge" }) });
export const TaskNamePageQuery = z.object({ window: windowParam, queue: textParam("One queue; every queue when absent.") });
export type TaskNamePageQuery = z.output<typeof TaskNamePageQuery>;

// ---- control actions: retry, requeue, purge, and their audit --------------------------------

/** `POST /api/tasks/{id}/retry`: no body is needed; any JSON object is taken. */
export const RetryAnswer = z
  .object({
    task_id: z.string().meta({ description: "The new task's id." }),
    retry_of: z.string(),
    queue: z.string(),
    arguments_from: z.enum(["result_backend", "argsrepr"]).meta({ description: "Where the exact arguments were read." }),
  })
  .meta({ id: "RetryAnswer" });
export type RetryAnswer = z.infer<typeof RetryAnswer>;

/** `POST /api/tasks/retry-failures`: every failure of one task name in a window, once the count is confirmed. */
export const BulkRetryBody = z
  .object(
    {
      name: z.string({ error: taskName }).trim().min(1, taskName).max(MAX_TEXT, taskName).regex(PLAIN, PLAIN_PROBLEM).meta({ example: "app.tasks.charge" }),
      since: z.iso.datetime({ error: "expected an ISO 8601 time" }).meta({ example: "2026-11-24T00:00:00Z" }),
      until: z.iso.datetime({ error: "expected an ISO 8601 time" }).meta({ example: "2026-11-25T00:00:00Z" }),
      confirm: z
        .number({ error: "expected the number of failures you were shown (GET the count first: the answer's `matched`)" })
        .int()
        .nonnegative()
        .meta({ description: "How many failures you expect to retry: refused (409) if it is not what matches now." }),
    },
    { error: 'expected a JSON object: {"name", "since", "until", "confirm": n}' },
  )
  .meta({ id: "BulkRetryBody" });
export type BulkRetryRequest = z.output<typeof BulkRetryBody>;

/** The bulk retry's preview (page): which failures a confirmation would send again. */
export const BulkRetryQuery = z.object({
  name: textParam("The task's name, exactly."),
  since: timeParam("First seen at or after"),
  until: timeParam("First seen at or before"),
});

export const BulkRetryAnswer = z
  .object({
    matched: z.number().int().meta({ description: "Failures of the name in the window, not retried before (at most 500)." }),
    retried: z.array(z.object({ task_id: z.string(), retry_of: z.string() })),
    refused: z.array(z.object({ task_id: z.string(), reason: z.string() })).meta({ description: "Not sent, with the reason (arguments not known exactly…)." }),
  })
  .meta({ id: "BulkRetryAnswer" });
export type BulkRetryAnswer = z.infer<typeof BulkRetryAnswer>;

export const RequeueAnswer = z
  .object({
    requeued: z.number().int(),
    task_ids: z.array(z.string()),
    skipped: z.array(z.object({ delivery_tag: z.string(), reason: z.string() })).meta({ description: "Deliveries left where they were, and why." }),
  })
  .meta({ id: "RequeueAnswer" });
export type RequeueAnswer = z.infer<typeof RequeueAnswer>;

/** `/api/queues/{name}/purge`. */
export const QueueParams = z.object({ name: plainText().meta({ description: "The queue's name", example: "celery" }) });

export const PurgeBody = z
  .object(
    {
      confirm: z.string({ error: "expected the queue's name again" }).max(MAX_TEXT).meta({ description: "The queue's name, typed again." }),
      broker: z.string().max(32).optional().meta({ description: "With BROKERS: which broker's queue (the first broker's when absent)." }),
    },
    {
      error: 'expected a JSON object: {"confirm": "<queue name>"}',
    },
  )
  .meta({ id: "PurgeBody" });

export const PurgeAnswer = z.object({ purged: z.number().int().meta({ description: "Messages deleted, all priorities." }) }).meta({ id: "PurgeAnswer" });
export type PurgeAnswer = z.infer<typeof PurgeAnswer>;

export const AuditEntry = z
  .object({
    id: z.number().int(),
    at: instant,
    actor: z.string().meta({ description: "Who: the signed-in admin." }),
    action: z.string().meta({ description: "revoke, terminate, requeue, retry, retry_bulk, purge, schedule_add, schedule_remove" }),
    target: z.string().meta({ description: "A task id, a hostname, a queue, a schedule or task name." }),
    outcome: z.enum(["ok", "refused", "failed"]),
    status: z.number().int().meta({ description: "The HTTP status answered." }),
    detail: z.record(z.string(), z.unknown()).meta({ description: "What was done (counts, ids), or the reason it was not." }),
    ip: z.string().nullable().meta({ description: "The request's address (the TCP peer)." }),
  })
  .meta({ id: "AuditEntry" });
export type AuditEntry = z.infer<typeof AuditEntry>;

export const AuditListQuery = z.object({
  limit: limitParam,
  cursor: AlertListQuery.shape.cursor,
});

export const AuditList = z.object({ entries: z.array(AuditEntry), next_cursor: z.string().nullable() }).meta({ id: "AuditList" });
export type AuditList = z.infer<typeof AuditList>;
