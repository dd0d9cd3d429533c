/**
 * What one detection pass sees: a snapshot of the workers and unfinished
 * tasks read from the store, the broker's unacknowledged messages, and the
 * means to make the alerts of a kind match what holds now. The loop
 * (loop.ts) builds a `Pass` and hands it to each check (checks/).
 */
import type { AlertChanges, syncAlerts } from "../alerts/store.ts";
import type { AlertKind, AlertSpec } from "../alerts/kinds.ts";
import type { BrokerPort } from "../broker/port.ts";
import type { StreamGap } from "../collector/collector.ts";
import type { Database } from "../store/database.ts";
import type { DetectorConfig } from "./config.ts";
import type { Trackers } from "./trackers.ts";

export interface WorkerView {
  hostname: string;
  freq: number | null;
  lastHeartbeatAt: number | null;
  onlineAt: number | null;
  offlineAt: number | null;
  processed: number | null;
  /** Task ids from the latest `reserved` reply, if any. */
  reservedTaskIds: string[];
}

export interface TaskView {
  id: string;
  name: string | null;
  state: string;
  worker: string | null;
  receivedAt: number | null;
  startedAt: number | null;
  lastEventAt: number;
}

export interface UnackedView {
  taskId: string | null;
  deliveredAt: number | null;
  queue: string | null;
}

export type SyncOptions = Parameters<typeof syncAlerts>[4];

export interface Pass {
  /** The pass's clock, unix seconds. */
  now: number;
  /**
   * The store is true only up to the oldest event not yet written: heartbeats
   * are judged as of then, or a collector that falls behind under load would
   * see every worker die.
   */
  asOf: number;
  config: DetectorConfig;
  database: Database;
  broker: BrokerPort | null;
  /** The name of the broker this pass judges (BROKERS; "default"): its workers, tasks, queues and alerts only. */
  brokerName: string;
  /**
   * Whether this detector also watches what belongs to no one broker
   * (declared Beat schedules): the first broker's detector does.
   */
  primary: boolean;
  workers: readonly WorkerView[];
  /** RECEIVED and STARTED tasks (store/queries/detect.ts unfinishedTasks). */
  unfinished: readonly TaskView[];
  /** The broker's unacknowledged messages; null when it could not say. */
  unacked: readonly UnackedView[] | null;
  /** Workers dead by Celery's heartbeat rule plus grace, as of `asOf`. */
  deadWorkers: ReadonlySet<string>;
  /** When the event stream last came up; null while it is down. */
  streamUpSince: number | null;
  /** The collector's record of interruptions of the event stream. */
  gaps(): readonly StreamGap[];
  /** What the detector remembers between passes (trackers.ts). */
  trackers: Trackers;
  /** Makes the open alerts of `kind` match `holding` (alerts/store.ts syncAlerts), logging and announcing the changes. */
  sync(kind: AlertKind, holding: AlertSpec[], opts?: SyncOptions): Promise<void>;
  /** Announces alert changes made outside `sync` (to live pages and the Slack poster). */
  announce(changes: AlertChanges): void;
  /** Asks the workers what they hold on the next pass, whatever the inspection interval. */
  inspectAgain(): void;
  /** The detector's clock, for what is timed within the pass. */
  clock(): number;
  /**
   * Redis: the visibility timeout each worker reports in its own
   * `broker_transport_options` (read-config.ts), seconds, by hostname; it
   * replaces BROKER_VISIBILITY_TIMEOUT for that worker's tasks. Empty on
   * RabbitMQ, where the server's consumer_timeout applies.
   */
  visibilityTimeouts?: ReadonlyMap<string, number>;
}

/**
 * An alert's summary as people read it (pages, Slack): with several brokers,
 * it starts with the broker's name, since a subject ("collector", a queue, a
 * hostname) may be on any of them.
 */
export function summaryOn(brokerName: string, summary: string): string {
  return brokerName === "default" || summary.startsWith(`[${brokerName}] `) ? summary : `[${brokerName}] ${summary}`;
}

/** One check: reads what it needs from the pass and syncs the alerts of its kind. */
export type Check = (pass: Pass) => Promise<void>;
