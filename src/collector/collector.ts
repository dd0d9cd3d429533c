/**
 * The collector: broker → decode → state → store.
 *
 * The broker adapter pushes raw messages into a bounded buffer (and does
 * nothing else on the socket path); one loop drains the buffer, decodes,
 * merges and writes in batches. Timers switch task events on in workers and
 * sample queue depths.
 */
import { type BrokerPort, DEFAULT_BROKER, type RawMessage, type StreamStatus, type Subscription } from "../broker/port.ts";
import { isBrokerUnreachable } from "../broker/reachability.ts";
import type { CeleryEvent, DecodeReason, Decoded } from "../celery/event.ts";
import type { Logger } from "../log.ts";
import { collectorMetrics as m, observeBacklog } from "../metrics.ts";
import type { Database } from "../store/database.ts";
import { insertBrokerSample, insertQueueSamples } from "../store/writes.ts";
import { every, type Periodic, reportUnexpected, superviseLoop } from "../supervise.ts";
import { Backlog } from "./backlog.ts";
import type { DropWindow } from "./buffer.ts";
import { decodeRawMessage } from "./decode.ts";
import { Spool } from "./spool.ts";
import { TaskMetrics } from "./task-metrics.ts";
import { StoreOutage, writeEvents } from "./writer.ts";

export interface CollectorConfig {
  bufferMessages: number;
  bufferBytes: number;
  /** Where messages go when the memory buffer is full (DATA_DIR/spool); null: nowhere, they are dropped. */
  spoolDir: string | null;
  spoolMaxBytes: number;
  batchMessages: number;
  enableEvents: boolean;
  enableEventsIntervalS: number;
  queueSampleIntervalS: number;
}

export interface StreamGap {
  from: number;
  to: number | null;
  reason: string;
  /** Tasks the lost events were about, where the broker could say (a RabbitMQ overflow): reconciled too. */
  taskIds?: string[];
}

export interface Collector {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Resolves once everything received so far is written (tests, shutdown). */
  flush(): Promise<void>;
  readonly gaps: readonly StreamGap[];
  /** When the event stream last (re)connected; null while it is down. */
  readonly streamUpSince: number | null;
  /**
   * Arrival time of the oldest message not yet committed (buffered or being
   * written), null when all caught up: the store is true up to this moment.
   */
  readonly uncommittedSince: number | null;
  /** Records a window in which nothing was collected (e.g. before this process started). */
  recordGap(g: StreamGap): void;
  readonly stats: { received: number; written: number; dropped: number; buffered: number };
  /** True from a failed write until one succeeds (the database is down or refusing connections). */
  readonly storeDown: boolean;
}

const MAX_KNOWN_QUEUES = 1000;
/** How long broker health samples are kept: /broker charts the last hour, the detector reads ten minutes; six hours leave room to look back. */
export const BROKER_HEALTH_KEEP_S = 6 * 3600;
const MAX_GAPS_KEPT = 100;
const MAX_WRITES_IN_FLIGHT = 2;
/**
 * How long a shutdown waits for writes in flight. A database that does not
 * answer must not hold it (process managers kill after ~10 s): what is not
 * written by then is kept in the spool for the next start.
 */
const STOP_WAIT_MS = 5000;

export function createCollector(deps: {
  config: CollectorConfig;
  database: Database;
  broker: BrokerPort;
  /** The broker's name (BROKERS; "default" for BROKER_URL alone), written on everything it collects. */
  brokerName?: string;
  log: Logger;
  onCommitted?: (events: readonly CeleryEvent[]) => void;
}): Collector {
  const { config, database, broker, log } = deps;
  const gaps: StreamGap[] = [];
  const recordGap = (g: StreamGap) => {
    gaps.push(g);
    if (gaps.length > MAX_GAPS_KEPT) gaps.shift();
  };
  const limits = `${config.bufferMessages} messages / ${Math.round(config.bufferBytes / 2 ** 20)} MB`;
  const spool = openSpool(config, log);
  const backlog = new Backlog({ messages: config.bufferMessages, bytes: config.bufferBytes }, spool, (w: DropWindow) => {
    log.error(
      `dropped ${w.count} messages between ${new Date(w.from * 1000).toISOString()} and ${new Date(w.to * 1000).toISOString()}: ` +
        `the buffer (${limits})${spool ? ` and the spool (${Math.round(config.spoolMaxBytes / 2 ** 20)} MB)` : ""} were full (database too slow or down)`,
    );
    recordGap({ from: w.from, to: w.to, reason: `collector buffer full: ${w.count} messages dropped` });
    dropEpisode = false;
  });
  observeBacklog(() => backlog.sizes());
  const outage = new StoreOutage(log, () => backlog.describe());
  const knownQueues = new Set<string>();
  const taskMetrics = new TaskMetrics(undefined, deps.brokerName);
  const stats = { received: 0, written: 0, dropped: 0, buffered: 0 };
  let subscription: Subscription | null = null;
  let stopping = false;
  let loop: Promise<void> | null = null;
  let idle: (() => void)[] = [];
  const periodic: Periodic[] = [];
  let dropEpisode = false;
  let spilling = backlog.spooling;

  function onMessage(msg: RawMessage) {
    // Counted into the metric per batch (see decode): this runs per message.
    stats.received++;
    const held = backlog.push(msg);
    // A broker that keeps messages until acknowledged (RabbitMQ) may let go
    // of one once it is on disk, or dropped (counted, and recorded as a gap).
    if (held !== "memory") msg.settle?.();
    if (held === "spool") {
      m.spooled.inc();
      if (!spilling) {
        spilling = true;
        log.warn(`buffer full (${limits}): new messages go to the spool on disk (${config.spoolDir}) until it drains, in order`);
      }
    } else if (held === "dropped") {
      stats.dropped++;
      m.bufferDropped.inc();
      if (!dropEpisode) {
        dropEpisode = true;
        log.error(`buffer full (${limits})${spool ? " and spool full" : ""}: dropping new messages until the database catches up`);
      }
    }
  }

  let streamUpSince: number | null = null;
  function onStatus(s: StreamStatus) {
    if (s.state === "overflowed") {
      // The stream is up, but events it held were dropped: a closed gap of their times.
      log.error(`${s.reason}: ${s.dropped} events dropped between ${new Date(s.from * 1000).toISOString()} and ${new Date(s.to * 1000).toISOString()}`);
      recordGap({ from: s.from, to: s.to, reason: `${s.reason} (${s.dropped} events dropped)`, taskIds: s.taskIds });
      return;
    }
    streamUpSince = s.state === "connected" ? s.at : null;
    if (s.state === "disconnected") {
      m.streamDisconnects.inc();
      log.warn(`event stream lost: ${s.reason}; reconnecting`);
      const open = gaps.at(-1);
      if (!open || open.to !== null) recordGap({ from: s.at, to: null, reason: s.reason });
    } else {
      const open = gaps.at(-1);
      if (open && open.to === null) {
        open.to = s.at;
        log.info(`event stream back after ${(s.at - open.from).toFixed(1)} s`);
      } else log.info("subscribed to the event stream");
    }
  }

  /**
   * Raw messages to events. Each message is decoded on its own: whatever one
   * message holds costs that message, never its batch or the writer loop.
   */
  function decode(messages: RawMessage[]): CeleryEvent[] {
    const out: CeleryEvent[] = [];
    let fromResultBackend = 0;
    const byType = new Map<string, number>();
    const rejected = new Map<DecodeReason, number>();
    const dropped = new Map<string, { field: string; reason: string; n: number }>();
    for (const msg of messages) {
      if (msg.stream === "result-backend") fromResultBackend++;
      let d: Decoded;
      try {
        d = decodeRawMessage(msg);
      } catch (e) {
        // The decoder is written never to throw; if a message finds a way, log where (once) and go on.
        d = { events: [], errors: [{ reason: "decoder_error", detail: e instanceof Error ? (e.stack ?? e.message) : `threw ${typeof e}` }], dropped: [] };
      }
      for (const err of d.errors) {
        rejected.set(err.reason, (rejected.get(err.reason) ?? 0) + (err.count ?? 1));
        log.once(
          `decode:${err.reason}`,
          `unusable message on ${JSON.stringify(msg.channel.slice(0, 120))}: ${err.detail}; each one is counted in crisper_messages_rejected_total{reason="${err.reason}"}`,
        );
      }
      for (const f of d.dropped) {
        const key = `${f.field}:${f.reason}`;
        const seen = dropped.get(key);
        if (seen) seen.n++;
        else dropped.set(key, { field: f.field, reason: f.reason, n: 1 });
        log.once(
          `dropped:${key}`,
          `${f.detail} (on ${JSON.stringify(msg.channel.slice(0, 120))}); the event is kept without it, each one is counted in crisper_event_fields_dropped_total{field="${f.field}",reason="${f.reason}"}`,
        );
      }
      for (const e of d.events) {
        byType.set(e.type, (byType.get(e.type) ?? 0) + 1);
        const q = e.fields.queue;
        if (typeof q === "string" && knownQueues.size < MAX_KNOWN_QUEUES) knownQueues.add(q);
        out.push(e);
      }
    }
    // Metrics once per batch: per-event label lookups cost more than decoding.
    if (messages.length > fromResultBackend) m.messagesReceived.inc({ stream: "events" }, messages.length - fromResultBackend);
    if (fromResultBackend) m.messagesReceived.inc({ stream: "result-backend" }, fromResultBackend);
    for (const [type, n] of byType) m.eventsDecoded.inc({ type }, n);
    for (const [reason, n] of rejected) m.messagesRejected.inc({ reason }, n);
    for (const { field, reason, n } of dropped.values()) m.fieldsDropped.inc({ field, reason }, n);
    taskMetrics.countBatch(out);
    return out;
  }

  /** Lag from arrival to commit, sampled: one observation per message is plenty. */
  function observeLag(written: readonly CeleryEvent[]) {
    const now = Date.now() / 1000;
    const step = Math.max(1, Math.floor(written.length / 200));
    for (let i = 0; i < written.length; i += step) m.lagSeconds.observe(Math.max(0, now - (written[i] as CeleryEvent).localReceived));
  }

  /**
   * Takes batches from the backlog and writes them. Two writes may be in
   * flight, so that decoding the next batch overlaps the database's work on
   * this one; merges are order-independent, so their commit order does not
   * matter. While stopping it writes only what is in memory, and only while
   * the database takes writes: the rest stays in (or goes to) the spool.
   */
  const inFlight = new Set<Promise<void>>();
  /** Oldest arrival in each batch being written, and its messages (kept if the write is given up). */
  const inFlightSince = new Map<Promise<void>, number>();
  const inFlightMessages = new Map<Promise<void>, RawMessage[]>();
  /** Batches whose write was given up at shutdown (the database down): kept in the spool. */
  const unwritten: RawMessage[][] = [];
  const writerOptions = {
    database,
    log,
    outage,
    isStopping: () => stopping,
    broker: deps.brokerName,
    onCommitted: (written: readonly CeleryEvent[]) => {
      try {
        observeLag(written);
        deps.onCommitted?.(written);
      } catch (e) {
        reportUnexpected("writer", e, log, "after a commit");
      }
    },
  };
  async function runWriter() {
    for (;;) {
      if (stopping) {
        // Shutdown: write what is in memory while the database takes
        // writes. The spool stays on disk for the next start.
        if (outage.down || backlog.sizes().bufferMessages === 0) break;
      } else if (backlog.size === 0) {
        await Promise.all(inFlight);
        if (backlog.size > 0) continue;
        for (const resolve of idle) resolve();
        idle = [];
        await backlog.waitForData();
        continue;
      }
      if (inFlight.size >= MAX_WRITES_IN_FLIGHT) {
        await Promise.race(inFlight);
        continue;
      }
      const messages = backlog.take(config.batchMessages, !stopping);
      if (spilling && !backlog.spooling) {
        spilling = false;
        log.info("spool drained: new messages are held in memory again");
      }
      if (messages.length === 0) {
        await Bun.sleep(10);
        continue;
      }
      const events = decode(messages);
      const write: Promise<void> = (events.length > 0 ? writeEvents(events, writerOptions) : Promise.resolve(true)).then(
        (written) => {
          if (written) {
            stats.written += messages.length;
            // Committed: a broker that keeps messages until acknowledged (RabbitMQ) may let them go.
            for (const msg of messages) msg.settle?.();
          } else unwritten.push(messages);
          settle(write);
        },
        (e: unknown) => {
          // A bug, not the database (writeEvents retries those): these messages are lost.
          reportUnexpected("writer", e, log, `write of ${messages.length} messages failed`);
          // Not redelivered either: the same messages would fail the same way.
          for (const msg of messages) msg.settle?.();
          stats.written += messages.length;
          m.storeRejected.inc(events.length);
          settle(write);
        },
      );
      inFlight.add(write);
      inFlightMessages.set(write, messages);
      if (messages[0]) inFlightSince.set(write, messages[0].receivedAt);
      // Let the socket and the write make progress before taking more.
      await Bun.sleep(0);
    }
    await Promise.all(inFlight);
    for (const resolve of idle) resolve();
    idle = [];
  }

  function settle(write: Promise<void>) {
    inFlight.delete(write);
    inFlightSince.delete(write);
    inFlightMessages.delete(write);
  }

  async function enableEvents() {
    try {
      await broker.broadcast("enable_events");
    } catch (e) {
      // An unreachable broker is said once, for everything (broker/reachability.ts).
      if (!isBrokerUnreachable(e)) log.once("enable-events", `could not broadcast enable_events: ${(e as Error).message}`);
    }
  }

  /**
   * Queues a worker consumes from but nobody has published to yet have no
   * binding key: ask the workers (`active_queues`) now and then.
   */
  let samplesTaken = 0;
  async function discoverWorkerQueues() {
    try {
      const replies = await broker.call("active_queues", {}, { timeoutMs: 1000 });
      for (const queues of Object.values(replies)) {
        if (!Array.isArray(queues)) continue;
        for (const q of queues) {
          const name = (q as { name?: unknown })?.name;
          if (typeof name === "string" && name.length <= 255 && knownQueues.size < MAX_KNOWN_QUEUES) knownQueues.add(name);
        }
      }
    } catch (e) {
      if (stopping || isBrokerUnreachable(e)) return;
      log.once("active-queues", `could not ask workers for their queues: ${(e as Error).message}`);
    }
  }

  let sampling = false;
  /** A sampling failure was logged (an unreachable broker is not: broker/reachability.ts says it). */
  let samplingFailing = false;
  async function sampleQueues() {
    // A slow broker must not pile up overlapping samples.
    if (sampling || stopping) return;
    sampling = true;
    try {
      if (samplesTaken++ % 12 === 0) await discoverWorkerQueues();
      const samples = await broker.sampleQueues([...knownQueues]);
      await insertQueueSamples(database, samples, deps.brokerName);
      await sampleHealth();
      if (samplingFailing) log.info("queue sampling works again");
      samplingFailing = false;
    } catch (e) {
      if (stopping) return;
      if (isBrokerUnreachable(e)) return;
      // Once per outage, not every few seconds while it lasts.
      if (!samplingFailing) log.warn(`queue sampling failed: ${(e as Error).message}; retrying every ${config.queueSampleIntervalS} s`);
      samplingFailing = true;
    } finally {
      sampling = false;
    }
  }

  /**
   * The broker server's health, with each queue sample. A broker that cannot
   * say (RabbitMQ without its management API) has no `health`; a failure is
   * logged once per outage and never holds up the queue samples.
   */
  let healthFailing = false;
  async function sampleHealth() {
    if (!broker.health) return;
    try {
      const health = await broker.health();
      await insertBrokerSample(database, deps.brokerName ?? DEFAULT_BROKER, health, BROKER_HEALTH_KEEP_S);
      if (healthFailing) log.info("broker health sampling works again");
      healthFailing = false;
    } catch (e) {
      if (stopping) return;
      if (!healthFailing) log.warn(`broker health sampling failed: ${(e as Error).message}; retrying with the queue samples`);
      healthFailing = true;
    }
  }

  return {
    gaps,
    get streamUpSince() {
      return streamUpSince;
    },
    get uncommittedSince() {
      let oldest = backlog.oldestArrival();
      for (const t of inFlightSince.values()) if (oldest === null || t < oldest) oldest = t;
      return oldest;
    },
    recordGap,
    get stats() {
      return { ...stats, buffered: backlog.size };
    },
    get storeDown() {
      return outage.down;
    },
    async start() {
      loop = superviseLoop("writer", runWriter, { log, stopping: () => stopping });
      subscription = await broker.subscribe(onMessage, onStatus);
      if (config.enableEvents) {
        const p = every("enable-events", config.enableEventsIntervalS * 1000, enableEvents, log);
        void p.runNow();
        periodic.push(p);
      }
      const sampler = every("queue-sampler", config.queueSampleIntervalS * 1000, sampleQueues, log);
      void sampler.runNow();
      periodic.push(sampler);
    },
    flush() {
      if (backlog.size === 0 && !loopBusy()) return Promise.resolve();
      return new Promise((resolve) => idle.push(resolve));
    },
    async stop() {
      if (stopping) return;
      stopping = true;
      await Promise.all(periodic.map((p) => p.stop()));
      await subscription?.close();
      backlog.wake();
      const finished = await Promise.race([(loop ?? Promise.resolve()).then(() => true), Bun.sleep(STOP_WAIT_MS).then(() => false)]);
      // Oldest first: batches given up, then (if the writer did not finish)
      // those still in flight, then what is left in memory.
      const keep = unwritten.flat();
      if (!finished) for (const messages of inFlightMessages.values()) keep.push(...messages);
      keep.push(...backlog.drainMemory());
      const lost = backlog.requeue(keep);
      if (keep.length > 0) {
        log.warn(
          lost > 0
            ? `stopping with ${lost} messages not written (the database is unavailable and there is no spool)`
            : `stopping with ${keep.length} messages not written (the database is unavailable): kept in the spool for the next start`,
        );
      }
      backlog.close();
      observeBacklog(null);
    },
  };

  function loopBusy() {
    return stats.written < stats.received - stats.dropped;
  }
}

/** The spool, if configured and free; without one a full buffer drops (said once). */
function openSpool(config: CollectorConfig, log: Logger): Spool | null {
  if (!config.spoolDir || config.spoolMaxBytes <= 0) return null;
  try {
    return Spool.open({ dir: config.spoolDir, maxBytes: config.spoolMaxBytes, log });
  } catch (e) {
    log.error(`no spool (${(e as Error).message}): when the memory buffer is full, new messages are dropped`);
    return null;
  }
}
