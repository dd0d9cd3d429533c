/**
 * A task message in Celery's protocol v2 (celery/app/amqp.py, `as_task_v2`),
 * as Celery's producer sends it: the task's identity and lineage in the
 * headers, `[args, kwargs, embed]` as the JSON body. Crisper sends one to
 * retry a task (src/api/retry.ts); each broker adapter publishes it the way
 * kombu does on that broker (Redis: a JSON envelope LPUSHed onto the queue's
 * list; RabbitMQ: an AMQP message with these headers).
 */
import { hostname } from "node:os";
import { argsToRepr, type Literal, literalToJson, literalToRepr } from "./python-literal.ts";

export interface TaskMessage {
  id: string;
  /** The task's name (`headers.task`). */
  task: string;
  /** The queue it goes to, and how kombu routes it there. */
  queue: string;
  exchange: string;
  routingKey: string;
  /** 0–9, as `apply_async(priority=…)`. */
  priority: number;
  headers: Record<string, unknown>;
  /** The JSON body: `[args, kwargs, {callbacks, errbacks, chain, chord}]`. */
  body: string;
  contentType: "application/json";
  contentEncoding: "utf-8";
}

export interface NewTask {
  id: string;
  task: string;
  args: Literal[];
  kwargs: { [key: string]: Literal };
  queue: string;
  exchange?: string | null;
  routingKey?: string | null;
  priority?: number | null;
  rootId?: string | null;
  parentId?: string | null;
}

/** Who sent it, as Celery writes `origin` (`anon_nodename`: `gen<pid>@<host>`). */
export const ORIGIN = `crisper${process.pid}@${hostname()}`;

export function taskMessage(t: NewTask): TaskMessage {
  const headers = {
    lang: "py",
    task: t.task,
    id: t.id,
    shadow: null,
    eta: null,
    expires: null,
    group: null,
    group_index: null,
    retries: 0,
    timelimit: [null, null],
    root_id: t.rootId ?? t.id,
    parent_id: t.parentId ?? null,
    argsrepr: argsToRepr(t.args),
    kwargsrepr: literalToRepr(t.kwargs),
    origin: ORIGIN,
    ignore_result: false,
  };
  // Callbacks, errbacks, chain and chord are not sent again: a retry runs the one task.
  const body = `[${literalToJson(t.args)}, ${literalToJson(t.kwargs)}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]`;
  const priority = Math.max(0, Math.min(9, Math.trunc(t.priority ?? 0)));
  return {
    id: t.id,
    task: t.task,
    queue: t.queue,
    exchange: t.exchange ?? "",
    routingKey: t.routingKey ?? t.queue,
    priority,
    headers,
    body,
    contentType: "application/json",
    contentEncoding: "utf-8",
  };
}

/**
 * The `task-sent` event Celery's producer sends beside the message when
 * `task_send_sent_event` is on (celery/app/amqp.py, `send_task_message`):
 * with it, Crisper (and any other monitor) knows the new task at once,
 * before a worker takes it.
 */
export function taskSentEvent(m: TaskMessage, now: number): Record<string, unknown> {
  const h = m.headers;
  return {
    hostname: ORIGIN,
    utcoffset: 0,
    pid: process.pid,
    clock: 1,
    uuid: m.id,
    root_id: h.root_id,
    parent_id: h.parent_id,
    name: m.task,
    args: h.argsrepr,
    kwargs: h.kwargsrepr,
    retries: 0,
    eta: null,
    expires: null,
    queue: m.queue,
    exchange: m.exchange,
    routing_key: m.routingKey,
    timestamp: now,
    type: "task-sent",
  };
}
