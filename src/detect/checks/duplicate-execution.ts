/**
 * duplicate_execution: one task run more than once at the same retry (a
 * redelivery after the visibility timeout, a restored unacked message).
 * Opened when seen, resolved once the task has finished: every run ended.
 */
import type { AlertSpec } from "../../alerts/kinds.ts";
import { openAlerts, resolveAlert, subjectsWithAlert } from "../../alerts/store.ts";
import { isTaskState, READY_STATES } from "../../celery/states.ts";
import { duplicateRuns, executionsFromStored } from "../../state/executions.ts";
import { startedMoreThanOnce, taskStates } from "../../store/queries/detect.ts";
import { getTaskEvents } from "../../store/queries/tasks.ts";
import type { Check } from "../pass.ts";
import { iso } from "./summary.ts";

/** Task ids looked up in the store at once. */
const CHUNK = 5000;
/** Tasks read in full on one pass. */
const MAX_TASKS_READ = 500;

export const checkDuplicateExecution: Check = async (pass) => {
  const { database } = pass;
  const found: AlertSpec[] = [];
  // Of the tasks seen running since the last pass, only those started more
  // than once are worth reading in full.
  const ids: string[] = [];
  for (let chunk = pass.trackers.takeStarted(CHUNK); chunk.length > 0; chunk = pass.trackers.takeStarted(CHUNK)) {
    ids.push(...(await startedMoreThanOnce(database, chunk)));
  }
  if (ids.length) {
    const events = await getTaskEvents(database, ids.slice(0, MAX_TASKS_READ));
    const byTask = Map.groupBy(events, (e) => e.taskId);
    for (const [id, list] of byTask) {
      const dup = duplicateRuns(executionsFromStored(list));
      if (!dup) continue;
      const named = list.find((e) => typeof e.fields.name === "string")?.fields.name;
      const name = typeof named === "string" ? named : null;
      found.push({
        kind: "duplicate_execution",
        subject: id,
        summary: `${name ?? "task"} ${id} ran ${dup.runs.length} times at retry ${dup.retries ?? "?"}: on ${dup.runs.map((x) => x.worker).join(" and ")}. Anything it does that is not idempotent happened twice.`,
        details: {
          task_id: id,
          name,
          retries: dup.retries,
          workers: dup.runs.map((x) => x.worker),
          executions: dup.runs.map((x) => ({ worker: x.worker, started_at: iso(x.startedAt), finished_at: iso(x.finishedAt), state: x.state })),
        },
      });
    }
  }
  // A duplicate is a fact about a task that happened once: later events of
  // the same task must not open it again.
  const known = await subjectsWithAlert(database, "duplicate_execution", found.map((f) => f.subject));
  const fresh = found.filter((f) => !known.has(f.subject));
  const stillOpen = (await openAlerts(database, "duplicate_execution", pass.brokerName)).map((a) => a.subject);
  await pass.sync("duplicate_execution", [...fresh, ...found.filter((f) => stillOpen.includes(f.subject))], { resolveMissing: false });
  const open = await openAlerts(database, "duplicate_execution", pass.brokerName);
  const states = await taskStates(database, open.map((a) => a.subject));
  for (const a of open) {
    const state = states.get(a.subject);
    if (state && isTaskState(state) && READY_STATES.has(state)) {
      const r = await resolveAlert(database, a.id, new Date(pass.now * 1000));
      if (r) pass.announce({ opened: [], updated: [], resolved: [r] });
    }
  }
};
