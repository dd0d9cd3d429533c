/**
 * Writes decoded batches to the store without ever losing what it holds:
 * - the database is down, restarting or unreachable: keep the batch and retry
 *   it with backoff (meanwhile the buffer, then the spool, hold what arrives);
 *   the outage is logged once when it starts and once when it ends;
 * - the database refuses the data itself: split the batch to find the events
 *   it refuses, write the rest, and count and log the refused ones.
 * Every write is idempotent (store/writes.ts), so retrying a batch that may
 * have been committed before its connection died is safe.
 */
import type { CeleryEvent } from "../celery/event.ts";
import type { Logger } from "../log.ts";
import { collectorMetrics as m } from "../metrics.ts";
import { type Database, failureKind } from "../store/database.ts";
import { writeBatch } from "../store/writes.ts";
import { buildBatch } from "./batch.ts";

export interface WriterOptions {
  database: Database;
  log: Logger;
  outage: StoreOutage;
  /** Called after a batch is committed (for lag measurement and live updates). */
  onCommitted?: (events: readonly CeleryEvent[]) => void;
  isStopping: () => boolean;
  /** The broker the events came from, written on their tasks and workers ("default" if unset). */
  broker?: string;
}

const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5000;
/** An error of no known kind is the data's fault once it repeats this often while the database answers. */
const UNKNOWN_ERROR_ATTEMPTS = 3;

/**
 * Whether the database is failing the collector's writes, shared by the
 * writes in flight: one line when an outage starts, one when it ends, however
 * many batches retry meanwhile.
 */
export class StoreOutage {
  private since: number | null = null;
  private failures = 0;

  constructor(
    private readonly log: Logger,
    /** What is held meanwhile, for the log line ("1,234 messages in memory, …"). */
    private readonly held: () => string,
  ) {
    m.storeWritable.set(1);
  }

  get down(): boolean {
    return this.since !== null;
  }

  failed(e: unknown): void {
    this.failures++;
    m.storeWritable.set(0);
    if (this.since !== null) return;
    this.since = Date.now();
    this.log.error(`cannot write to the database (${describe(e)}): holding events (${this.held()}) and retrying with backoff until it is back`);
  }

  succeeded(): void {
    if (this.since === null) return;
    const s = (Date.now() - this.since) / 1000;
    this.log.info(`database writes work again after ${s.toFixed(1)} s and ${this.failures} failed attempts; writing the events held meanwhile (${this.held()})`);
    this.since = null;
    this.failures = 0;
    m.storeWritable.set(1);
  }
}

/**
 * Writes `events`, retrying while the database is unavailable. Resolves true
 * once they are stored (or refused and counted), false if the collector is
 * stopping while the database is down: the caller keeps their messages.
 */
export function writeEvents(events: readonly CeleryEvent[], o: WriterOptions): Promise<boolean> {
  return write(events, o, false);
}

async function write(events: readonly CeleryEvent[], o: WriterOptions, refusedAbove: boolean): Promise<boolean> {
  let backoff = FIRST_BACKOFF_MS;
  for (let attempt = 1; ; attempt++) {
    const error = await attemptWrite(events, o.database, o.broker);
    if (error === null) {
      m.storeBatches.inc();
      o.outage.succeeded();
      o.onCommitted?.(events);
      return true;
    }
    const kind = await classify(error.cause, attempt, refusedAbove, o.database);
    if (kind === "refused") {
      m.storeErrors.inc({ kind });
      return refuse(events, o, error.cause);
    }
    m.storeErrors.inc({ kind });
    o.outage.failed(error.cause);
    if (o.isStopping() && attempt >= 2) return false;
    // Jittered, so that writes in flight do not retry in lockstep; cut
    // short by a shutdown, which wants one last try and then the batch back.
    const until = Date.now() + backoff * (0.75 + Math.random() / 2);
    while (Date.now() < until && !o.isStopping()) await Bun.sleep(Math.min(100, until - Date.now()));
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
  }
}

/** One try: null when committed, else what it threw. */
async function attemptWrite(events: readonly CeleryEvent[], database: Database, broker?: string): Promise<{ cause: unknown } | null> {
  try {
    const end = m.batchSeconds.startTimer();
    await writeBatch(database, { ...buildBatch(events), broker });
    end();
    return null;
  } catch (e) {
    return { cause: e };
  }
}

/** The database refused these events: write each half apart, down to the single events it refuses. */
async function refuse(events: readonly CeleryEvent[], o: WriterOptions, error: unknown): Promise<boolean> {
  if (events.length === 1) {
    const e = events[0] as CeleryEvent;
    m.storeRejected.inc();
    const reason = describe(error);
    o.log.once(`store-refused:${reason.slice(0, 60)}`, `database refused a ${e.type} event for ${e.uuid ?? e.hostname}: ${reason}`);
    return true;
  }
  const half = Math.ceil(events.length / 2);
  const first = await write(events.slice(0, half), o, true);
  const second = first && (await write(events.slice(half), o, true));
  return first && second;
}

/**
 * Why a write failed (see failureKind): an error of no known kind counts as
 * the data's fault (refused) once it repeats while the database answers a
 * ping.
 */
async function classify(
  e: unknown,
  attempt: number,
  refusedAbove: boolean,
  database: Database,
): Promise<"unreachable" | "transient" | "refused"> {
  const kind = failureKind(e);
  if (kind !== "unknown") return kind;
  if (attempt < UNKNOWN_ERROR_ATTEMPTS && !refusedAbove) return "transient";
  const reachable = await database.ping().then(
    () => true,
    () => false,
  );
  return reachable ? "refused" : "unreachable";
}

/** An error's message, short: a failed query's message can carry its whole parameter list. */
function describe(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}
