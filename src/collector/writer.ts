/**
 * Writes decoded batches to the store without ever losing what it holds:
 * - the database is down or unreachable: keep the batch and retry with backoff
 *   (meanwhile the buffer fills; overflow there is counted and logged);
 * - the database refuses the data itself: split the batch to find the events
 *   it refuses, write the rest, and count and log the refused ones.
 */
import type { CeleryEvent } from "../celery/event.ts";
import type { Logger } from "../log.ts";
import { collectorMetrics as m } from "../metrics.ts";
import type { Database } from "../store/database.ts";
import { writeBatch } from "../store/writes.ts";
import { buildBatch } from "./batch.ts";

export interface WriterOptions {
  database: Database;
  log: Logger;
  /** Called after a batch is committed (for lag measurement and live updates). */
  onCommitted?: (events: readonly CeleryEvent[]) => void;
  isStopping: () => boolean;
}

const MAX_BACKOFF_MS = 5000;

export async function writeEvents(events: readonly CeleryEvent[], o: WriterOptions): Promise<void> {
  let backoff = 100;
  for (let attempt = 1; ; attempt++) {
    try {
      const end = m.batchSeconds.startTimer();
      await writeBatch(o.database, buildBatch(events));
      end();
      m.storeBatches.inc();
      if (attempt > 1) o.log.info(`database write succeeded after ${attempt} attempts`);
      o.onCommitted?.(events);
      return;
    } catch (e) {
      const reachable = await o.database.ping().then(
        () => true,
        () => false,
      );
      if (reachable && attempt >= 2) {
        // The database answers but refuses this batch: it is the data.
        m.storeErrors.inc({ kind: "refused" });
        await bisect(events, o, e as Error);
        return;
      }
      m.storeErrors.inc({ kind: reachable ? "transient" : "unreachable" });
      if (attempt === 1 || attempt % 20 === 0) {
        o.log.warn(`database write failed (${reachable ? "will retry" : "database unreachable, holding events and retrying"}): ${(e as Error).message}`);
      }
      if (o.isStopping() && attempt >= 3) {
        o.log.error(`stopping with ${events.length} events not written: ${(e as Error).message}`);
        return;
      }
      await Bun.sleep(backoff);
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }
}

async function bisect(events: readonly CeleryEvent[], o: WriterOptions, error: Error): Promise<void> {
  if (events.length === 1) {
    const e = events[0] as CeleryEvent;
    m.storeRejected.inc();
    o.log.once(`store-refused:${error.message.slice(0, 60)}`, `database refused a ${e.type} event for ${e.uuid ?? e.hostname}: ${error.message}`);
    return;
  }
  const half = Math.ceil(events.length / 2);
  for (const part of [events.slice(0, half), events.slice(half)]) {
    try {
      await writeBatch(o.database, buildBatch(part));
      o.onCommitted?.(part);
    } catch (e) {
      await bisect(part, o, e as Error);
    }
  }
}
