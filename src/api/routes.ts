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
import { brokersFor, revokeTask } from "./revoke.ts";
import { createStatsRoutes } from "./stats.ts";
import { actorOf, audited, auditRefusals } from "./actions/audit.ts";
import { purgeQueue } from "./actions/purge.ts";
import { requeueStranded } from "./actions/requeue.ts";
import { retryTask } from "./actions/retry.ts";
import { retryFailures } from "./actions/retry-bulk.ts";
import { listAudit } from "../store/queries/audit.ts";
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
  alertCursor,
  type AuditList,
  type BulkRetryAnswer,
  type PurgeAnswer,
  type RequeueAnswer,
  type RetryAnswer,
} from "./schemas.ts";
import { auditJson, brokerJson, scheduleJson } from "./serialize.ts";

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
  const auditDeps = { database: deps.database, log: deps.log, now };
  const api = new Hono<Env>();
  // An answer the database cannot give in time is a 503, not a hang; an action's body is small.
  api.use("*", answerWithin(), bodyAtMost());

  api.get(API.getTask.path, validated("param", API.getTask.params), async (c) => {
    const { id } = c.req.valid("param");
    const answer = await taskAnswer(deps.database, id);
    if (!answer) throw new HttpError(404, neverSeen(id), { hint: NEVER_SEEN_HINT });
    return c.json(answer satisfies TaskAnswer);
  });

  api.post(API.revokeTask.path, auditRefusals(auditDeps, "revoke", "id"), adminOnly(deps.auth, "json"), validated("param", API.revokeTask.params), validated("json", API.revokeTask.body), async (c) => {
    const { id } = c.req.valid("param");
    const request = c.req.valid("json");
    const action = request.terminate ? "terminate" : "revoke";
    const answer = await audited(auditDeps, actorOf(c), { action, target: id }, async () => {
      const task = await getTask(deps.database, id);
      const known = task !== null;
      const acknowledged = await revokeTask(brokersFor(deps, task?.broker), id, request);
      const answer: RevokeAnswer = { task_id: id, known, terminate: request.terminate, signal: request.signal, acknowledged_by: acknowledged };
      return { answer, detail: { signal: request.terminate ? request.signal : null, known, acknowledged_by: acknowledged } };
    });
    return c.json(answer satisfies RevokeAnswer);
  });

  api.post(API.retryFailures.path, auditRefusals(auditDeps, "retry_bulk"), adminOnly(deps.auth, "json"), validated("json", API.retryFailures.body), async (c) => {
    const r = c.req.valid("json");
    const request = { name: r.name, since: new Date(r.since), until: new Date(r.until), confirm: r.confirm };
    const answer = await audited(auditDeps, actorOf(c), { action: "retry_bulk", target: r.name }, async () => {
      const answer = await retryFailures(deps, request, c.var.admin.name, new Date(now() * 1000));
      return { answer, detail: { since: r.since, until: r.until, matched: answer.matched, retried: answer.retried.slice(0, 100), refused: answer.refused.slice(0, 100) } };
    });
    return c.json(answer satisfies BulkRetryAnswer);
  });

  api.post(API.retryTask.path, auditRefusals(auditDeps, "retry", "id"), adminOnly(deps.auth, "json"), validated("param", API.retryTask.params), async (c) => {
    const { id } = c.req.valid("param");
    const answer = await audited(auditDeps, actorOf(c), { action: "retry", target: id }, async () => {
      const done = await retryTask(deps, id, c.var.admin.name, new Date(now() * 1000));
      const answer: RetryAnswer = { task_id: done.taskId, retry_of: id, queue: done.queue, arguments_from: done.argumentsFrom };
      return { answer, detail: { new_task_id: done.taskId, queue: done.queue, arguments_from: done.argumentsFrom } };
    });
    return c.json(answer satisfies RetryAnswer);
  });

  api.post(API.requeueStranded.path, auditRefusals(auditDeps, "requeue", "hostname"), adminOnly(deps.auth, "json"), validated("param", API.requeueStranded.params), async (c) => {
    const { hostname } = c.req.valid("param");
    const answer = await audited(auditDeps, actorOf(c), { action: "requeue", target: hostname }, async () => {
      const done = await requeueStranded(deps, hostname, now());
      const answer: RequeueAnswer = { requeued: done.requeued, task_ids: done.taskIds, skipped: done.skipped };
      return { answer, detail: { requeued: done.requeued, task_ids: done.taskIds.slice(0, 100), skipped: done.skipped.slice(0, 100) } };
    });
    return c.json(answer satisfies RequeueAnswer);
  });

  api.post(API.purgeQueue.path, auditRefusals(auditDeps, "purge", "name"), adminOnly(deps.auth, "json"), validated("param", API.purgeQueue.params), validated("json", API.purgeQueue.body), async (c) => {
    const { name } = c.req.valid("param");
    const { confirm, broker } = c.req.valid("json");
    const purged = await audited(auditDeps, actorOf(c), { action: "purge", target: broker ? `${broker}/${name}` : name }, async () => {
      const through = broker === undefined ? deps.broker : deps.brokers?.get(broker);
      if (broker !== undefined && !through) throw new HttpError(404, `no broker named ${broker.slice(0, 32)} is watched`);
      const purged = await purgeQueue(through, name, confirm);
      return { answer: purged, detail: { purged } };
    });
    return c.json({ purged } satisfies PurgeAnswer);
  });

  api.get(API.listAudit.path, adminOnly(deps.auth), validated("query", API.listAudit.query), async (c) => {
    const { limit, cursor } = c.req.valid("query");
    const rows = await listAudit(deps.database, { limit: limit + 1, beforeId: cursor });
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return c.json({ entries: page.map(auditJson), next_cursor: rows.length > limit && last ? alertCursor(last.id) : null } satisfies AuditList);
  });

  api.get(API.listTasks.path, validated("query", API.listTasks.query), async (c) => {
    return c.json((await taskListAnswer(deps.database, c.req.valid("query"))) satisfies TaskList);
  });

  api.get(API.listWorkers.path, validated("query", API.listWorkers.query), async (c) =>
    c.json((await workerListAnswer(deps.database, now(), c.req.valid("query").broker)) satisfies WorkerList),
  );

  api.get(API.listQueues.path, validated("query", API.listQueues.query), async (c) =>
    c.json((await queueListAnswer(deps.database, c.req.valid("query").broker)) satisfies QueueList),
  );

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
  api.post(API.declareSchedule.path, auditRefusals(auditDeps, "schedule_add"), adminOnly(deps.auth, "json"), validated("json", API.declareSchedule.body), async (c) => {
    const s = c.req.valid("json");
    const row = await audited(auditDeps, actorOf(c), { action: "schedule_add", target: s.name }, async () => {
      if (configured.has(s.name)) throw new HttpError(409, `${s.name} is declared in BEAT_SCHEDULES: change it there`);
      const row = await declareSchedule(deps.database, { name: s.name, task: s.task, expectedIntervalS: s.every_s ?? null, cron: s.cron ?? null }, new Date());
      return { answer: row, detail: { task: s.task, every_s: s.every_s ?? null, cron: s.cron ?? null } };
    });
    return c.json({ schedule: scheduleJson(row) } satisfies ScheduleDeclared, 201);
  });

  api.delete(API.deleteSchedule.path, auditRefusals(auditDeps, "schedule_remove", "name"), adminOnly(deps.auth), validated("param", API.deleteSchedule.params), async (c) => {
    const { name } = c.req.valid("param");
    await audited(auditDeps, actorOf(c), { action: "schedule_remove", target: name }, async () => {
      if (configured.has(name)) throw new HttpError(409, `${name} is declared in BEAT_SCHEDULES: remove it there`);
      const row = (await listSchedules(deps.database)).find((s) => s.name === name);
      if (!row) throw new HttpError(404, `no schedule named ${name.slice(0, 255)}`);
      if (row.source !== "api") throw new HttpError(409, `${name} was learned from its arrivals, not declared: it is forgotten once the task stops arriving`);
      await deleteSchedule(deps.database, name);
      return { answer: null, detail: { task: row.task } };
    });
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
