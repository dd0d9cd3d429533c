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

/**
 * The brokers a revoke goes through: the one the task was sent through (its
 * workers listen there, and only there), or every broker for a task never
 * seen (a revoke is remembered by workers, so it may arrive first).
 */
export function brokersFor(
  deps: { broker?: BrokerPort; brokers?: ReadonlyMap<string, BrokerPort> },
  taskBroker: string | undefined,
): BrokerPort[] {
  const own = taskBroker ? deps.brokers?.get(taskBroker) : undefined;
  if (own) return [own];
  if (deps.brokers && deps.brokers.size > 0) return [...deps.brokers.values()];
  return deps.broker ? [deps.broker] : [];
}

/** Sends the revoke; returns the workers that acknowledged it within a second and a half. */
export async function revokeTask(brokers: BrokerPort | readonly BrokerPort[] | undefined, taskId: string, r: RevokeRequest): Promise<string[]> {
  const through = brokers === undefined ? [] : "call" in brokers ? [brokers] : brokers;
  if (through.length === 0) throw new HttpError(503, "this process has no broker connection to send the revoke through");
  const acknowledged: string[] = [];
  await Promise.all(
    through.map(async (broker) => {
      let replies: Record<string, unknown>;
      try {
        replies = await broker.call("revoke", { task_id: taskId, terminate: r.terminate, signal: r.signal }, { timeoutMs: 1500 });
      } catch (e) {
        throw new HttpError(502, `the broker did not take the revoke: ${(e as Error).message}`);
      }
      acknowledged.push(...Object.keys(replies));
    }),
  );
  return acknowledged.sort();
}
