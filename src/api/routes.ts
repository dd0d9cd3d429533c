/**
 * The JSON API (CONTRACT.md): thin handlers over the store's queries.
 */
import { type Context, Hono } from "hono";
import type { BrokerPort } from "../broker/port.ts";
import type { Database } from "../store/database.ts";
import { listQueues } from "../store/queries/queues.ts";
import { getTask, getTaskEvents, listTasks } from "../store/queries/tasks.ts";
import { listWorkers } from "../store/queries/workers.ts";
import { HttpError } from "./http-error.ts";
import { parseLimit, parseTaskFilters } from "./params.ts";
import { alertJson, eventJson, queueJson, scheduleJson, taskJson, workerJson } from "./serialize.ts";
import { ALERT_KINDS, type AlertKind, isAlertKind } from "../alerts/kinds.ts";
import { alertsForSubject, listAlerts } from "../alerts/store.ts";
import { declareSchedule, deleteSchedule, listSchedules } from "../store/queries/detect.ts";
import { parseScheduleRequest } from "../detect/schedules.ts";
import { type Auth, requireAdmin } from "../web/auth.ts";
import type { Logger } from "../log.ts";
import { parseRevokeRequest, revokeTask } from "./revoke.ts";

export interface ApiDeps {
  database: Database;
  /** Sends control commands (revoke); a process without one refuses them. */
  broker?: BrokerPort;
  /** CRISPER_AUTH; without it Crisper is read-only. */
  auth?: Auth;
  log?: Logger;
  /** Schedule names declared in BEAT_SCHEDULES: the API may not change them. */
  configuredSchedules?: readonly string[];
  /** Clock, unix seconds (tests inject one). */
  now?: () => number;
}

const NEVER_SEEN_HINT =
  "Crisper has no event and no result for this id. Either it was never sent, or it ran before Crisper was watching, " +
  "or its workers send no task events and no result backend is configured (RESULT_BACKEND_URL). " +
  "Note that Celery's AsyncResult reports PENDING for any unknown id, even one that never existed.";

export function createApiRoutes(deps: ApiDeps) {
  const now = deps.now ?? (() => Date.now() / 1000);
  const api = new Hono();

  api.get("/tasks/:id", async (c) => {
    const id = c.req.param("id");
    if (id.length > 255) throw new HttpError(400, "task id: at most 255 characters");
    const task = await getTask(deps.database, id);
    if (!task) throw new HttpError(404, `task ${id} was never seen`, { hint: NEVER_SEEN_HINT });
    const [events, alerts] = await Promise.all([getTaskEvents(deps.database, [id]), alertsForSubject(deps.database, id)]);
    return c.json({ task: taskJson(task, events, alerts.map(alertJson)), events: events.map(eventJson) });
  });

  const admin = (c: Context) => requireAdmin(deps.auth, c);
  const jsonBody = async (c: Context, example: string): Promise<Record<string, unknown>> => {
    deps.auth?.checkJson(c);
    const body = await c.req.json().catch(() => null);
    if (!body || typeof body !== "object" || Array.isArray(body)) throw new HttpError(400, `expected a JSON object: ${example}`);
    return body as Record<string, unknown>;
  };

  api.post("/tasks/:id/revoke", async (c) => {
    const user = admin(c);
    const id = c.req.param("id");
    if (id.length > 255) throw new HttpError(400, "task id: at most 255 characters");
    const request = parseRevokeRequest(await jsonBody(c, '{"terminate": bool, "signal": "SIGTERM"}'));
    const known = (await getTask(deps.database, id)) !== null;
    const acknowledged = await revokeTask(deps.broker, id, request);
    deps.log?.info(`${user.name} revoked task ${id}${request.terminate ? ` (terminate, ${request.signal})` : ""}; acknowledged by ${acknowledged.length} worker(s)`);
    return c.json({ task_id: id, known, terminate: request.terminate, signal: request.signal, acknowledged_by: acknowledged });
  });

  api.get("/tasks", async (c) => {
    const filters = parseTaskFilters((n) => c.req.query(n));
    const page = await listTasks(deps.database, filters);
    const events = await getTaskEvents(
      deps.database,
      page.tasks.map((t) => t.id),
    );
    const byTask = Map.groupBy(events, (e) => e.taskId);
    return c.json({
      tasks: page.tasks.map((t) => taskJson(t, byTask.get(t.id) ?? [])),
      next_cursor: page.nextCursor,
    });
  });

  api.get("/workers", async (c) => {
    const t = now();
    return c.json({ workers: (await listWorkers(deps.database)).map((w) => workerJson(w, t)) });
  });

  api.get("/queues", async (c) => c.json({ queues: (await listQueues(deps.database)).map(queueJson) }));

  api.get("/alerts", async (c) => {
    const status = c.req.query("status") ?? "open";
    if (!["open", "resolved", "all"].includes(status)) throw new HttpError(400, "status: expected open, resolved or all");
    const kind = c.req.query("kind");
    if (kind !== undefined && kind !== "" && !isAlertKind(kind)) throw new HttpError(400, `kind: expected one of ${Object.keys(ALERT_KINDS).join(", ")}`);
    const limit = parseLimit(c.req.query("limit"));
    const cursor = c.req.query("cursor");
    const beforeId = cursor ? Number(Buffer.from(cursor, "base64url").toString("utf8")) : undefined;
    if (beforeId !== undefined && !Number.isSafeInteger(beforeId)) throw new HttpError(400, "cursor: not a cursor from this API");
    const rows = await listAlerts(deps.database, {
      status: status as "open" | "resolved" | "all",
      kind: kind ? (kind as AlertKind) : undefined,
      limit: limit + 1,
      beforeId,
    });
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return c.json({
      alerts: page.map(alertJson),
      next_cursor: rows.length > limit && last ? Buffer.from(String(last.id)).toString("base64url") : null,
    });
  });

  api.get("/schedules", async (c) => c.json({ schedules: (await listSchedules(deps.database)).map(scheduleJson) }));

  const configured = new Set(deps.configuredSchedules ?? []);
  api.post("/schedules", async (c) => {
    const user = admin(c);
    const s = parseScheduleRequest(await jsonBody(c, '{"name": "nightly", "task": "app.tasks.report", "every_s": 86400} or "cron": "0 3 * * *"'));
    if (typeof s === "string") throw new HttpError(400, s);
    if (configured.has(s.name)) throw new HttpError(409, `${s.name} is declared in BEAT_SCHEDULES: change it there`);
    const row = await declareSchedule(deps.database, { name: s.name, task: s.task, expectedIntervalS: s.expectedIntervalS, cron: s.cron ?? null }, new Date());
    deps.log?.info(`${user.name} declared schedule ${s.name}: ${s.task} ${s.cron ? `cron(${s.cron})` : `every ${s.expectedIntervalS} s`}`);
    return c.json({ schedule: scheduleJson(row) }, 201);
  });

  api.delete("/schedules/:name", async (c) => {
    const user = admin(c);
    const name = c.req.param("name");
    if (configured.has(name)) throw new HttpError(409, `${name} is declared in BEAT_SCHEDULES: remove it there`);
    const row = (await listSchedules(deps.database)).find((s) => s.name === name);
    if (!row) throw new HttpError(404, `no schedule named ${name.slice(0, 255)}`);
    if (row.source !== "api") throw new HttpError(409, `${name} was learned from its arrivals, not declared: it is forgotten once the task stops arriving`);
    await deleteSchedule(deps.database, name);
    deps.log?.info(`${user.name} deleted schedule ${name}`);
    return c.json({ deleted: name });
  });

  return api;
}

export function createHealthRoutes(deps: { database: Database; broker?: BrokerPort }) {
  const health = new Hono();
  health.get("/healthz", (c) => c.json({ ok: true }));
  health.get("/readyz", async (c) => {
    const check = async (f: () => Promise<void>) =>
      f().then(
        () => "ok",
        (e: Error) => e.message.slice(0, 200),
      );
    const database = await check(() => deps.database.ping());
    const broker = deps.broker ? await check(() => deps.broker!.ping()) : "not used by this process";
    const ok = database === "ok" && (broker === "ok" || !deps.broker);
    return c.json({ ok, database, broker }, ok ? 200 : 503);
  });
  return health;
}
