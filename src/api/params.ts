/** Query-string parsing shared by the API and the pages: bad values are 400s that say what is expected. */
import { TASK_STATES, type TaskState, isTaskState } from "../celery/states.ts";
import { decodeCursor } from "../store/queries/cursor.ts";
import type { TaskFilters } from "../store/queries/tasks.ts";
import { HttpError } from "./http-error.ts";

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 500;
const MAX_FILTER_LENGTH = 255;

export function parseLimit(v: string | undefined): number {
  if (v === undefined || v === "") return DEFAULT_LIMIT;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new HttpError(400, `limit: expected a whole number from 1 to ${MAX_LIMIT}, got ${JSON.stringify(v.slice(0, 40))}`);
  return Math.min(n, MAX_LIMIT);
}

/** ISO 8601, or unix seconds. */
export function parseTime(name: string, v: string | undefined): Date | undefined {
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  const d = Number.isFinite(n) && /^\d+(\.\d+)?$/.test(v) ? new Date(n * 1000) : new Date(v);
  if (Number.isNaN(d.getTime())) throw new HttpError(400, `${name}: expected an ISO 8601 time or unix seconds, got ${JSON.stringify(v.slice(0, 40))}`);
  return d;
}

function text(name: string, v: string | undefined): string | undefined {
  if (v === undefined || v === "") return undefined;
  if (v.length > MAX_FILTER_LENGTH) throw new HttpError(400, `${name}: at most ${MAX_FILTER_LENGTH} characters`);
  return v;
}

export function parseState(v: string | undefined): TaskState | undefined {
  if (v === undefined || v === "") return undefined;
  const s = v.toUpperCase();
  if (!isTaskState(s)) throw new HttpError(400, `state: expected one of ${TASK_STATES.join(", ")}, got ${JSON.stringify(v.slice(0, 40))}`);
  return s;
}

export function parseTaskFilters(q: (name: string) => string | undefined): TaskFilters {
  const cursorText = text("cursor", q("cursor"));
  const cursor = cursorText ? decodeCursor(cursorText) : null;
  if (cursorText && !cursor) throw new HttpError(400, "cursor: not a cursor this server gave out (use next_cursor from the previous page)");
  const filters: TaskFilters = { limit: parseLimit(q("limit")), cursor };
  const name = text("name", q("name"));
  const worker = text("worker", q("worker"));
  const queue = text("queue", q("queue"));
  const search = text("q", q("q"));
  const state = parseState(q("state"));
  const since = parseTime("since", q("since"));
  const until = parseTime("until", q("until"));
  if (name) filters.name = name;
  if (worker) filters.worker = worker;
  if (queue) filters.queue = queue;
  if (search) filters.q = search;
  if (state) filters.state = state;
  if (since) filters.since = since;
  if (until) filters.until = until;
  return filters;
}
