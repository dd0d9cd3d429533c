/**
 * Every route of the JSON API, each with the schemas that validate its
 * request and describe its answer (schemas.ts). The handlers in routes.ts
 * take their path and validators from here, and the OpenAPI document
 * (openapi.ts) is generated from here, so neither can say something the
 * other does not. A test (test/integration/openapi.test.ts) checks that
 * every route the app serves under /api is in this list.
 *
 * To add a route: add one entry below, then in routes.ts
 *
 *     api.get(API.taskNames.path, validated("query", API.taskNames.query), async (c) => …)
 *
 * `path` is relative to /api, in Hono's syntax (`/tasks/:id`); the document
 * writes it as OpenAPI does (`/api/tasks/{id}`).
 */
import { z } from "zod";
import {
  AlertList,
  AlertListQuery,
  AuditList,
  AuditListQuery,
  BulkRetryAnswer,
  BulkRetryBody,
  PurgeAnswer,
  PurgeBody,
  QueueParams,
  RequeueAnswer,
  RetryAnswer,
  BrokerAnswer,
  BrokerQuery,
  QueueList,
  RevokeAnswer,
  RevokeBody,
  ScheduleBody,
  ScheduleDeclared,
  ScheduleDeleted,
  ScheduleList,
  ScheduleNameParams,
  StatsAnswer,
  StatsQuery,
  TaskNamesAnswer,
  TaskNamesQuery,
  TaskAnswer,
  TaskIdParams,
  TaskList,
  TaskListQuery,
  WorkerAnswer,
  WorkerList,
  WorkerParams,
} from "./schemas.ts";

/** An OpenAPI 3.1 document (described, not spelled out: it is this one). */
const OpenApiDocument = z.looseObject({ openapi: z.string(), info: z.looseObject({ title: z.string(), version: z.string() }), paths: z.record(z.string(), z.unknown()) });

/** What an API route takes and answers, and who may call it. */
export interface ApiRoute {
  method: "get" | "post" | "delete";
  /** Relative to /api, in Hono's syntax: `/tasks/:id`. */
  path: string;
  /** One line: what it does. */
  summary: string;
  /** viewer: anyone signed in (everyone without CRISPER_AUTH); admin: an admin, and never without CRISPER_AUTH. */
  role: "viewer" | "admin";
  /** The path's parameters (`:id`), by name. */
  params?: z.ZodObject;
  /** The query string, by parameter. */
  query?: z.ZodObject;
  /** A JSON body. */
  body?: z.ZodType;
  /** The answer on success. */
  answer: z.ZodType;
  /** What the answer is (default application/json); a page is text/html. */
  contentType?: "application/json" | "text/html";
  /** Its status (default 200). */
  status?: 200 | 201;
  /** Errors it may answer besides 400 (bad request), 401 (sign in) and 503 (database not answering). */
  errors?: readonly (403 | 404 | 409 | 413 | 415 | 502)[];
}

export const API = {
  getTask: {
    method: "get",
    path: "/tasks/:id",
    summary: "One task: its state, executions, alerts and events. 404 for an id never seen (never PENDING).",
    role: "viewer",
    params: TaskIdParams,
    answer: TaskAnswer,
    errors: [404],
  },
  revokeTask: {
    method: "post",
    path: "/tasks/:id/revoke",
    summary: "Revoke a task (Celery's revoke), and with terminate stop it if it runs.",
    role: "admin",
    params: TaskIdParams,
    body: RevokeBody,
    answer: RevokeAnswer,
    errors: [403, 413, 415, 502],
  },
  retryFailures: {
    method: "post",
    path: "/tasks/retry-failures",
    summary: "Retry every failure of one task name in a time window (at most 500); `confirm` must be the count a dry look found, else 409.",
    role: "admin",
    body: BulkRetryBody,
    answer: BulkRetryAnswer,
    errors: [403, 409, 413, 415, 502],
  },
  retryTask: {
    method: "post",
    path: "/tasks/:id/retry",
    summary: "Send a failed (revoked, lost or expired) task again: same name, arguments, queue and routing key, as a new task linked by retry_of. 409 when the arguments are not known exactly.",
    role: "admin",
    params: TaskIdParams,
    answer: RetryAnswer,
    errors: [403, 404, 409, 413, 415, 502],
  },
  listTasks: {
    method: "get",
    path: "/tasks",
    summary: "Tasks, newest first, by name, state, worker, queue, text and time; paged by cursor.",
    role: "viewer",
    query: TaskListQuery,
    answer: TaskList,
  },
  listWorkers: { method: "get", path: "/workers", summary: "Every worker, online and offline.", role: "viewer", query: BrokerQuery, answer: WorkerList },
  getWorker: {
    method: "get",
    path: "/workers/:hostname",
    summary: "One worker: liveness, its latest configuration reading, configuration findings and memory history.",
    role: "viewer",
    params: WorkerParams,
    answer: WorkerAnswer,
    errors: [404],
  },
  requeueStranded: {
    method: "post",
    path: "/workers/:hostname/requeue-stranded",
    summary: "Put a dead worker's stranded (prefetched, unacknowledged) messages back on their queues at once, as kombu's restore would after the visibility timeout. 409 for an online worker or when nothing is stranded.",
    role: "admin",
    params: WorkerParams,
    answer: RequeueAnswer,
    errors: [403, 404, 409, 413, 415, 502],
  },
  purgeQueue: {
    method: "post",
    path: "/queues/:name/purge",
    summary: "Delete a queue's waiting messages (every priority); the body must name the queue again.",
    role: "admin",
    params: QueueParams,
    body: PurgeBody,
    answer: PurgeAnswer,
    errors: [403, 409, 413, 415, 502],
  },
  listAudit: {
    method: "get",
    path: "/audit",
    summary: "Every control action, newest first: who, when, what, the target, the outcome and the request's address.",
    role: "admin",
    query: AuditListQuery,
    answer: AuditList,
    errors: [403],
  },
  listQueues: { method: "get", path: "/queues", summary: "Every queue: depth, by priority, unacked.", role: "viewer", query: BrokerQuery, answer: QueueList },
  listAlerts: {
    method: "get",
    path: "/alerts",
    summary: "Alerts, newest first, by status and kind; paged by cursor.",
    role: "viewer",
    query: AlertListQuery,
    answer: AlertList,
  },
  listSchedules: { method: "get", path: "/schedules", summary: "Periodic tasks (Beat) and whether each is on time.", role: "viewer", answer: ScheduleList },
  declareSchedule: {
    method: "post",
    path: "/schedules",
    summary: "Declare a periodic task to watch, every so many seconds or by cron.",
    role: "admin",
    body: ScheduleBody,
    answer: ScheduleDeclared,
    status: 201,
    errors: [403, 409, 413, 415],
  },
  deleteSchedule: {
    method: "delete",
    path: "/schedules/:name",
    summary: "Forget a schedule declared through the API.",
    role: "admin",
    params: ScheduleNameParams,
    answer: ScheduleDeleted,
    errors: [403, 404, 409],
  },
  getBroker: {
    method: "get",
    path: "/broker",
    summary: "Each broker's health: memory and its limit, eviction policy, clients, ops/s, evictions, alarms, with the last hour's samples.",
    role: "viewer",
    answer: BrokerAnswer,
  },
  taskStats: {
    method: "get",
    path: "/stats",
    summary: "One task name's (or every name's) statistics per minute, hour or day: outcomes, runtime p50/p95/p99, wait p95. Kept past the tasks (STATS_RETENTION).",
    role: "viewer",
    query: StatsQuery,
    answer: StatsAnswer,
  },
  taskNames: {
    method: "get",
    path: "/task-names",
    summary: "Every task name over a window: totals by outcome, failure rate, throughput, runtime and wait percentiles.",
    role: "viewer",
    query: TaskNamesQuery,
    answer: TaskNamesAnswer,
  },
  openApi: {
    method: "get",
    path: "/openapi.json",
    summary: "This document: OpenAPI 3.1, generated from the schemas that validate the requests.",
    role: "viewer",
    answer: OpenApiDocument,
  },
  docs: { method: "get", path: "/docs", summary: "This document as a page.", role: "viewer", answer: z.string(), contentType: "text/html" },
} as const satisfies Record<string, ApiRoute>;

/** The routes of the JSON API, for the document and the tests. */
export const API_ROUTES: readonly ApiRoute[] = Object.values(API);
