/**
 * The API's read answers, built from the store's queries: the JSON API
 * (routes.ts) and the MCP server (src/mcp/) answer with the same functions,
 * so an agent and a script see the same task.
 */
import type { z } from "zod";
import { alertsForSubject, listAlerts } from "../alerts/store.ts";
import type { Database } from "../store/database.ts";
import { listQueues } from "../store/queries/queues.ts";
import { retryLinks } from "../store/queries/audit.ts";
import { getTask, getTaskEvents, listTasks } from "../store/queries/tasks.ts";
import { getWorker, listWorkers } from "../store/queries/workers.ts";
import { getWorkerConfig, memoryHistory } from "../store/queries/worker-config.ts";
import {
  type AlertList,
  type AlertListQuery,
  type QueueList,
  type TaskAnswer,
  type TaskList,
  type TaskListQuery,
  type WorkerAnswer,
  type WorkerList,
  alertCursor,
} from "./schemas.ts";
import { alertJson, eventJson, queueJson, taskJson, workerAnswerJson, workerJson } from "./serialize.ts";

/** One task with its events and alerts; null for an id never seen (never PENDING). */
export async function taskAnswer(database: Database, id: string): Promise<TaskAnswer | null> {
  const task = await getTask(database, id);
  if (!task) return null;
  const [events, alerts, links] = await Promise.all([getTaskEvents(database, [id]), alertsForSubject(database, id), retryLinks(database, id)]);
  const json = { ...taskJson(task, events, alerts.map(alertJson)), retry_of: links.retryOf, retried_as: links.retriedAs };
  return { task: json, events: events.map(eventJson) };
}

/** A page of tasks, newest first, each with its executions. */
export async function taskListAnswer(database: Database, query: TaskListQuery): Promise<TaskList> {
  const page = await listTasks(database, query);
  const events = await getTaskEvents(
    database,
    page.tasks.map((t) => t.id),
  );
  const byTask = Map.groupBy(events, (e) => e.taskId);
  return { tasks: page.tasks.map((t) => taskJson(t, byTask.get(t.id) ?? [])), next_cursor: page.nextCursor };
}

/** A page of alerts, newest first. */
export async function alertListAnswer(database: Database, query: z.output<typeof AlertListQuery>): Promise<AlertList> {
  const { status, kind, broker, limit, cursor } = query;
  const rows = await listAlerts(database, { status, kind, broker, limit: limit + 1, beforeId: cursor });
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return { alerts: page.map(alertJson), next_cursor: rows.length > limit && last ? alertCursor(last.id) : null };
}

/** `now`: unix seconds, for Celery's heartbeat rule; `broker`: only that broker's workers. */
export async function workerListAnswer(database: Database, now: number, broker?: string): Promise<WorkerList> {
  return { workers: (await listWorkers(database, broker)).map((w) => workerJson(w, now)) };
}

/** One worker with its latest configuration reading and findings; null for a hostname never seen. */
export async function workerAnswer(database: Database, hostname: string, now: number): Promise<WorkerAnswer | null> {
  const row = await getWorker(database, hostname);
  if (!row) return null;
  const [config, memory] = await Promise.all([getWorkerConfig(database, hostname), memoryHistory(database, hostname)]);
  return workerAnswerJson(row, config, memory, now);
}

export async function queueListAnswer(database: Database, broker?: string): Promise<QueueList> {
  return { queues: (await listQueues(database, broker)).map(queueJson) };
}
