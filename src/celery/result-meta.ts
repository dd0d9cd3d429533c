/**
 * Decodes what Celery's Redis result backend stores and publishes as
 * `celery-task-meta-<task id>` (plain JSON, not a kombu envelope): a second,
 * independent source of final states, present even where task events are off.
 *
 * Each result becomes an event with `source: "result-backend"` and the task
 * event type that matches its status, so one merge rule serves both sources.
 */
import { LIMITS, boundValue, truncate } from "./bounds.ts";
import type { CeleryEvent, Decoded } from "./event.ts";
import { pyStr } from "./exception.ts";

const STATUS_EVENT: Record<string, string> = {
  STARTED: "task-started",
  SUCCESS: "task-succeeded",
  FAILURE: "task-failed",
  RETRY: "task-retried",
  REVOKED: "task-revoked",
};

export const RESULT_KEY_PREFIX = "celery-task-meta-";

export function decodeResultMeta(data: string | Uint8Array, localReceived: number): Decoded {
  const size = typeof data === "string" ? data.length : data.byteLength;
  if (size > LIMITS.messageBytes) {
    return { events: [], errors: [{ reason: "too_large", detail: `result of ${size} bytes is over the limit` }] };
  }
  let meta: unknown;
  try {
    meta = JSON.parse(typeof data === "string" ? data : new TextDecoder().decode(data));
  } catch {
    return {
      events: [],
      errors: [{ reason: "not_json", detail: "result is not JSON (set result_serializer='json', Celery's default)" }],
    };
  }
  if (typeof meta !== "object" || meta === null || Array.isArray(meta)) {
    return { events: [], errors: [{ reason: "not_an_event", detail: "result is not an object" }] };
  }
  const m = meta as Record<string, unknown>;
  const taskId = m.task_id;
  const status = m.status;
  if (typeof taskId !== "string" || taskId === "" || taskId.length > LIMITS.name || typeof status !== "string") {
    return { events: [], errors: [{ reason: "missing_fields", detail: "result has no task_id or status" }] };
  }
  const type = STATUS_EVENT[status];
  if (!type) {
    // PENDING is never stored; custom states carry nothing we can merge.
    return { events: [], errors: [{ reason: "unknown_event_type", detail: `result status ${JSON.stringify(truncate(status, 40))}` }] };
  }
  const fields: Record<string, unknown> = {};
  const copy = (from: string, to = from, max: number = LIMITS.name) => {
    const v = m[from];
    if (typeof v === "string") fields[to] = truncate(v, max);
    else if (typeof v === "number") fields[to] = v;
  };
  copy("name");
  copy("queue");
  copy("retries");
  if (Array.isArray(m.args)) fields.args = truncate(JSON.stringify(boundValue(m.args, LIMITS.repr)), LIMITS.repr);
  if (m.kwargs && typeof m.kwargs === "object") fields.kwargs = truncate(JSON.stringify(boundValue(m.kwargs, LIMITS.repr)), LIMITS.repr);
  if (status === "SUCCESS") fields.result = truncate(JSON.stringify(boundValue(m.result, LIMITS.repr)) ?? "null", LIMITS.repr);
  if (status === "FAILURE" || status === "RETRY" || status === "REVOKED") {
    const exc = exceptionText(m.result);
    if (exc) fields.exception = truncate(exc, LIMITS.repr);
    if (typeof m.traceback === "string") fields.traceback = truncate(m.traceback, LIMITS.traceback);
  }
  if (status === "REVOKED") fields.terminated = exceptionText(m.result)?.includes("terminated") ?? false;
  const worker = typeof m.worker === "string" ? truncate(m.worker, LIMITS.name) : "";
  const done = typeof m.date_done === "string" ? Date.parse(m.date_done.endsWith("Z") || /[+-]\d\d:\d\d$/.test(m.date_done) ? m.date_done : `${m.date_done}Z`) : NaN;
  const event: CeleryEvent = {
    type,
    hostname: worker,
    // date_done is UTC without a zone (Celery's default); STARTED has none.
    timestamp: Number.isFinite(done) ? done / 1000 : localReceived,
    localReceived,
    uuid: taskId,
    source: "result-backend",
    fields,
  };
  return { events: [event], errors: [] };
}

/** `{"exc_type": "ValueError", "exc_message": ["card declined"]}` → `ValueError('card declined')`. */
function exceptionText(result: unknown): string | undefined {
  if (!result || typeof result !== "object") return undefined;
  const r = result as Record<string, unknown>;
  if (typeof r.exc_type !== "string") return undefined;
  const msgs = Array.isArray(r.exc_message) ? r.exc_message : r.exc_message === undefined ? [] : [r.exc_message];
  return `${r.exc_type}(${msgs.map((x) => (typeof x === "string" ? pyStr(x) : JSON.stringify(x))).join(", ")})`;
}
