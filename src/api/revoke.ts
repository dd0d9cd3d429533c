/**
 * Revoking a task, as Celery's `app.control.revoke` does: a `revoke`
 * broadcast on the remote-control mailbox. Every worker remembers the id and
 * discards the task if it arrives later; with `terminate`, the worker running
 * it signals the pool process (prefork) that executes it. Workers that start
 * afterwards do not know of it unless they keep a state file (--statedb).
 */
import type { BrokerPort } from "../broker/port.ts";
import { HttpError } from "../http/errors.ts";
import type { RevokeRequest } from "./schemas.ts";

/** Sends the revoke; returns the workers that acknowledged it within a second and a half. */
export async function revokeTask(broker: BrokerPort | undefined, taskId: string, r: RevokeRequest): Promise<string[]> {
  if (!broker) throw new HttpError(503, "this process has no broker connection to send the revoke through");
  let replies: Record<string, unknown>;
  try {
    replies = await broker.call("revoke", { task_id: taskId, terminate: r.terminate, signal: r.signal }, { timeoutMs: 1500 });
  } catch (e) {
    throw new HttpError(502, `the broker did not take the revoke: ${(e as Error).message}`);
  }
  return Object.keys(replies).sort();
}
