/**
 * The JSON API (CONTRACT.md): thin handlers over the store's queries and
 * the read answers (answers.ts). Each route's path and request schemas come
 * from the registry (registry.ts), which the OpenAPI document is generated
 * from; a request is validated by its schema before the handler runs;
 * actions check who asks first (src/http/auth.ts). Each answer `satisfies`
 * its schema's type, so what is sent and what is documented cannot drift.
 */
import { Hono } from "hono";
import type { BrokerPort } from "../broker/port.ts";
import type { Database } from "../store/database.ts";
import { getTask } from "../store/queries/tasks.ts";
import { brokersWithHistory } from "../store/queries/broker.ts";
import { declareSchedule, deleteSchedule, listSchedules } from "../store/queries/detect.ts";
import { NEVER_SEEN_HINT, neverSeen } from "../format.ts";
import { type Auth, adminOnly } from "../http/auth.ts";
import type { Env } from "../http/context.ts";
import { answerWithin, DeadlineExceeded, within } from "../http/deadline.ts";
import { HttpError, validated } from "../http/errors.ts";
import { bodyAtMost } from "../http/requests.ts";
import { type Logger, errorText } from "../log.ts";
import { openApiDocument } from "./openapi.ts";
import { API } from "./registry.ts";
import { alertListAnswer, queueListAnswer, taskAnswer, taskListAnswer, workerAnswer, workerListAnswer } from "./answers.ts";
import { revokeLogLine, revokeTask } from "./revoke.ts";
import { createStatsRoutes } from "./stats.ts";
import {
  type AlertList,
  type BrokerAnswer,
  type RevokeAnswer,
  type ScheduleDeclared,
  type ScheduleDeleted,
  type ScheduleList,
  type TaskAnswer,
  type TaskList,
  type QueueList,
  type WorkerList,
  type WorkerAnswer,
} from "./schemas.ts";
import { brokerJson, scheduleJson } from "./serialize.ts";

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

export function createApiRoutes(deps: ApiDeps) {
  const now = deps.now ?? (() => Date.now() / 1000);
  const api = new Hono<Env>();
  // An answer the database cannot give in time is a 503, not a hang; an action's body is small.
  api.use("*", answerWithin(), bodyAtMost());

  api.get(API.getTask.path, validated("param", API.getTask.params), async (c) => {
    const { id } = c.req.valid("param");
    const answer = await taskAnswer(deps.database, id);
    if (!answer) throw new HttpError(404, neverSeen(id), { hint: NEVER_SEEN_HINT });
    return c.json(answer satisfies TaskAnswer);
  });

  api.post(API.revokeTask.path, adminOnly(deps.auth, "json"), validated("param", API.revokeTask.params), validated("json", API.revokeTask.body), async (c) => {
    const { id } = c.req.valid("param");
    const request = c.req.valid("json");
    const known = (await getTask(deps.database, id)) !== null;
    const acknowledged = await revokeTask(deps.broker, id, request);
    deps.log?.info(revokeLogLine(c.var.admin.name, id, request, acknowledged));
    return c.json({
      task_id: id,
      known,
      terminate: request.terminate,
      signal: request.signal,
      acknowledged_by: acknowledged,
    } satisfies RevokeAnswer);
  });

  api.get(API.listTasks.path, validated("query", API.listTasks.query), async (c) => {
    return c.json((await taskListAnswer(deps.database, c.req.valid("query"))) satisfies TaskList);
  });

  api.get(API.listWorkers.path, async (c) => c.json((await workerListAnswer(deps.database, now())) satisfies WorkerList));

  api.get(API.listQueues.path, async (c) => c.json((await queueListAnswer(deps.database)) satisfies QueueList));

  api.get(API.listAlerts.path, validated("query", API.listAlerts.query), async (c) => {
    return c.json((await alertListAnswer(deps.database, c.req.valid("query"))) satisfies AlertList);
  });

  api.get(API.getWorker.path, validated("param", API.getWorker.params), async (c) => {
    const { hostname } = c.req.valid("param");
    const worker = await workerAnswer(deps.database, hostname, now());
    if (!worker) throw new HttpError(404, `worker ${hostname} was never seen`);
    return c.json(worker satisfies WorkerAnswer);
  });

  api.get(API.listSchedules.path, async (c) => c.json({ schedules: (await listSchedules(deps.database)).map(scheduleJson) } satisfies ScheduleList));

  // The broker's own health (memory, eviction policy, clients), with the last hour's samples.
  api.get(API.getBroker.path, async (c) => {
    const brokers = await brokersWithHistory(deps.database, new Date((now() - 3600) * 1000));
    return c.json({ brokers: brokers.map((b) => brokerJson(b.latest, b.history)) } satisfies BrokerAnswer);
  });

  const configured = new Set(deps.configuredSchedules ?? []);
  api.post(API.declareSchedule.path, adminOnly(deps.auth, "json"), validated("json", API.declareSchedule.body), async (c) => {
    const s = c.req.valid("json");
    if (configured.has(s.name)) throw new HttpError(409, `${s.name} is declared in BEAT_SCHEDULES: change it there`);
    const row = await declareSchedule(deps.database, { name: s.name, task: s.task, expectedIntervalS: s.every_s ?? null, cron: s.cron ?? null }, new Date());
    deps.log?.info(`${c.var.admin.name} declared schedule ${s.name}: ${s.task} ${s.cron ? `cron(${s.cron})` : `every ${s.every_s} s`}`);
    return c.json({ schedule: scheduleJson(row) } satisfies ScheduleDeclared, 201);
  });

  api.delete(API.deleteSchedule.path, adminOnly(deps.auth), validated("param", API.deleteSchedule.params), async (c) => {
    const { name } = c.req.valid("param");
    if (configured.has(name)) throw new HttpError(409, `${name} is declared in BEAT_SCHEDULES: remove it there`);
    const row = (await listSchedules(deps.database)).find((s) => s.name === name);
    if (!row) throw new HttpError(404, `no schedule named ${name.slice(0, 255)}`);
    if (row.source !== "api") throw new HttpError(409, `${name} was learned from its arrivals, not declared: it is forgotten once the task stops arriving`);
    await deleteSchedule(deps.database, name);
    deps.log?.info(`${c.var.admin.name} deleted schedule ${name}`);
    return c.json({ deleted: name } satisfies ScheduleDeleted);
  });

  // Generated once: the registry does not change while the process runs.
  const document = openApiDocument(API);
  api.get(API.openApi.path, (c) => c.json(document));

  api.route("/", createStatsRoutes({ database: deps.database, now }));

  return api;
}

/** /readyz gives each part this long: a probe's own timeout is often 2 s. */
export const READY_DEADLINE_MS = 1500;

export function createHealthRoutes(deps: { database: Database; broker?: BrokerPort; log?: Logger }) {
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
    const [database, brokerState] = await Promise.all([
      check("database", () => deps.database.ping()),
      broker ? check("broker", () => broker.ping()) : Promise.resolve("not used by this process"),
    ]);
    const down = [...(database === "ok" ? [] : ["database"]), ...(broker && brokerState !== "ok" ? ["broker"] : [])];
    return c.json({ ok: down.length === 0, database, broker: brokerState, down }, down.length ? 503 : 200);
  });
  return health;
}
