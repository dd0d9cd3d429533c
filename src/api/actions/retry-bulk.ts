/**
 * Retrying every failure of one task name in a time window, as one action:
 * the person is shown how many match first, and confirms that number; if
 * more or fewer match by then, nothing is sent and they look again. Each
 * failure is retried as a single retry would be (retry.ts), or refused with
 * its own reason; failures retried before are left out.
 */
import type { BrokerPort } from "../../broker/port.ts";
import { HttpError } from "../../http/errors.ts";
import type { Database } from "../../store/database.ts";
import { alreadyRetried, failuresOf } from "../../store/queries/audit.ts";
import type { BulkRetryAnswer } from "../schemas.ts";
import { retryTask } from "./retry.ts";

/** Most failures one bulk retry sends. */
export const BULK_RETRY_MAX = 500;

/** The failures a bulk retry would send again, newest first. */
export async function bulkRetryCandidates(database: Database, name: string, since: Date, until: Date): Promise<string[]> {
  const ids = await failuresOf(database, name, since, until, BULK_RETRY_MAX);
  const done = await alreadyRetried(database, ids);
  return ids.filter((id) => !done.has(id));
}

export async function retryFailures(
  deps: { database: Database; broker?: BrokerPort; brokers?: ReadonlyMap<string, BrokerPort> },
  r: { name: string; since: Date; until: Date; confirm: number },
  actor: string,
  now: Date,
): Promise<BulkRetryAnswer> {
  const ids = await bulkRetryCandidates(deps.database, r.name, r.since, r.until);
  if (ids.length !== r.confirm) {
    throw new HttpError(409, `${ids.length} failure(s) of ${r.name} match now, not ${r.confirm}: look at the count again and confirm it`, { matched: ids.length });
  }
  const answer: BulkRetryAnswer = { matched: ids.length, retried: [], refused: [] };
  for (const id of ids) {
    try {
      const done = await retryTask(deps, id, actor, now);
      answer.retried.push({ task_id: done.taskId, retry_of: id });
    } catch (e) {
      // A refusal is this task's; a broker that fails stops the rest.
      if (!(e instanceof HttpError) || e.status >= 500) throw e;
      answer.refused.push({ task_id: id, reason: e.message });
    }
  }
  return answer;
}
