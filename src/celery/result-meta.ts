/**
 * Decodes what Celery's Redis result backend stores and publishes as
 * `celery-task-meta-<task id>` (plain JSON, not a kombu envelope): a second,
 * independent source of final states, present even where task events are off.
 *
 * Each result becomes an event with `source: "result-backend"` and the task
 * event type that matches its status, so one merge rule serves both sources.
 */
import { Budget, LIMITS, boundString, boundValue, isInt32, isObject, isSaneTimestamp, needsCleaning, storable, truncate } from "./bounds.ts";
import type { CeleryEvent, DecodeError, Decoded, FieldDrop } from "./event.ts";
import { pyStr } from "./exception.ts";

const STATUS_EVENT: Record<string, string> = {
  STARTED: "task-started",
  SUCCESS: "task-succeeded",
  FAILURE: "task-failed",
  RETRY: "task-retried",
  REVOKED: "task-revoked",
};

export const RESULT_KEY_PREFIX = "celery-task-meta-";

function fail(error: DecodeError): Decoded {
  return { events: [], errors: [error], dropped: [] };
}

export function decodeResultMeta(data: string | Uint8Array, localReceived: number): Decoded {
  const size = typeof data === "string" ? data.length : data.byteLength;
  if (size > LIMITS.messageBytes) return fail({ reason: "too_large", detail: `result of ${size} bytes is over the limit` });
  const text = typeof data === "string" ? data : new TextDecoder().decode(data);
  let meta: unknown;
  try {
    meta = JSON.parse(text);
  } catch {
    return fail({ reason: "not_json", detail: "result is not JSON (set result_serializer='json', Celery's default)" });
  }
  if (!isObject(meta)) return fail({ reason: "not_an_event", detail: "result is not an object" });
  const m = meta;
  const taskId = m.task_id;
  const status = m.status;
  if (typeof taskId !== "string" || taskId === "" || taskId.length > LIMITS.name || typeof status !== "string") {
    return fail({ reason: "missing_fields", detail: "result has no task_id or status" });
  }
  // Own keys only: a status of "constructor" is not a state.
  const type = Object.hasOwn(STATUS_EVENT, status) ? STATUS_EVENT[status] : undefined;
  if (!type) {
    // PENDING is never stored; custom states carry nothing we can merge.
    return fail({ reason: "unknown_event_type", detail: `result status ${JSON.stringify(truncate(status, 40))}` });
  }
  const clean = needsCleaning(text);
  const dropped: FieldDrop[] = [];
  const fields: Record<string, unknown> = Object.create(null);
  const copy = (from: string, to = from, max: number = LIMITS.name) => {
    const v = m[from];
    if (typeof v === "string") fields[to] = truncate(v, max, clean);
    else if (typeof v === "number") fields[to] = v;
  };
  copy("name");
  copy("queue");
  // tasks.retries is an integer column: 1.5 or 1e20 would make the store refuse the whole batch.
  if (typeof m.retries === "number" && !isInt32(m.retries)) {
    dropped.push({ field: "retries", reason: "not_an_integer", detail: `a ${status} result had retries ${m.retries}` });
  } else copy("retries");
  // The big fields share one event's size (bounds.ts), in the order toEvent uses.
  const big = new Budget(LIMITS.eventFields - LIMITS.smallFields, clean);
  const json = (v: unknown) => boundString(JSON.stringify(boundValue(v, LIMITS.repr, new Budget(LIMITS.repr, clean))) ?? "null", LIMITS.repr, big);
  if (status === "FAILURE" || status === "RETRY" || status === "REVOKED") {
    const exc = exceptionText(m.result);
    if (exc) fields.exception = boundString(exc, LIMITS.repr, big);
  }
  if (status === "SUCCESS") fields.result = json(m.result);
  if (Array.isArray(m.args)) fields.args = json(m.args);
  if (m.kwargs && typeof m.kwargs === "object") fields.kwargs = json(m.kwargs);
  if ((status === "FAILURE" || status === "RETRY" || status === "REVOKED") && typeof m.traceback === "string") {
    fields.traceback = boundString(m.traceback, LIMITS.traceback, big);
  }
  if (status === "REVOKED") fields.terminated = exceptionText(m.result)?.includes("terminated") ?? false;
  // Request._announce_revoked stores TaskRevokedError(reason): 'expired' when
  // the worker found the task past its `expires` (celery/worker/request.py).
  if (status === "REVOKED" && exceptionText(m.result) === "TaskRevokedError('expired')") fields.expired = true;
  const worker = typeof m.worker === "string" ? truncate(m.worker, LIMITS.name, clean) : "";
  // date_done is UTC without a zone (Celery's default); STARTED has none.
  const dateDone = typeof m.date_done === "string" ? m.date_done : null;
  const done = dateDone === null ? NaN : Date.parse(dateDone.endsWith("Z") || /[+-]\d\d:\d\d$/.test(dateDone) ? dateDone : `${dateDone}Z`) / 1000;
  let timestamp = localReceived;
  if (dateDone !== null && Number.isFinite(done)) {
    if (isSaneTimestamp(done, localReceived)) timestamp = done;
    else dropped.push({ field: "date_done", reason: "out_of_range", detail: `a ${status} result was done at ${JSON.stringify(truncate(dateDone, 40))}; it is taken as received` });
  }
  const event: CeleryEvent = {
    type,
    hostname: worker,
    timestamp,
    localReceived,
    uuid: clean ? storable(taskId) : taskId,
    source: "result-backend",
    fields,
  };
  return { events: [event], errors: [], dropped };
}

/** `{"exc_type": "ValueError", "exc_message": ["card declined"]}` → `ValueError('card declined')`. */
function exceptionText(result: unknown): string | undefined {
  if (!isObject(result)) return undefined;
  const r = result;
  if (typeof r.exc_type !== "string") return undefined;
  const msgs = Array.isArray(r.exc_message) ? r.exc_message : r.exc_message === undefined ? [] : [r.exc_message];
  // Bounded before stringified: an exc_message nested 100,000 deep must not overflow the stack.
  const parts = boundValue(msgs.slice(0, LIMITS.items), LIMITS.repr, new Budget(LIMITS.repr));
  const text = Array.isArray(parts) ? parts.map((x) => (typeof x === "string" ? pyStr(x) : JSON.stringify(x))).join(", ") : "";
  return `${truncate(r.exc_type, LIMITS.name)}(${text})`;
}
