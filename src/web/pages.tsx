/** @jsxImportSource hono/jsx */
/**
 * The web pages (CONTRACT.md), rendered on the server from the same data the
 * JSON API serves. A request from htmx for a fragment (`fragment=rows`) gets
 * just that part; everything else gets the whole page, so each page works
 * with JavaScript off and at a stable URL.
 *
 * A page whose queries do not finish within ANSWER_DEADLINE_MS (a database
 * that hangs) or fail because the database is down is a 503 page that says
 * so; a bad parameter is a 400 page that says which. A browser gets these
 * as pages; a client that does not ask for HTML, as `{"error": …}`.
 */
import { type Context, Hono } from "hono";
import { listAlerts } from "../alerts/store.ts";
import { AlertFilter, BrokerQuery, BulkRetryQuery, RevokeForm, TaskIdParams, TaskListQuery, WorkerParams } from "../api/schemas.ts";
import { alertJson, auditJson, brokerJson, eventJson, queueJson, scheduleJson, taskJson, workerAnswerJson, workerJson } from "../api/serialize.ts";
import { getWorkerConfig, memoryHistory } from "../store/queries/worker-config.ts";
import { actorOf, audited, auditRefusals } from "../api/actions/audit.ts";
import { NOTHING_STRANDED_HERE, requeueStranded } from "../api/actions/requeue.ts";
import { retryTask } from "../api/actions/retry.ts";
import { BULK_RETRY_MAX, bulkRetryCandidates, retryFailures } from "../api/actions/retry-bulk.ts";
import { listAudit, retryLinks } from "../store/queries/audit.ts";
import { AuditPage } from "../../views/audit.tsx";
import { BulkRetryPage } from "../../views/retry-bulk.tsx";
import type { User } from "../auth/users.ts";
import type { Database } from "../store/database.ts";
import { listQueues } from "../store/queries/queues.ts";
import { getTask, getTaskEvents, listTasks, tasksPerMinute } from "../store/queries/tasks.ts";
import { getWorker, listWorkers } from "../store/queries/workers.ts";
import { queueHistory } from "../store/queries/queues.ts";
import { listSchedules } from "../store/queries/detect.ts";
import { QueuesPage, queueKey } from "../../views/queues.tsx";
import { BrokerPage } from "../../views/broker.tsx";
import { brokersWithHistory } from "../store/queries/broker.ts";
import { SchedulesPage } from "../../views/schedules.tsx";
import { WorkerPage, WorkersPage } from "../../views/workers.tsx";
import { alertsForSubject } from "../alerts/store.ts";
import { AlertsPage } from "../../views/alerts.tsx";
import { CSS, Layout } from "../../views/layout.tsx";
import { ErrorPage, errorTitle } from "../../views/error.tsx";
import { OverviewPage } from "../../views/overview.tsx";
import { databaseBytes } from "../store/queries/size.ts";
import { NeverSeen, TaskPage } from "../../views/task.tsx";
import { type TaskQuery, TaskRows, TasksPage } from "../../views/tasks.tsx";
import type { LiveHub } from "./live.ts";
import { type Auth, adminOnly, currentUser } from "../http/auth.ts";
import type { Env } from "../http/context.ts";
import { answerWithin } from "../http/deadline.ts";
import { DATABASE_NOT_ANSWERING, type ErrorAnswer, HttpError, validated } from "../http/errors.ts";
import { bodyAtMost } from "../http/requests.ts";
import type { BrokerPort } from "../broker/port.ts";
import type { ReachabilityState } from "../broker/reachability.ts";
import type { Logger } from "../log.ts";
import { brokersFor, revokeTask } from "../api/revoke.ts";
import { brokerNotes } from "./brokers.ts";
import { STATS_WINDOWS, TaskNameParams, TaskNamePageQuery, TaskNamesPageQuery } from "../api/schemas.ts";
import { statsBucketJson, taskNameStatsJson } from "../api/stats.ts";
import { taskNameStats, taskNameSummaries } from "../stats/queries.ts";
import { TaskNamePage, TaskNamesPage } from "../../views/task-names.tsx";

// Imported as files so a compiled binary carries them (no node_modules there).
import htmxJs from "htmx.org/dist/htmx.min.js" with { type: "file" };
import sseJs from "htmx-ext-sse/dist/sse.min.js" with { type: "file" };

const ASSETS: Record<string, string> = {
  "htmx.min.js": htmxJs,
  "sse.min.js": sseJs,
};

export interface PageDeps {
  database: Database;
  live?: LiveHub;
  now?: () => number;
  /** For revoke: who may, and the mailbox to send it through. */
  auth?: Auth;
  broker?: BrokerPort;
  /** Every watched broker by name (BROKERS): revokes go to a task's own; pages filter by them. */
  brokers?: ReadonlyMap<string, BrokerPort>;
  log?: Logger;
  /** Whether the broker can be reached (broker/reachability.ts): the overview says so when it cannot. */
  brokerState?: () => ReachabilityState;
  /** The retention in force (TASK_RETENTION, ALERT_RETENTION, seconds), shown on the overview. */
  retention?: { taskS: number; alertS: number };
}

/**
 * An error as a browser should see it: a page that says what went wrong, in
 * the site's frame. htmx swaps error answers in too (views/layout.tsx), so a
 * link or a live refresh shows the 503 page rather than nothing. Null for a
 * client that does not ask for HTML (curl, scripts): it gets `{"error": …}`.
 */
export function errorPage(c: Context<Env>, answer: ErrorAnswer): Response | Promise<Response> | null {
  const browser = c.req.header("hx-request") !== undefined || (c.req.header("accept") ?? "").includes("text/html");
  if (!browser || c.req.path.startsWith("/api/")) return null;
  return c.html(
    <Layout
      user={currentUser(c)}
      title={errorTitle(answer.status, answer.message)}
      path={c.req.path}
      // A page the database could not give: tried again every 10 s, no script needed.
      refreshS={answer.message === DATABASE_NOT_ANSWERING && c.req.method === "GET" ? 10 : undefined}
    >
      <ErrorPage status={answer.status} message={answer.message} />
    </Layout>,
    answer.status,
  );
}

export function createPageRoutes(deps: PageDeps) {
  const now = deps.now ?? (() => Date.now() / 1000);
  const auditDeps = { database: deps.database, log: deps.log, now };
  const pages = new Hono<Env>();
  /** An admin's form token (the forms of every action carry it); undefined for anyone else. */
  const formToken = (user: User | null) => (deps.auth && user?.role === "admin" ? { token: deps.auth.formToken(user) } : undefined);
  /** The requeue button for an admin, or where the broker strands nothing, why there is none. */
  const requeueFor = (user: User | null) => {
    const form = formToken(user);
    if (!form) return undefined;
    return deps.broker && !deps.broker.capabilities.strandsPrefetched ? { unavailable: NOTHING_STRANDED_HERE } : form;
  };
  // Every page's queries and rendering: a 503 page rather than a hang when the database does not answer.
  const inTime = answerWithin();
  // The brokers' names, for the filters: none shown with a single broker.
  const brokerNames = deps.brokers && deps.brokers.size > 1 ? [...deps.brokers.keys()] : undefined;

  pages.get("/assets/:file", async (c) => {
    const cache = { "cache-control": "public, max-age=86400" };
    if (c.req.param("file") === "crisper.css") return c.body(CSS, 200, { ...cache, "content-type": "text/css; charset=utf-8" });
    const path = ASSETS[c.req.param("file")];
    if (!path) throw new HttpError(404, "no such asset");
    const file = Bun.file(path);
    return new Response(file, { headers: { "content-type": "text/javascript", ...cache } });
  });

  pages.get("/live", (c) => {
    if (!deps.live) throw new HttpError(404, "live updates are served by the web process");
    return deps.live.handle(c);
  });

  // The last hour's counts cost a range scan over that hour's tasks; every
  // open overview re-renders on each live update, so they share one reading
  // for a few seconds.
  let throughputCache: { at: number; value: Promise<Awaited<ReturnType<typeof tasksPerMinute>>> } | null = null;
  const throughputOf = (t: number, windowMin: number) => {
    if (!throughputCache || t - throughputCache.at > 5) {
      const value = tasksPerMinute(deps.database, new Date((t - windowMin * 60) * 1000));
      throughputCache = { at: t, value };
      value.catch(() => (throughputCache = null));
    }
    return throughputCache.value;
  };

  pages.get("/", inTime, async (c) => {
    const t = now();
    const windowMin = 60;
    const [throughput, workers, queues, alerts, gaps, dbBytes] = await Promise.all([
      throughputOf(t, windowMin),
      listWorkers(deps.database),
      listQueues(deps.database),
      listAlerts(deps.database, { status: "open", limit: 100 }),
      listAlerts(deps.database, { status: "all", kind: "event_gap", limit: 50 }),
      databaseBytes(deps.database),
    ]);
    const counts: Record<string, number> = {};
    for (const m of throughput.minutes) for (const [state, n] of Object.entries(m.byState)) counts[state] = (counts[state] ?? 0) + n;
    const broker = deps.brokerState?.();
    return c.html(
      // While the broker cannot be reached, the page looks again by itself.
      <Layout user={currentUser(c)} title="Overview" path="/" refreshS={broker?.status === "unreachable" ? 10 : undefined}>
        <OverviewPage
          counts={counts}
          minutes={throughput.minutes}
          windowMin={windowMin}
          lastTaskAt={throughput.lastTaskAt}
          gaps={gaps.map(alertJson).filter((g) => g.opened_at !== null && Date.parse(g.opened_at) / 1000 > t - 86_400)}
          workers={workers.map((w) => workerJson(w, t))}
          queues={queues.map(queueJson)}
          alerts={alerts.map(alertJson)}
          now={t}
          broker={broker}
          storage={{ databaseBytes: dbBytes, retention: deps.retention }}
        />
      </Layout>,
    );
  });

  pages.get("/tasks", validated("query", TaskListQuery), inTime, async (c) => {
    const filters = c.req.valid("query");
    // A task id pasted into the search box means "show me that task": go
    // straight there (a primary-key lookup) rather than search every text
    // column of every task for it.
    if (filters.q && !filters.cursor && c.req.query("fragment") === undefined && (await getTask(deps.database, filters.q))) {
      const to = `/tasks/${encodeURIComponent(filters.q)}`;
      if (c.req.header("hx-request")) return c.body(null, 200, { "HX-Redirect": to });
      return c.redirect(to, 303);
    }
    const page = await listTasks(deps.database, filters);
    const events = await getTaskEvents(deps.database, page.tasks.map((x) => x.id));
    const byTask = Map.groupBy(events, (e) => e.taskId);
    const tasks = page.tasks.map((x) => taskJson(x, byTask.get(x.id) ?? []));
    const query: TaskQuery = {
      name: filters.name,
      state: filters.state,
      worker: filters.worker,
      queue: filters.queue,
      reason: filters.reason,
      broker: filters.broker,
      q: filters.q,
    };
    const rows = { tasks, query, nextCursor: page.nextCursor, searchedWindow: page.searchedWindow, now: now(), brokers: brokerNames };
    if (c.req.query("fragment") === "rows") return c.html(<TaskRows {...rows} />);
    return c.html(
      <Layout user={currentUser(c)} title="Tasks" path="/tasks">
        <TasksPage {...rows} />
      </Layout>,
    );
  });

  pages.get("/tasks/retry-failures", validated("query", BulkRetryQuery), inTime, async (c) => {
    const q = c.req.valid("query");
    const ids = q.name && q.since && q.until ? await bulkRetryCandidates(deps.database, q.name, q.since, q.until) : [];
    const user = currentUser(c);
    return c.html(
      <Layout user={user} title="Retry failures" path="/tasks">
        <BulkRetryPage
          name={q.name ?? ""}
          since={q.since?.toISOString() ?? c.req.query("since") ?? ""}
          until={q.until?.toISOString() ?? c.req.query("until") ?? ""}
          ids={ids}
          max={BULK_RETRY_MAX}
          token={formToken(user)?.token}
        />
      </Layout>,
    );
  });

  pages.post("/tasks/retry-failures", bodyAtMost(), auditRefusals(auditDeps, "retry_bulk"), adminOnly(deps.auth, "form"), validated("form", BulkRetryQuery), async (c) => {
    const q = c.req.valid("form");
    if (!q.name || !q.since || !q.until) throw new HttpError(400, "name, since and until are needed");
    const confirm = Number((await c.req.parseBody()).confirm);
    const request = { name: q.name, since: q.since, until: q.until, confirm };
    const done = await audited(auditDeps, actorOf(c), { action: "retry_bulk", target: q.name }, async () => {
      const answer = await retryFailures(deps, request, c.var.admin.name, new Date(now() * 1000));
      return { answer, detail: { since: q.since, until: q.until, matched: answer.matched, retried: answer.retried.slice(0, 100), refused: answer.refused.slice(0, 100) } };
    });
    return c.html(
      <Layout user={c.var.admin} title="Retry failures" path="/tasks">
        <BulkRetryPage name={q.name} since={q.since.toISOString()} until={q.until.toISOString()} ids={[]} max={BULK_RETRY_MAX} done={done} />
      </Layout>,
    );
  });

  pages.get("/tasks/:id", validated("param", TaskIdParams), inTime, async (c) => {
    const { id } = c.req.valid("param");
    const task = await getTask(deps.database, id);
    if (!task) {
      c.status(404);
      return c.html(
        <Layout user={currentUser(c)} title="Never seen" path="/tasks">
          <NeverSeen id={id} />
        </Layout>,
      );
    }
    const [events, alerts, links] = await Promise.all([getTaskEvents(deps.database, [id]), alertsForSubject(deps.database, id), retryLinks(deps.database, id)]);
    const user = currentUser(c);
    // Only an admin sees the revoke and retry forms; they carry the token that proves they came from this page.
    const revoke = formToken(user);
    const revoked = c.req.query("revoked");
    const retried = c.req.query("retried");
    const flash =
      revoked !== undefined
        ? `Revoke sent${c.req.query("terminated") ? ", with terminate" : ""}: ${Number(revoked) || 0} worker(s) acknowledged it. The state below changes when the worker reports it.`
        : retried !== undefined && links.retriedAs.includes(retried)
          ? `Sent again as a new task, with the same arguments: ${retried}.`
          : undefined;
    const json = { ...taskJson(task, events, alerts.map(alertJson)), retry_of: links.retryOf, retried_as: links.retriedAs };
    return c.html(
      <Layout user={user} title={task.name ?? id} path="/tasks">
        <TaskPage task={json} events={events.map(eventJson)} now={now()} revoke={revoke} flash={flash} />
      </Layout>,
    );
  });

  pages.post("/tasks/:id/revoke", bodyAtMost(), auditRefusals(auditDeps, "revoke", "id"), adminOnly(deps.auth, "form"), validated("param", TaskIdParams), validated("form", RevokeForm), async (c) => {
    const { id } = c.req.valid("param");
    const request = c.req.valid("form");
    const action = request.terminate ? "terminate" : "revoke";
    const acknowledged = await audited(auditDeps, actorOf(c), { action, target: id }, async () => {
      const task = await getTask(deps.database, id);
      const acknowledged = await revokeTask(brokersFor(deps, task?.broker), id, request);
      return { answer: acknowledged, detail: { signal: request.terminate ? request.signal : null, acknowledged_by: acknowledged, from: "page" } };
    });
    return c.redirect(`/tasks/${encodeURIComponent(id)}?revoked=${acknowledged.length}${request.terminate ? "&terminated=1" : ""}`, 303);
  });

  pages.post("/tasks/:id/retry", bodyAtMost(), auditRefusals(auditDeps, "retry", "id"), adminOnly(deps.auth, "form"), validated("param", TaskIdParams), async (c) => {
    const { id } = c.req.valid("param");
    const done = await audited(auditDeps, actorOf(c), { action: "retry", target: id }, async () => {
      const done = await retryTask(deps, id, c.var.admin.name, new Date(now() * 1000));
      return { answer: done, detail: { new_task_id: done.taskId, queue: done.queue, arguments_from: done.argumentsFrom, from: "page" } };
    });
    return c.redirect(`/tasks/${encodeURIComponent(id)}?retried=${encodeURIComponent(done.taskId)}`, 303);
  });

  pages.post("/workers/:hostname/requeue-stranded", bodyAtMost(), auditRefusals(auditDeps, "requeue", "hostname"), adminOnly(deps.auth, "form"), validated("param", WorkerParams), async (c) => {
    const { hostname } = c.req.valid("param");
    const done = await audited(auditDeps, actorOf(c), { action: "requeue", target: hostname }, async () => {
      const done = await requeueStranded(deps, hostname, now());
      return { answer: done, detail: { requeued: done.requeued, task_ids: done.taskIds.slice(0, 100), skipped: done.skipped.slice(0, 100), from: "page" } };
    });
    return c.redirect(`/workers/${encodeURIComponent(hostname)}?requeued=${done.requeued}`, 303);
  });

  pages.get("/audit", adminOnly(deps.auth), inTime, async (c) => {
    const entries = (await listAudit(deps.database, { limit: 200 })).map(auditJson);
    return c.html(
      <Layout user={c.var.admin} title="Audit" path="/audit">
        <AuditPage entries={entries} now={now()} />
      </Layout>,
    );
  });

  pages.get("/workers", validated("query", BrokerQuery), inTime, async (c) => {
    const t = now();
    const { broker } = c.req.valid("query");
    const workers = (await listWorkers(deps.database, broker)).map((w) => workerJson(w, t));
    return c.html(
      <Layout user={currentUser(c)} title="Workers" path="/workers">
        <WorkersPage workers={workers} now={t} broker={broker} brokers={brokerNames} />
      </Layout>,
    );
  });

  pages.get("/workers/:hostname", validated("param", WorkerParams), validated("query", BrokerQuery), inTime, async (c) => {
    const { hostname } = c.req.valid("param");
    const w = await getWorker(deps.database, hostname, c.req.valid("query").broker);
    if (!w) throw new HttpError(404, `worker ${hostname} was never seen`);
    const t = now();
    // A worker's name is unique per broker: its own broker's alerts.
    const [alerts, config, memory] = await Promise.all([alertsForSubject(deps.database, hostname, w.broker), getWorkerConfig(deps.database, hostname), memoryHistory(deps.database, hostname)]);
    const user = currentUser(c);
    const requeued = c.req.query("requeued");
    const flash = requeued !== undefined ? `${Number(requeued) || 0} stranded message(s) put back on their queues: the remaining workers run them now.` : undefined;
    return c.html(
      <Layout user={user} title={hostname} path="/workers">
        <WorkerPage w={workerAnswerJson(w, config, memory, t)} alerts={alerts.map(alertJson)} now={t} requeue={requeueFor(user)} flash={flash} />
      </Layout>,
    );
  });

  pages.get("/queues", validated("query", BrokerQuery), inTime, async (c) => {
    const windowMin = 60;
    const { broker } = c.req.valid("query");
    const queues = await listQueues(deps.database, broker);
    const since = new Date((now() - windowMin * 60) * 1000);
    const history = new Map<string, { at: number; depth: number }[]>();
    for (const q of queues.slice(0, 50)) {
      const rows = await queueHistory(deps.database, q.name, since, 720, q.broker);
      history.set(queueKey(q.broker, q.name), rows.map((r) => ({ at: r.sampledAt.getTime() / 1000, depth: r.depth })));
    }
    const notes = await brokerNotes(deps.brokers ?? (deps.broker ? new Map([["default", deps.broker]]) : new Map()), broker);
    return c.html(
      <Layout user={currentUser(c)} title="Queues" path="/queues">
        <QueuesPage queues={queues.map(queueJson)} history={history} windowMin={windowMin} broker={broker} brokers={brokerNames} notes={notes} />
      </Layout>,
    );
  });

  pages.get("/schedules", inTime, async (c) => {
    const schedules = (await listSchedules(deps.database)).map(scheduleJson);
    return c.html(
      <Layout user={currentUser(c)} title="Schedules" path="/schedules">
        <SchedulesPage schedules={schedules} now={now()} />
      </Layout>,
    );
  });

  pages.get("/alerts", validated("query", AlertFilter), inTime, async (c) => {
    const { status, kind, broker } = c.req.valid("query");
    const alerts = await listAlerts(deps.database, { status, kind, broker, limit: 200 });
    return c.html(
      <Layout user={currentUser(c)} title="Alerts" path="/alerts">
        <AlertsPage alerts={alerts.map(alertJson)} status={status} kind={kind ?? ""} now={now()} requeue={requeueFor(currentUser(c))} broker={broker} brokers={brokerNames} />
      </Layout>,
    );
  });

  pages.get("/broker", inTime, async (c) => {
    const t = now();
    const [brokers, eviction, memory] = await Promise.all([
      brokersWithHistory(deps.database, new Date((t - 3600) * 1000)),
      listAlerts(deps.database, { status: "open", kind: "broker_eviction_risk", limit: 20 }),
      listAlerts(deps.database, { status: "open", kind: "broker_memory_high", limit: 20 }),
    ]);
    return c.html(
      <Layout user={currentUser(c)} title="Broker" path="/broker">
        <BrokerPage brokers={brokers.map((b) => brokerJson(b.latest, b.history))} alerts={[...eviction, ...memory].map(alertJson)} now={t} />
      </Layout>,
    );
  });

  pages.get("/task-names", validated("query", TaskNamesPageQuery), inTime, async (c) => {
    const { window, sort, dir } = c.req.valid("query");
    const to = now();
    const windowS = STATS_WINDOWS[window];
    const names = await taskNameSummaries(deps.database, { from: new Date((to - windowS) * 1000), to: new Date(to * 1000), points: 30 });
    return c.html(
      <Layout user={currentUser(c)} title="Task names" path="/task-names">
        <TaskNamesPage rows={names.map((n) => ({ ...taskNameStatsJson(n, windowS), series: n.series }))} window={window} sort={sort} dir={dir} />
      </Layout>,
    );
  });

  pages.get("/task-names/:name", validated("param", TaskNameParams), validated("query", TaskNamePageQuery), inTime, async (c) => {
    const { name } = c.req.valid("param");
    const { window, queue } = c.req.valid("query");
    const to = now();
    const windowS = STATS_WINDOWS[window];
    // About 24 to 168 bars: minutes for an hour, hours up to a week, days beyond.
    const bucket = windowS <= 3600 ? 60 : windowS <= 7 * 86_400 ? 3600 : 86_400;
    const [buckets, failed] = await Promise.all([
      taskNameStats(deps.database, { name, queue, from: new Date((to - windowS) * 1000), to: new Date(to * 1000), bucket }),
      listTasks(deps.database, { name, state: "FAILURE", queue, limit: 20 }),
    ]);
    return c.html(
      <Layout user={currentUser(c)} title={name} path="/task-names">
        <TaskNamePage
          name={name}
          queue={queue}
          window={window}
          bucketS={bucket}
          buckets={buckets.map(statsBucketJson)}
          failures={failed.tasks.map((t) => taskJson(t, []))}
          now={to}
        />
      </Layout>,
    );
  });

  return pages;
}
