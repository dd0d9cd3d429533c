/**
 * The JSON API (CONTRACT.md): thin handlers over the store's queries. Each
 * request is validated by its schema (schemas.ts) before the handler runs;
 * actions check who asks first (src/http/auth.ts). Each answer `satisfies`
 * its schema's type, so what is sent and what is documented cannot drift.
 */
import { Hono } from "hono";
import type { BrokerPort } from "../broker/port.ts";
import type { Database } from "../store/database.ts";
import { listQueues } from "../store/queries/queues.ts";
import { getTask, getTaskEvents, listTasks } from "../store/queries/tasks.ts";
import { listWorkers } from "../store/queries/workers.ts";
import { alertsForSubject, listAlerts } from "../alerts/store.ts";
import { declareSchedule, deleteSchedule, listSchedules } from "../store/queries/detect.ts";
import { NEVER_SEEN_HINT, neverSeen } from "../format.ts";
import { type Auth, adminOnly } from "../http/auth.ts";
import type { Env } from "../http/context.ts";
import { answerWithin, DeadlineExceeded, within } from "../http/deadline.ts";
import { HttpError, validated } from "../http/errors.ts";
import { bodyAtMost } from "../http/requests.ts";
import { type Logger, errorText } from "../log.ts";
import { brokersFor, revokeLogLine, revokeTask } from "./revoke.ts";
import {
  type AlertList,
  AlertListQuery,
  BrokerQuery,
  RevokeBody,
  type RevokeAnswer,
  ScheduleBody,
  type ScheduleDeclared,
  type ScheduleDeleted,
  type ScheduleList,
  ScheduleNameParams,
  type TaskAnswer,
  TaskIdParams,
  type TaskList,
  TaskListQuery,
  type QueueList,
  type WorkerList,
  alertCursor,
} from "./schemas.ts";
import { alertJson, eventJson, queueJson, scheduleJson, taskJson, workerJson } from "./serialize.ts";

export interface ApiDeps {
  database: Database;
  /** Sends control commands (revoke); a process without one refuses them. The first broker, with BROKERS. */
  broker?: BrokerPort;
  /** Every watched broker by name (BROKERS; one, "default", with BROKER_URL alone). */
  brokers?: ReadonlyMap<string, BrokerPort>;
  /** CRISPER_AUTH; without it Crisper is read-only. */
  auth?: Auth;
  log?: Logger;
  /** Schedule names declared in BEAT_SCHEDULES: the API may not change them. */
  configuredSchedules?: readonly string[];
  /** Clock, unix seconds (tests inject one). */
  now?: () => number;
}

export function createApiRoutes(deps: ApiDeps) {
  const now = deps.now ?? (() => Date.now() / 1000);
  const api = new Hono<Env>();
  // An answer the database cannot give in time is a 503, not a hang; an action's body is small.
  api.use("*", answerWithin(), bodyAtMost());

  api.get("/tasks/:id", validated("param", TaskIdParams), async (c) => {
    const { id } = c.req.valid("param");
    const task = await getTask(deps.database, id);
    if (!task) throw new HttpError(404, neverSeen(id), { hint: NEVER_SEEN_HINT });
    const [events, alerts] = await Promise.all([getTaskEvents(deps.database, [id]), alertsForSubject(deps.database, id)]);
    return c.json({ task: taskJson(task, events, alerts.map(alertJson)), events: events.map(eventJson) } satisfies TaskAnswer);
  });

  api.post("/tasks/:id/revoke", adminOnly(deps.auth, "json"), validated("param", TaskIdParams), validated("json", RevokeBody), async (c) => {
    const { id } = c.req.valid("param");
    const request = c.req.valid("json");
    const task = await getTask(deps.database, id);
    const known = task !== null;
    const acknowledged = await revokeTask(brokersFor(deps, task?.broker), id, request);
    deps.log?.info(revokeLogLine(c.var.admin.name, id, request, acknowledged));
    return c.json({
      task_id: id,
      known,
      terminate: request.terminate,
      signal: request.signal,
      acknowledged_by: acknowledged,
    } satisfies RevokeAnswer);
  });

  api.get("/tasks", validated("query", TaskListQuery), async (c) => {
    const page = await listTasks(deps.database, c.req.valid("query"));
    const events = await getTaskEvents(
      deps.database,
      page.tasks.map((t) => t.id),
    );
    const byTask = Map.groupBy(events, (e) => e.taskId);
    return c.json({
      tasks: page.tasks.map((t) => taskJson(t, byTask.get(t.id) ?? [])),
      next_cursor: page.nextCursor,
    } satisfies TaskList);
  });

  api.get("/workers", validated("query", BrokerQuery), async (c) => {
    const t = now();
    return c.json({ workers: (await listWorkers(deps.database, c.req.valid("query").broker)).map((w) => workerJson(w, t)) } satisfies WorkerList);
  });

  api.get("/queues", validated("query", BrokerQuery), async (c) =>
    c.json({ queues: (await listQueues(deps.database, c.req.valid("query").broker)).map(queueJson) } satisfies QueueList),
  );

  api.get("/alerts", validated("query", AlertListQuery), async (c) => {
    const { status, kind, broker, limit, cursor } = c.req.valid("query");
    const rows = await listAlerts(deps.database, { status, kind, broker, limit: limit + 1, beforeId: cursor });
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return c.json({
      alerts: page.map(alertJson),
      next_cursor: rows.length > limit && last ? alertCursor(last.id) : null,
    } satisfies AlertList);
  });

  api.get("/schedules", async (c) => c.json({ schedules: (await listSchedules(deps.database)).map(scheduleJson) } satisfies ScheduleList));

  const configured = new Set(deps.configuredSchedules ?? []);
  api.post("/schedules", adminOnly(deps.auth, "json"), validated("json", ScheduleBody), async (c) => {
    const s = c.req.valid("json");
    if (configured.has(s.name)) throw new HttpError(409, `${s.name} is declared in BEAT_SCHEDULES: change it there`);
    const row = await declareSchedule(deps.database, { name: s.name, task: s.task, expectedIntervalS: s.every_s ?? null, cron: s.cron ?? null }, new Date());
    deps.log?.info(`${c.var.admin.name} declared schedule ${s.name}: ${s.task} ${s.cron ? `cron(${s.cron})` : `every ${s.every_s} s`}`);
    return c.json({ schedule: scheduleJson(row) } satisfies ScheduleDeclared, 201);
  });

  api.delete("/schedules/:name", adminOnly(deps.auth), validated("param", ScheduleNameParams), async (c) => {
    const { name } = c.req.valid("param");
    if (configured.has(name)) throw new HttpError(409, `${name} is declared in BEAT_SCHEDULES: remove it there`);
    const row = (await listSchedules(deps.database)).find((s) => s.name === name);
    if (!row) throw new HttpError(404, `no schedule named ${name.slice(0, 255)}`);
    if (row.source !== "api") throw new HttpError(409, `${name} was learned from its arrivals, not declared: it is forgotten once the task stops arriving`);
    await deleteSchedule(deps.database, name);
    deps.log?.info(`${c.var.admin.name} deleted schedule ${name}`);
    return c.json({ deleted: name } satisfies ScheduleDeleted);
  });

  return api;
}

/** /readyz gives each part this long: a probe's own timeout is often 2 s. */
export const READY_DEADLINE_MS = 1500;

export function createHealthRoutes(deps: { database: Database; broker?: BrokerPort; brokers?: ReadonlyMap<string, BrokerPort>; log?: Logger }) {
  const health = new Hono<Env>();
  // Liveness: the process answers. It touches nothing, so a database outage never restarts Crisper.
  health.get("/healthz", (c) => c.json({ ok: true }));
  // Readiness: the database and the broker answer, each within its deadline, both at once.
  health.get("/readyz", async (c) => {
    const check = (part: string, ping: () => Promise<void>) =>
      within(READY_DEADLINE_MS, ping()).then(
        () => "ok",
        (e: unknown) => {
          if (e instanceof DeadlineExceeded) return `not answering within ${READY_DEADLINE_MS} ms`;
          deps.log?.once(`readyz:${part}`, `readyz: ${part} is down: ${errorText(e)}`);
          // The reason's code only: /readyz is open, and a driver's message names hosts and ports.
          const code = e instanceof Error && "code" in e && typeof e.code === "string" ? e.code : "error";
          return `down (${code.slice(0, 40)})`;
        },
      );
    const broker = deps.broker;
    // With BROKERS, each broker by name; `broker` sums them up (ok only when all are).
    const several = deps.brokers && deps.brokers.size > 1 ? [...deps.brokers] : [];
    const [database, brokerState, ...states] = await Promise.all([
      check("database", () => deps.database.ping()),
      broker && several.length === 0 ? check("broker", () => broker.ping()) : Promise.resolve(broker ? "ok" : "not used by this process"),
      ...several.map(([name, b]) => check(`broker ${name}`, () => b.ping())),
    ]);
    const brokers = Object.fromEntries(several.map(([name], i) => [name, states[i] as string]));
    const brokersDown = several.filter(([name]) => brokers[name] !== "ok").map(([name]) => `broker ${name}`);
    const summary = brokersDown.length ? `down: ${brokersDown.map((b) => b.slice(7)).join(", ")}` : brokerState;
    const down = [...(database === "ok" ? [] : ["database"]), ...(broker && several.length === 0 && brokerState !== "ok" ? ["broker"] : []), ...brokersDown];
    return c.json(
      { ok: down.length === 0, database, broker: summary, ...(several.length ? { brokers } : {}), down },
      down.length ? 503 : 200,
    );
  });
  return health;
}
