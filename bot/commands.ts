/**
 * `/celery <command> <argument>`: parsing the text Slack sends and answering
 * it from the store, in the API's JSON shapes.
 */
import { alertJson, taskJson, workerJson, queueJson } from "../src/api/serialize.ts";
import { alertsForSubject, listAlerts } from "../src/alerts/store.ts";
import type { Database } from "../src/store/database.ts";
import { listQueues } from "../src/store/queries/queues.ts";
import { getTask, getTaskEvents } from "../src/store/queries/tasks.ts";
import { getWorker, listWorkers } from "../src/store/queries/workers.ts";
import {
  alertsAnswer,
  helpAnswer,
  type Links,
  neverSeenAnswer,
  queueAnswer,
  type SlackMessage,
  taskAnswer,
  unknownAnswer,
  workerAnswer,
} from "./messages.ts";

export type Command =
  | { kind: "task"; id: string }
  | { kind: "worker"; hostname: string }
  | { kind: "queue"; name: string }
  | { kind: "alerts" }
  | { kind: "help"; unknown?: string };

/** Ids, hostnames and queue names are at most this long (the store's bound). */
const MAX_ARGUMENT = 255;

export function parseCommand(text: string): Command {
  const [word = "", ...rest] = text.trim().split(/\s+/);
  const argument = rest.join(" ").trim();
  const verb = word.toLowerCase();
  const needs = (make: (a: string) => Command): Command =>
    argument && argument.length <= MAX_ARGUMENT ? make(argument) : { kind: "help", unknown: text.trim().slice(0, 60) };
  switch (verb) {
    case "task":
      return needs((id) => ({ kind: "task", id }));
    case "worker":
      return needs((hostname) => ({ kind: "worker", hostname }));
    case "queue":
      return needs((name) => ({ kind: "queue", name }));
    case "alerts":
      return { kind: "alerts" };
    case "help":
    case "":
      return { kind: "help" };
    default:
      return { kind: "help", unknown: text.trim().slice(0, 60) };
  }
}

export async function answer(command: Command, database: Database, links: Links, now = Date.now() / 1000): Promise<SlackMessage> {
  switch (command.kind) {
    case "task": {
      const task = await getTask(database, command.id);
      if (!task) return neverSeenAnswer(command.id, links);
      const [events, alerts] = await Promise.all([getTaskEvents(database, [command.id]), alertsForSubject(database, command.id)]);
      return taskAnswer(taskJson(task, events, alerts.map(alertJson)), now, links);
    }
    case "worker": {
      const w = await getWorker(database, command.hostname);
      if (!w) {
        const known = (await listWorkers(database)).map((x) => x.hostname);
        return unknownAnswer("worker", command.hostname, known, links.workers());
      }
      const open = await listAlerts(database, { status: "open", subject: command.hostname, limit: 20 });
      return workerAnswer(workerJson(w, now), open.map(alertJson), now, links);
    }
    case "queue": {
      const all = await listQueues(database);
      const q = all.find((x) => x.name === command.name);
      if (!q) return unknownAnswer("queue", command.name, all.map((x) => x.name), links.queues());
      const open = await listAlerts(database, { status: "open", kind: "queue_backlog", subject: command.name, limit: 5 });
      return queueAnswer(queueJson(q), open.map(alertJson), now, links);
    }
    case "alerts":
      return alertsAnswer((await listAlerts(database, { status: "open", limit: 100 })).map(alertJson), now, links);
    case "help":
      return helpAnswer(links, command.unknown);
  }
}
