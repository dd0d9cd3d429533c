/**
 * Retrying a task: a new task with the same name, arguments, queue and
 * routing key, sent as Celery's producer sends one (celery/task-message.ts),
 * and linked both ways (`retry_of` on the new task, `retried_as` on the
 * original).
 *
 * Only with the arguments known exactly; otherwise refused with the reason,
 * never sent as a guess. They are known exactly from:
 * 1. the result backend's meta with `result_extended` (the real JSON `args`
 *    and `kwargs`, read now, as the backend has them);
 * 2. the `argsrepr`/`kwargsrepr` Celery put in the task's events, when they
 *    read completely as literals of JSON types (celery/python-literal.ts:
 *    anything Celery cut at 1,024 characters, or that saferepr makes
 *    ambiguous, is refused).
 * Crisper's own stored copies are not used: they are bounded and re-encoded.
 */
import { randomUUID } from "node:crypto";
import { alertsForSubject } from "../../alerts/store.ts";
import type { BrokerPort } from "../../broker/port.ts";
import { brokersFor } from "../revoke.ts";
import { isLiteralDict, type Literal, parseLiteral } from "../../celery/python-literal.ts";
import type { TaskState } from "../../celery/states.ts";
import { taskMessage } from "../../celery/task-message.ts";
import { HttpError } from "../../http/errors.ts";
import type { Database } from "../../store/database.ts";
import { recordRetry } from "../../store/queries/audit.ts";
import { getTask, getTaskEvents, type EventRecord } from "../../store/queries/tasks.ts";

/** Finished without success: these may be sent again. A lost task (its worker died) may too. */
const RETRIABLE: ReadonlySet<TaskState> = new Set(["FAILURE", "REVOKED", "REJECTED"]);

export interface KnownArguments {
  args: Literal[];
  kwargs: { [key: string]: Literal };
  /** Where they were read: `result_backend` or `argsrepr`. */
  from: "result_backend" | "argsrepr";
}

export type ArgumentsAnswer = { ok: true; known: KnownArguments; queue: string | null } | { ok: false; reason: string };

/**
 * The task's exact arguments, from the result backend's meta (JSON text, as
 * stored) or else its events' reprs; with why not when neither will do.
 */
export function knownArguments(meta: string | null, events: readonly EventRecord[]): ArgumentsAnswer {
  let metaQueue: string | null = null;
  let why = "the result backend has no arguments for it (Celery's result_extended is off, or the result expired)";
  if (meta !== null) {
    const m = parseLiteral(meta, "json");
    if (!m.ok) why = `the result backend's copy does not read exactly as JSON (${m.reason})`;
    else if (isLiteralDict(m.value)) {
      const { args, kwargs, queue } = m.value;
      if (typeof queue === "string") metaQueue = queue;
      if (Array.isArray(args) && isLiteralDict(kwargs)) return { ok: true, known: { args, kwargs, from: "result_backend" }, queue: metaQueue };
    }
  }
  // task-sent is the producer's own; task-received the worker's copy of the same headers.
  const withRepr = ["task-sent", "task-received"]
    .map((type) => events.find((e) => e.source === "events" && e.type === type && typeof e.fields.args === "string" && typeof e.fields.kwargs === "string"))
    .find((e) => e !== undefined);
  if (!withRepr) return { ok: false, reason: `${why}, and no task-sent or task-received event carried argsrepr/kwargsrepr` };
  const argsText = withRepr.fields.args as string;
  const kwargsText = withRepr.fields.kwargs as string;
  // Crisper stores U+FFFD for a character it could not keep (a NUL, half a surrogate pair).
  if ((argsText + kwargsText).includes("\ufffd")) return { ok: false, reason: `${why}, and the argument repr held a character Crisper could not store` };
  const args = parseLiteral(argsText, "saferepr");
  if (!args.ok) return { ok: false, reason: `${why}, and argsrepr is not exactly the arguments: ${args.reason}` };
  const kwargs = parseLiteral(kwargsText, "saferepr");
  if (!kwargs.ok) return { ok: false, reason: `${why}, and kwargsrepr is not exactly the keyword arguments: ${kwargs.reason}` };
  if (!Array.isArray(args.value) || !isLiteralDict(kwargs.value)) return { ok: false, reason: `${why}, and argsrepr/kwargsrepr are not a tuple and a dict` };
  return { ok: true, known: { args: args.value, kwargs: kwargs.value, from: "argsrepr" }, queue: metaQueue };
}

export interface RetryDone {
  taskId: string;
  retryOf: string;
  queue: string;
  argumentsFrom: KnownArguments["from"];
}

/** Sends the task again; throws an HttpError (404, 409 with the reason, 502) when it cannot. */
export async function retryTask(deps: { database: Database; broker?: BrokerPort; brokers?: ReadonlyMap<string, BrokerPort> }, id: string, actor: string, now: Date): Promise<RetryDone> {
  const task = await getTask(deps.database, id);
  if (!task) throw new HttpError(404, `task ${id} was never seen by Crisper`);
  if (!task.name) throw new HttpError(409, `cannot retry ${id}: its task name is not known`);
  if (!RETRIABLE.has(task.state)) {
    const lost = (await alertsForSubject(deps.database, id)).some((a) => a.kind === "task_lost" && a.status === "open");
    if (!lost) throw new HttpError(409, `cannot retry ${id}: it is ${task.state}; only a failed, revoked, expired, rejected or lost task is retried`);
  }
  // Sent again through the broker it came through (BROKERS): its workers listen there.
  const broker = brokersFor(deps, task.broker)[0];
  if (!broker?.publishTask) throw new HttpError(503, "this process has no broker connection to send the task through");
  const [meta, events] = await Promise.all([broker.getResult(id).catch(() => null), getTaskEvents(deps.database, [id])]);
  const found = knownArguments(meta, events);
  if (!found.ok) throw new HttpError(409, `cannot retry ${id}: its arguments are not known exactly: ${found.reason}. Crisper never sends a guess.`);
  const queue = task.queue ?? found.queue;
  if (!queue) throw new HttpError(409, `cannot retry ${id}: the queue it was sent to is not known (no task-sent event, no result_extended)`);
  const newId = randomUUID();
  const message = taskMessage({
    id: newId,
    task: task.name,
    args: found.known.args,
    kwargs: found.known.kwargs,
    queue,
    exchange: task.queue ? task.exchange : null,
    routingKey: task.queue ? task.routingKey : null,
    rootId: task.rootId && task.rootId !== id ? task.rootId : null,
    parentId: task.parentId,
  });
  try {
    await broker.publishTask(message);
  } catch (e) {
    throw new HttpError(502, `the broker did not take the retry of ${id}: ${(e as Error).message}`);
  }
  await recordRetry(deps.database, { taskId: newId, retryOf: id, at: now, actor });
  return { taskId: newId, retryOf: id, queue, argumentsFrom: found.known.from };
}
