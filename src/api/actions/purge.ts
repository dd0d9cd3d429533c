/** Purging a queue: every waiting message of it, all priorities, deleted (kombu's `_purge`; AMQP's queue.purge). */
import type { BrokerPort } from "../../broker/port.ts";
import { isPlumbingQueue } from "../../celery/control.ts";
import { HttpError } from "../../http/errors.ts";

/** The caller typed the queue's name again (`confirm`), as a person confirms a deletion. */
export async function purgeQueue(broker: BrokerPort | undefined, queue: string, confirm: string): Promise<number> {
  if (confirm !== queue) throw new HttpError(400, `confirm: type the queue's name (${queue}) to purge it`);
  if (isPlumbingQueue(queue)) throw new HttpError(409, `${queue} is Celery's own plumbing (events, remote control), not a task queue`);
  if (!broker?.purgeQueue) throw new HttpError(503, "this process has no broker connection to purge through");
  try {
    return await broker.purgeQueue(queue);
  } catch (e) {
    throw new HttpError(502, `the broker did not purge ${queue}: ${(e as Error).message}`);
  }
}
