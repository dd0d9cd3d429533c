/**
 * Which tasks the statistics count, and in which minute: one definition, used
 * by the writer when it marks a task's bucket (marks.ts) and by the rollup
 * when it rebuilds the bucket (rollup.ts). Both must agree, or a bucket a
 * task leaves would never be rebuilt. SQL over the `tasks` row aliased `t`;
 * the states are constants, never input.
 */
import { READY_STATES, sqlStateList } from "../celery/states.ts";

export const READY = sqlStateList([...READY_STATES]);

/**
 * A task has an outcome once it is ready (SUCCESS, FAILURE, REVOKED: its
 * finished_at is then set), or while it waits to be retried (RETRY). Tasks
 * with no name cannot be told apart (the result backend alone never says it)
 * and are not counted.
 */
export const HAS_OUTCOME = `t.name is not null and ((t.state in (${READY}) and t.finished_at is not null) or t.state = 'RETRY')`;

/** The time of the outcome: when it finished; for a retry, its latest event (the task-retried). */
export const OUTCOME_AT = `case when t.state = 'RETRY' then t.last_event_at else t.finished_at end`;

/** The minute a task counts in. */
export const OUTCOME_MINUTE = `date_trunc('minute', ${OUTCOME_AT})`;

/** The bucket's key, as (minute, name, queue); "" for a queue not known. */
export const BUCKET_KEY = `${OUTCOME_MINUTE}, t.name, coalesce(t.queue, '')`;

/**
 * Revoked because its `expires` passed: Celery's task-revoked says
 * `expired: true` (the worker revoked it on receipt), kept on the task row
 * as `expired` by the writer's merge.
 */
export const EXPIRED = `t.expired`;

/**
 * How many retries led to this outcome: the task's highest `retries` (a
 * retry's task-received comes before its task-retried), and at least one for
 * a task now waiting to be retried.
 */
export const RETRIES = `case when t.state = 'RETRY' then greatest(coalesce(t.retries, 0), 1) else coalesce(t.retries, 0) end`;

/** Runtime, seconds, of a task that ran to an end: Celery's own, else started → finished. */
export const RUNTIME_S = `case when t.state in ('SUCCESS', 'FAILURE') then coalesce(t.runtime,
  case when t.started_at <= t.finished_at then extract(epoch from t.finished_at - t.started_at)::float8 end) end`;

/**
 * Wait, seconds, from sent to started (from received for a retry, whose
 * sent_at is the first send, or when the send was not seen); never below 0
 * (producer and worker clocks differ). A countdown or ETA is part of it.
 */
export const WAIT_S = `case when t.state in (${READY}) and t.started_at is not null then greatest(0, extract(epoch from t.started_at -
  case when coalesce(t.retries, 0) = 0 then coalesce(t.sent_at, t.received_at) else t.received_at end)::float8) end`;
