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
import { AlertFilter, RevokeForm, TaskIdParams, TaskListQuery, WorkerParams } from "../api/schemas.ts";
import { alertJson, eventJson, queueJson, scheduleJson, taskJson, workerJson } from "../api/serialize.ts";
import type { Database } from "../store/database.ts";
import { listQueues } from "../store/queries/queues.ts";
import { getTask, getTaskEvents, listTasks, tasksPerMinute } from "../store/queries/tasks.ts";
import { getWorker, listWorkers } from "../store/queries/workers.ts";
import { queueHistory } from "../store/queries/queues.ts";
import { listSchedules } from "../store/queries/detect.ts";
import { QueuesPage } from "../../views/queues.tsx";
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
import type { Logger } from "../log.ts";
import { revokeLogLine, revokeTask } from "../api/revoke.ts";

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
  log?: Logger;
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
  const pages = new Hono<Env>();
  // Every page's queries and rendering: a 503 page rather than a hang when the database does not answer.
  const inTime = answerWithin();

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
    return c.html(
      <Layout user={currentUser(c)} title="Overview" path="/">
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
      q: filters.q,
    };
    const rows = { tasks, query, nextCursor: page.nextCursor, searchedWindow: page.searchedWindow, now: now() };
    if (c.req.query("fragment") === "rows") return c.html(<TaskRows {...rows} />);
    return c.html(
      <Layout user={currentUser(c)} title="Tasks" path="/tasks">
        <TasksPage {...rows} />
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
    const [events, alerts] = await Promise.all([getTaskEvents(deps.database, [id]), alertsForSubject(deps.database, id)]);
    const user = currentUser(c);
    // Only an admin sees the revoke form; it carries the token that proves it came from this page.
    const revoke = deps.auth && user?.role === "admin" ? { token: deps.auth.formToken(user) } : undefined;
    const revoked = c.req.query("revoked");
    const flash =
      revoked !== undefined
        ? `Revoke sent${c.req.query("terminated") ? ", with terminate" : ""}: ${Number(revoked) || 0} worker(s) acknowledged it. The state below changes when the worker reports it.`
        : undefined;
    return c.html(
      <Layout user={user} title={task.name ?? id} path="/tasks">
        <TaskPage task={taskJson(task, events, alerts.map(alertJson))} events={events.map(eventJson)} now={now()} revoke={revoke} flash={flash} />
      </Layout>,
    );
  });

  pages.post("/tasks/:id/revoke", bodyAtMost(), adminOnly(deps.auth, "form"), validated("param", TaskIdParams), validated("form", RevokeForm), async (c) => {
    const { id } = c.req.valid("param");
    const request = c.req.valid("form");
    const acknowledged = await revokeTask(deps.broker, id, request);
    deps.log?.info(revokeLogLine(c.var.admin.name, id, request, acknowledged, " from its page"));
    return c.redirect(`/tasks/${encodeURIComponent(id)}?revoked=${acknowledged.length}${request.terminate ? "&terminated=1" : ""}`, 303);
  });

  pages.get("/workers", inTime, async (c) => {
    const t = now();
    const workers = (await listWorkers(deps.database)).map((w) => workerJson(w, t));
    return c.html(
      <Layout user={currentUser(c)} title="Workers" path="/workers">
        <WorkersPage workers={workers} now={t} />
      </Layout>,
    );
  });

  pages.get("/workers/:hostname", validated("param", WorkerParams), inTime, async (c) => {
    const { hostname } = c.req.valid("param");
    const w = await getWorker(deps.database, hostname);
    if (!w) throw new HttpError(404, `worker ${hostname} was never seen`);
    const t = now();
    const alerts = await alertsForSubject(deps.database, hostname);
    return c.html(
      <Layout user={currentUser(c)} title={hostname} path="/workers">
        <WorkerPage w={workerJson(w, t)} alerts={alerts.map(alertJson)} now={t} />
      </Layout>,
    );
  });

  pages.get("/queues", inTime, async (c) => {
    const windowMin = 60;
    const queues = await listQueues(deps.database);
    const since = new Date((now() - windowMin * 60) * 1000);
    const history = new Map<string, { at: number; depth: number }[]>();
    for (const q of queues.slice(0, 50)) {
      const rows = await queueHistory(deps.database, q.name, since, 720);
      history.set(q.name, rows.map((r) => ({ at: r.sampledAt.getTime() / 1000, depth: r.depth })));
    }
    return c.html(
      <Layout user={currentUser(c)} title="Queues" path="/queues">
        <QueuesPage queues={queues.map(queueJson)} history={history} windowMin={windowMin} />
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
    const { status, kind } = c.req.valid("query");
    const alerts = await listAlerts(deps.database, { status, kind, limit: 200 });
    return c.html(
      <Layout user={currentUser(c)} title="Alerts" path="/alerts">
        <AlertsPage alerts={alerts.map(alertJson)} status={status} kind={kind ?? ""} now={now()} />
      </Layout>,
    );
  });

  return pages;
}
