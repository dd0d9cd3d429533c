/** How the checks write times and tasks in alert summaries and details. */
import type { TaskView } from "../pass.ts";

/**
 * Unix seconds as an ISO 8601 string; null stays null. Rounded to the
 * millisecond, so a time read back from an ISO string writes the same string.
 */
export const iso = (t: number | null) => (t === null ? null : new Date(Math.round(t * 1000)).toISOString());

/** `name id`, or `task id` when the name is unknown. */
export const taskLabel = (t: Pick<TaskView, "id" | "name">) => `${t.name ?? "task"} ${t.id}`;
