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
