/**
 * The MCP server's tools: read-only questions an AI agent may ask Crisper,
 * answered with the same functions and schemas as the JSON API
 * (src/api/answers.ts, src/api/schemas.ts). Each answer is given twice, as
 * the MCP spec asks: `structuredContent` (checked against the tool's output
 * schema by the SDK before it is sent) and the same JSON as text, for
 * clients that read only text.
 *
 * No control action (revoke, retry, purge, …) is offered here: an agent
 * reads, a person acts.
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { alertListAnswer, queueListAnswer, taskAnswer, taskListAnswer, workerAnswer } from "../api/answers.ts";
import { AlertList, AlertListQuery, QueueList, TaskAnswer, TaskIdParams, TaskList, TaskListQuery, WorkerAnswer, WorkerParams } from "../api/schemas.ts";
import { NEVER_SEEN_HINT, neverSeen } from "../format.ts";
import { STATS_WINDOWS, StatsAnswer, type StatsWindowName } from "../api/schemas.ts";
import { statsBucketJson } from "../api/stats.ts";
import { taskNameStats } from "../stats/queries.ts";
import { ANSWER_DEADLINE_MS, DeadlineExceeded, within } from "../http/deadline.ts";
import { DATABASE_NOT_ANSWERING, answerFor } from "../http/errors.ts";
import type { Logger } from "../log.ts";
import type { Database } from "../store/database.ts";

export interface McpDeps {
  database: Database;
  log: Logger;
  /** Clock, unix seconds (tests inject one). */
  now?: () => number;
}

/** The names of the tools, in the order tools/list gives them. */
export const MCP_TOOLS = ["get_task", "search_tasks", "list_alerts", "get_worker", "list_queues", "task_name_stats"] as const;

/** task_name_stats: a name, a window as the task-name pages offer them, and optionally one queue. */
const TaskNameStatsInput = z.object({
  name: z.string().min(1).max(255).meta({ description: "The task's name, exactly (e.g. app.tasks.charge)." }),
  window: z.enum(Object.keys(STATS_WINDOWS) as [StatsWindowName, ...StatsWindowName[]]).default("24h"),
  queue: z.string().max(255).optional().meta({ description: "One queue; every queue when absent." }),
});

/** Every tool only reads Crisper's store. */
const READ_ONLY = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false } as const;

const answered = (value: Record<string, unknown>): CallToolResult => ({
  content: [{ type: "text", text: JSON.stringify(value) }],
  structuredContent: value,
});

/** An answer the tool cannot give: the SDK sends it as a tool error the agent reads. */
const refused = (text: string): CallToolResult => ({ isError: true, content: [{ type: "text", text }] });

export function registerTools(server: McpServer, deps: McpDeps): void {
  const now = deps.now ?? (() => Date.now() / 1000);

  /**
   * Runs a tool's reads within the API's deadline. A failure becomes what the
   * API would say (answerFor: a database that is down is "not answering",
   * a bug a bare "internal error" with its stack in the log), never a
   * driver's message naming hosts.
   */
  const answer = (tool: string, work: () => Promise<CallToolResult>) =>
    within(ANSWER_DEADLINE_MS, work()).catch((e: unknown) => {
      if (e instanceof DeadlineExceeded) return refused(DATABASE_NOT_ANSWERING);
      const error = e instanceof Error ? e : new Error(String(e));
      return refused(answerFor(error, `mcp ${tool}`, deps.log).message);
    });

  server.registerTool(
    "get_task",
    {
      title: "Get a Celery task",
      description:
        "One Celery task by id: its state, arguments, result or exception and traceback, one execution per time a worker ran it (two at the same retries count is a duplicate execution), its alerts, and its events in order (the timeline). An id Crisper never saw is an error saying so: Celery itself reports PENDING for any unknown id.",
      inputSchema: { task_id: TaskIdParams.shape.id },
      outputSchema: TaskAnswer,
      annotations: READ_ONLY,
    },
    ({ task_id }) =>
      answer("get_task", async () => {
        const found = await taskAnswer(deps.database, task_id);
        return found ? answered(found) : refused(`${neverSeen(task_id)}. ${NEVER_SEEN_HINT}`);
      }),
  );

  server.registerTool(
    "search_tasks",
    {
      title: "Search Celery tasks",
      description:
        "Tasks, newest first, filtered as GET /api/tasks: by name, state, worker, queue, text (q: in id, name, args, kwargs, exception) and first-seen time. All parameters are text, as in a query string. Large fields are cut to their first 1000 characters; get_task gives them whole. Page with cursor = next_cursor.",
      inputSchema: TaskListQuery,
      outputSchema: TaskList,
      annotations: READ_ONLY,
    },
    (query) => answer("search_tasks", async () => answered(await taskListAnswer(deps.database, query))),
  );

  server.registerTool(
    "list_alerts",
    {
      title: "List Crisper's alerts",
      description:
        "Alerts, newest first: workers gone offline, tasks lost, stalled or run twice, missed Beat schedules, growing queues, … By status (open, the default; resolved; all) and kind. Page with cursor = next_cursor.",
      inputSchema: AlertListQuery,
      outputSchema: AlertList,
      annotations: READ_ONLY,
    },
    (query) => answer("list_alerts", async () => answered(await alertListAnswer(deps.database, query))),
  );

  server.registerTool(
    "get_worker",
    {
      title: "Get a Celery worker",
      description:
        "One worker by hostname (celery@host): online or offline (and why), its last heartbeat, active and processed counts, load, software, and the tasks it held when last inspected.",
      inputSchema: WorkerParams,
      outputSchema: z.object({ worker: WorkerAnswer }),
      annotations: READ_ONLY,
    },
    ({ hostname }) =>
      answer("get_worker", async () => {
        const worker = await workerAnswer(deps.database, hostname, now());
        return worker ? answered({ worker }) : refused(`Crisper has never seen a worker named ${hostname}`);
      }),
  );

  server.registerTool(
    "list_queues",
    {
      title: "List Celery queues",
      description: "Every queue Crisper watches: waiting messages (depth, and by priority), messages delivered and not yet acknowledged (unacked), and when it was sampled.",
      outputSchema: QueueList,
      annotations: READ_ONLY,
    },
    () => answer("list_queues", async () => answered(await queueListAnswer(deps.database))),
  );

  server.registerTool(
    "task_name_stats",
    {
      title: "Statistics of a Celery task name",
      description:
        "One task name's history over a window (1h, 24h, 7d or 30d; default 24h): per bucket (a minute for 1h, an hour up to 7d, a day beyond), how many succeeded, failed, were retried, revoked or expired, runtime p50/p95/p99 and wait p95 in seconds. Kept past the tasks themselves.",
      inputSchema: TaskNameStatsInput,
      outputSchema: StatsAnswer,
      annotations: READ_ONLY,
    },
    ({ name, window, queue }) =>
      answer("task_name_stats", async () => {
        const to = now();
        const windowS = STATS_WINDOWS[window];
        const bucket = windowS <= 3600 ? 60 : windowS <= 7 * 86_400 ? 3600 : 86_400;
        const buckets = await taskNameStats(deps.database, { name, queue, from: new Date((to - windowS) * 1000), to: new Date(to * 1000), bucket });
        return answered({ buckets: buckets.map(statsBucketJson), bucket_s: bucket } satisfies StatsAnswer);
      }),
  );

}
