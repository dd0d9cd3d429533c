/**
 * Requeueing a dead worker's stranded messages: what it had prefetched (and,
 * with late acks, was running) sits in Redis's `unacked` until some worker's
 * `restore_visible` hands it back after the visibility timeout, an hour by
 * default. This does the same now, for that worker's deliveries only.
 *
 * Which deliveries are its own: the task ids of its last `reserved`/`active`
 * reply and of the tasks it received (task-received) and never finished,
 * matched to the `unacked` entries by task id — and delivered before it
 * died, so a message restored since and taken by another worker is not
 * taken away from it.
 */
import type { BrokerPort } from "../../broker/port.ts";
import { brokersFor } from "../revoke.ts";
import { AT_WORKER_STATES } from "../../celery/states.ts";
import { HttpError } from "../../http/errors.ts";
import type { Database } from "../../store/database.ts";
import { unixSeconds } from "../../store/schema/columns.ts";
import { tasksHeldBy } from "../../store/queries/tasks.ts";
import { getWorker, heldTasks, livenessOf } from "../../store/queries/workers.ts";

/** What a page says instead of the button on a broker that strands nothing. */
export const NOTHING_STRANDED_HERE =
  "Nothing is stranded on RabbitMQ: it puts a dead worker's unacknowledged messages back on their queue as soon as the worker's connection closes.";

export interface RequeueDone {
  requeued: number;
  taskIds: string[];
  skipped: { delivery_tag: string; reason: string }[];
}

export async function requeueStranded(
  deps: { database: Database; broker?: BrokerPort; brokers?: ReadonlyMap<string, BrokerPort> },
  hostname: string,
  now: number,
): Promise<RequeueDone> {
  const w = await getWorker(deps.database, hostname);
  if (!w) throw new HttpError(404, `worker ${hostname} was never seen`);
  // The worker's own broker (BROKERS) holds its unacknowledged messages.
  const broker = brokersFor(deps, w.broker)[0];
  if (!broker) throw new HttpError(503, "this process has no broker connection");
  if (!broker.capabilities.strandsPrefetched || !broker.requeueStranded) throw new HttpError(409, NOTHING_STRANDED_HERE);
  const live = livenessOf(w, now);
  if (live.status === "online") {
    throw new HttpError(409, `${hostname} is online (its last heartbeat was ${Math.round(now - (unixSeconds(w.lastHeartbeatAt) ?? now))} s ago): the messages it holds are its own to run`);
  }
  const held = new Set([...heldTasks(w.reservedTasks), ...heldTasks(w.activeTasks)].map((t) => t.id));
  for (const id of await tasksHeldBy(deps.database, hostname, AT_WORKER_STATES)) held.add(id);
  // Its deliveries were all made while it lived.
  const diedBy = live.expiresAt ?? unixSeconds(w.offlineAt) ?? now;
  const tags = (await broker.unacked())
    .filter((u) => u.taskId !== null && held.has(u.taskId) && (u.deliveredAt === null || u.deliveredAt <= diedBy))
    .map((u) => u.deliveryTag);
  if (tags.length === 0) {
    throw new HttpError(409, `nothing of ${hostname}'s is stranded: none of the ${held.size} task(s) it was known to hold is unacknowledged in the broker`);
  }
  const result = await broker.requeueStranded(tags);
  const skipped = result.skipped.map((s) => ({ delivery_tag: s.deliveryTag, reason: s.reason }));
  if (result.requeued.length === 0) {
    throw new HttpError(409, `nothing of ${hostname}'s was requeued: ${skipped.map((s) => s.reason).join("; ")}`, { skipped });
  }
  return { requeued: result.requeued.length, taskIds: result.requeued.flatMap((r) => (r.taskId ? [r.taskId] : [])), skipped };
}
