/**
 * The detection loop: every DETECT_INTERVAL_S, read what the store and the
 * broker say into a `Pass` (pass.ts), run each check on it (checks/, one per
 * alert kind), and make the alerts match. It runs next to the collector,
 * which feeds it the events it commits (`observe`, into trackers.ts), so
 * duplicate starts and arrivals are seen as they happen.
 */
import type { AlertKind, AlertSpec } from "../alerts/kinds.ts";
import { type AlertChanges, syncAlerts } from "../alerts/store.ts";
import type { BrokerPort, UnackedMessage } from "../broker/port.ts";
import type { CeleryEvent } from "../celery/event.ts";
import type { StreamGap } from "../collector/collector.ts";
import { errorText, type Logger } from "../log.ts";
import { detectorMetrics } from "../metrics.ts";
import { type Database, isDatabaseUnavailable } from "../store/database.ts";
import { reportUnexpected } from "../supervise.ts";
import { DEFAULT_BROKER } from "../store/schema/columns.ts";
import { unfinishedTasks } from "../store/queries/detect.ts";
import { heldTasks, listWorkers } from "../store/queries/workers.ts";
import { checkBeatMissed } from "./checks/beat-missed.ts";
import { checkBrokerHealth } from "./checks/broker-health.ts";
import { checkTasksExpired } from "./checks/tasks-expired.ts";
import { checkDuplicateExecution } from "./checks/duplicate-execution.ts";
import { checkEventGap } from "./checks/event-gap.ts";
import { checkEventsDisabled } from "./checks/events-disabled.ts";
import { checkQueueBacklog } from "./checks/queue-backlog.ts";
import { checkTaskStalled } from "./checks/task-stalled.ts";
import { checkVisibilityTimeoutRisk } from "./checks/visibility-timeout-risk.ts";
import { checkWorkerDeath, deathTime } from "./checks/worker-death.ts";
import { createConfigRiskCheck } from "./checks/config-risk.ts";
import type { DetectorConfig } from "./config.ts";
import { createInspector } from "./inspect.ts";
import { createConfigReader } from "./read-config.ts";
import { workerVisibilityTimeouts } from "../store/queries/worker-config.ts";
import { workerLiveness } from "../state/worker.ts";
import { type Check, type Pass, type SyncOptions, summaryOn, type WorkerView } from "./pass.ts";
import { createTrackers } from "./trackers.ts";

export interface DetectorOptions {
  database: Database;
  broker: BrokerPort | null;
  /** The broker's name (BROKERS; "default" for BROKER_URL alone): one detector per broker. */
  brokerName?: string;
  /** False for every broker's detector but the first (declared schedules are watched once). */
  primary?: boolean;
  config: DetectorConfig;
  log: Logger;
  /** The collector's stream record; empty when no collector runs here. */
  gaps: () => readonly StreamGap[];
  /** When the event stream last came up; null while it is down. */
  streamUpSince: () => number | null;
  /** Arrival of the oldest event not yet in the store (the collector is behind); null when caught up. */
  uncommittedSince?: () => number | null;
  onChanges?: (changes: AlertChanges) => void;
  now?: () => number;
}

export interface Detector {
  /** Feeds the trackers the events the collector just committed. */
  observe(events: readonly CeleryEvent[]): void;
  /** One pass now; throws what the pass threw. The loop calls it every DETECT_INTERVAL_S. */
  runOnce(now?: number): Promise<void>;
  start(): void;
  stop(): Promise<void>;
  /** Passes finished so far, failed ones included. */
  passes(): number;
  /**
   * Resolves once a pass that starts after this call has finished, whether it
   * succeeded or failed; rejects if the detector stops first. What a test
   * waits for before saying that something was *not* detected.
   */
  nextPass(): Promise<void>;
}

/** The checks in the order a pass runs them. */
const CHECKS: readonly Check[] = [
  checkWorkerDeath, // worker_offline, task_lost and prefetched_stranded, from one analysis
  checkTaskStalled,
  checkVisibilityTimeoutRisk,
  checkDuplicateExecution,
  checkBeatMissed,
  checkQueueBacklog,
  checkEventsDisabled,
  checkEventGap,
  checkBrokerHealth,
  checkTasksExpired,
];

export function createDetector(o: DetectorOptions): Detector {
  const { database, broker, config, log } = o;
  const brokerName = o.brokerName ?? DEFAULT_BROKER;
  const clock = o.now ?? (() => Date.now() / 1000);
  const trackers = createTrackers();
  const inspector = createInspector({ database, broker, brokerName, intervalS: config.inspectIntervalS, log });
  const configReader = createConfigReader({ database, broker, intervalS: config.workerConfigIntervalS, log });
  // config_risk keeps runtimes between passes: one check per detector.
  const checks: readonly Check[] = [...CHECKS, createConfigRiskCheck()];
  let timer: ReturnType<typeof setInterval> | null = null;
  let running: Promise<void> | null = null;
  let failing = false;
  let finished = 0;
  let waiting: { resolve: () => void; reject: (e: Error) => void }[] = [];

  async function sync(kind: AlertKind, holding: AlertSpec[], now: number, opts?: SyncOptions) {
    const named = holding.map((h) => ({ ...h, summary: summaryOn(brokerName, h.summary) }));
    const changes = await syncAlerts(database, kind, named, new Date(now * 1000), { ...opts, broker: brokerName });
    for (const a of changes.opened) log.warn(`alert opened: ${a.kind} ${a.subject}: ${a.summary}`);
    for (const a of changes.resolved) log.info(`alert resolved: ${a.kind} ${a.subject}`);
    if (changes.opened.length || changes.updated.length || changes.resolved.length) o.onChanges?.(changes);
  }

  /** What a pass reads before any check runs. */
  async function readPass(now: number): Promise<Pass> {
    await inspector.inspect(now);
    const toS = (d: Date | null) => (d ? d.getTime() / 1000 : null);
    const workers: WorkerView[] = (await listWorkers(database, brokerName)).map((w) => ({
      hostname: w.hostname,
      freq: w.freq,
      lastHeartbeatAt: toS(w.lastHeartbeatAt),
      onlineAt: toS(w.onlineAt),
      offlineAt: toS(w.offlineAt),
      processed: w.processed,
      reservedTaskIds: heldTasks(w.reservedTasks).map((t) => t.id),
    }));
    const unfinished = await unfinishedTasks(database, undefined, brokerName);
    let unacked: UnackedMessage[] | null = null;
    if (broker) unacked = await broker.unacked().catch(() => null);
    const asOf = Math.min(now, o.uncommittedSince?.() ?? now);
    const visibilityTimeouts = config.redeliveryLimit === "visibility_timeout" ? await workerVisibilityTimeouts(database) : new Map<string, number>();
    configReader.read(
      now,
      workers.filter((w) => workerLiveness({ lastHeartbeatAt: w.lastHeartbeatAt, freq: w.freq, offlineAt: w.offlineAt }, asOf).status === "online"),
    );
    return {
      now,
      asOf,
      config,
      database,
      broker,
      brokerName,
      primary: o.primary ?? true,
      workers,
      unfinished,
      unacked,
      deadWorkers: new Set(workers.filter((w) => deathTime(w, asOf, config) !== null).map((w) => w.hostname)),
      streamUpSince: o.streamUpSince(),
      gaps: o.gaps,
      trackers,
      sync: (kind, holding, opts) => sync(kind, holding, now, opts),
      announce: (changes) => o.onChanges?.(changes),
      inspectAgain: () => inspector.again(),
      visibilityTimeouts,
      clock,
    };
  }

  async function runOnce(now = clock()) {
    // Those who asked before this pass started are answered when it ends.
    const answering = waiting;
    waiting = [];
    try {
      const pass = await readPass(now);
      // A check that fails does not keep the others from running; the pass
      // then fails with the first error (the database away fails it at once).
      let failure: { error: unknown } | null = null;
      for (const check of checks) {
        try {
          await check(pass);
        } catch (e) {
          if (isDatabaseUnavailable(e)) throw e;
          failure ??= { error: e };
        }
      }
      if (failure) throw failure.error;
    } catch (e) {
      detectorMetrics.passFailures.inc();
      throw e;
    } finally {
      finished++;
      detectorMetrics.passes.inc();
      for (const w of answering) w.resolve();
    }
  }

  async function tick() {
    if (running) return;
    running = runOnce()
      .then(() => {
        if (failing) log.info("detection works again");
        failing = false;
      })
      .catch((e) => {
        if (!isDatabaseUnavailable(e)) reportUnexpected("detector", e, log);
        else if (!failing) log.warn(`detection pass failed: ${errorText(e)}; retrying every ${config.intervalS} s`);
        failing = true;
      })
      .finally(() => {
        running = null;
      });
    await running;
  }

  return {
    observe: trackers.observe,
    runOnce,
    start() {
      timer = setInterval(tick, config.intervalS * 1000);
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = null;
      await running;
      await configReader.settled();
      for (const w of waiting) w.reject(new Error("the detector stopped before its next pass"));
      waiting = [];
    },
    passes: () => finished,
    nextPass: () => new Promise<void>((resolve, reject) => waiting.push({ resolve, reject })),
  };
}
