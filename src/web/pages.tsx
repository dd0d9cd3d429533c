/** @jsxImportSource hono/jsx */
/**
 * The web pages (CONTRACT.md), rendered on the server from the same data the
 * JSON API serves. A request from htmx for a fragment (`fragment=rows`) gets
 * just that part; everything else gets the whole page, so each page works
 * with JavaScript off and at a stable URL.
 */
import { Hono } from "hono";
import { listAlerts } from "../alerts/store.ts";
import { isAlertKind } from "../alerts/kinds.ts";
import { HttpError } from "../api/http-error.ts";
import { parseTaskFilters } from "../api/params.ts";
import { alertJson, eventJson, queueJson, scheduleJson, taskJson, workerJson } from "../api/serialize.ts";
import type { Database } from "../store/database.ts";
import { listQueues } from "../store/queries/queues.ts";
import { countTasksByState, getTask, getTaskEvents, listTasks } from "../store/queries/tasks.ts";
import { getWorker, listWorkers } from "../store/queries/workers.ts";
import { queueHistory } from "../store/queries/queues.ts";
import { listSchedules } from "../store/queries/detect.ts";
import { QueuesPage } from "../../views/queues.tsx";
import { SchedulesPage } from "../../views/schedules.tsx";
import { WorkerPage, WorkersPage } from "../../views/workers.tsx";
import { alertsForSubject } from "../alerts/store.ts";
import { AlertsPage } from "../../views/alerts.tsx";
import { Layout } from "../../views/layout.tsx";
import { OverviewPage } from "../../views/overview.tsx";
import { NeverSeen, TaskPage } from "../../views/task.tsx";
import { type TaskQuery, TaskRows, TasksPage } from "../../views/tasks.tsx";
import type { LiveHub } from "./live.ts";

const NEVER_SEEN =
  "No event and no result for this id has reached Crisper. Either it was never sent, it ran before Crisper was watching, or its workers send no task events and no result backend is configured. (Celery's AsyncResult would call it PENDING: it says that for any id, even one that never existed.)";

const ASSETS: Record<string, string> = {
  "htmx.min.js": "htmx.org/dist/htmx.min.js",
  "sse.min.js": "htmx-ext-sse/dist/sse.min.js",
};

export function createPageRoutes(deps: { database: Database; live?: LiveHub; now?: () => number }) {
  const now = deps.now ?? (() => Date.now() / 1000);
  const pages = new Hono();

  pages.get("/assets/:file", async (c) => {
    const path = ASSETS[c.req.param("file")];
    if (!path) throw new HttpError(404, "no such asset");
    const file = Bun.file(Bun.resolveSync(path, import.meta.dir));
    return new Response(file, { headers: { "content-type": "text/javascript", "cache-control": "public, max-age=86400" } });
  });

  pages.get("/live", (c) => {
    if (!deps.live) throw new HttpError(404, "live updates are served by the web process");
    return deps.live.handle(c);
  });

  pages.get("/", async (c) => {
    const t = now();
    const [counts, workers, queues, alerts] = await Promise.all([
      countTasksByState(deps.database, new Date((t - 3600) * 1000)),
      listWorkers(deps.database),
      listQueues(deps.database),
      listAlerts(deps.database, { status: "open", limit: 100 }),
    ]);
    return c.html(
      <Layout title="Overview" path="/">
        <OverviewPage
          counts={counts}
          workers={workers.map((w) => workerJson(w, t))}
          queues={queues.map(queueJson)}
          alerts={alerts.map(alertJson)}
          now={t}
        />
      </Layout>,
    );
  });

  pages.get("/tasks", async (c) => {
    const filters = parseTaskFilters((n) => c.req.query(n));
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
    if (c.req.query("fragment") === "rows") return c.html(<TaskRows tasks={tasks} query={query} nextCursor={page.nextCursor} now={now()} />);
    return c.html(
      <Layout title="Tasks" path="/tasks">
        <TasksPage tasks={tasks} query={query} nextCursor={page.nextCursor} now={now()} />
      </Layout>,
    );
  });

  pages.get("/tasks/:id", async (c) => {
    const id = c.req.param("id").slice(0, 255);
    const task = await getTask(deps.database, id);
    if (!task) {
      c.status(404);
      return c.html(
        <Layout title="Never seen" path="/tasks">
          <NeverSeen id={id} hint={NEVER_SEEN} />
        </Layout>,
      );
    }
    const [events, alerts] = await Promise.all([getTaskEvents(deps.database, [id]), alertsForSubject(deps.database, id)]);
    return c.html(
      <Layout title={task.name ?? id} path="/tasks">
        <TaskPage task={taskJson(task, events, alerts.map(alertJson))} events={events.map(eventJson)} now={now()} />
      </Layout>,
    );
  });

  pages.get("/workers", async (c) => {
    const t = now();
    const workers = (await listWorkers(deps.database)).map((w) => workerJson(w, t));
    return c.html(
      <Layout title="Workers" path="/workers">
        <WorkersPage workers={workers} now={t} />
      </Layout>,
    );
  });

  pages.get("/workers/:hostname", async (c) => {
    const hostname = c.req.param("hostname").slice(0, 255);
    const w = await getWorker(deps.database, hostname);
    if (!w) throw new HttpError(404, `worker ${hostname} was never seen`);
    const t = now();
    const alerts = await alertsForSubject(deps.database, hostname);
    return c.html(
      <Layout title={hostname} path="/workers">
        <WorkerPage w={workerJson(w, t)} alerts={alerts.map(alertJson)} now={t} />
      </Layout>,
    );
  });

  pages.get("/queues", async (c) => {
    const windowMin = 60;
    const queues = await listQueues(deps.database);
    const since = new Date((now() - windowMin * 60) * 1000);
    const history = new Map<string, { at: number; depth: number }[]>();
    for (const q of queues.slice(0, 50)) {
      const rows = await queueHistory(deps.database, q.name, since, 720);
      history.set(q.name, rows.map((r) => ({ at: r.sampledAt.getTime() / 1000, depth: r.depth })));
    }
    return c.html(
      <Layout title="Queues" path="/queues">
        <QueuesPage queues={queues.map(queueJson)} history={history} windowMin={windowMin} />
      </Layout>,
    );
  });

  pages.get("/schedules", async (c) => {
    const schedules = (await listSchedules(deps.database)).map(scheduleJson);
    return c.html(
      <Layout title="Schedules" path="/schedules">
        <SchedulesPage schedules={schedules} now={now()} />
      </Layout>,
    );
  });

  pages.get("/alerts", async (c) => {
    const status = c.req.query("status") || "open";
    if (!["open", "resolved", "all"].includes(status)) throw new HttpError(400, "status: expected open, resolved or all");
    const kind = c.req.query("kind") ?? "";
    if (kind && !isAlertKind(kind)) throw new HttpError(400, "kind: not an alert kind");
    const alerts = await listAlerts(deps.database, {
      status: status as "open" | "resolved" | "all",
      kind: kind && isAlertKind(kind) ? kind : undefined,
      limit: 200,
    });
    return c.html(
      <Layout title="Alerts" path="/alerts">
        <AlertsPage alerts={alerts.map(alertJson)} status={status} kind={kind} now={now()} />
      </Layout>,
    );
  });

  return pages;
}
