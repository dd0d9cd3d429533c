/**
 * The detectors' settings, mapped from the validated configuration. The
 * defaults are the configuration's own (src/config.ts), so a default changed
 * there changes here too: nothing is written twice.
 */
import { brokerKind } from "../broker/kind.ts";
import { type Config, configSchema } from "../config.ts";
import type { Schedule } from "./schedules.ts";

/** What the checks' rules read: thresholds and windows (README lists each). */
export interface DetectConfig {
  /** Extra seconds past Celery's heartbeat expiry before a worker is declared dead. */
  workerOfflineGraceS: number;
  /** Workers silent for longer than this are history, not alerts. */
  workerForgetAfterS: number;
  taskStallDefaultS: number;
  taskStallMinS: number;
  taskStallFactor: number;
  taskStallThresholds: Record<string, number>;
  /** The broker's limit on an unacknowledged delivery, seconds: Redis's visibility timeout, RabbitMQ's consumer_timeout. */
  visibilityTimeoutS: number;
  /** Which of the two it is, named in alerts. */
  redeliveryLimit: "visibility_timeout" | "consumer_timeout";
  visibilityRiskRatio: number;
  beatTolerance: number;
  /** The timezone cron schedules are read in (BEAT_TIMEZONE, Celery's `timezone`). */
  beatTimezone: string;
  queueBacklogDepth: number | null;
  queueBacklogWindowS: number;
  queueBacklogMinGrowth: number;
  eventsDisabledAfterS: number;
  /**
   * event_gap: an interruption of the event stream within this many seconds
   * of the last one extends its alert instead of opening another; the alert
   * resolves once the stream has stayed up this long.
   */
  eventGapMergeS: number;
  /** tasks_expired resolves after this long without an expiration of the name. */
  tasksExpiredQuietS: number;
}

/** The rules' settings and the loop's own. */
export interface DetectorConfig extends DetectConfig {
  /** Seconds between detection passes. */
  intervalS: number;
  /** Seconds between asking the workers what they hold (`reserved`, `active`). */
  inspectIntervalS: number;
  /** Seconds between readings of a worker's configuration (`conf`, `stats`, `registered`). */
  workerConfigIntervalS: number;
  /** BEAT_SCHEDULES. */
  declaredSchedules: Schedule[];
  /** Whether RESULT_BACKEND_URL is set (gap reconciliation reads it). */
  resultBackend: boolean;
}

/** The settings of one broker's detector (`brokerUrl`: one of BROKERS; BROKER_URL by default). */
export function detectConfig(config: Config, brokerUrl = config.BROKER_URL): DetectorConfig {
  return {
    workerOfflineGraceS: config.WORKER_OFFLINE_GRACE_S,
    workerForgetAfterS: config.WORKER_FORGET_AFTER_S,
    taskStallDefaultS: config.TASK_STALL_DEFAULT_S,
    taskStallMinS: config.TASK_STALL_MIN_S,
    taskStallFactor: config.TASK_STALL_FACTOR,
    taskStallThresholds: config.TASK_STALL_THRESHOLDS,
    ...redeliveryLimit(config, brokerUrl),
    visibilityRiskRatio: config.VISIBILITY_RISK_RATIO,
    beatTolerance: config.BEAT_TOLERANCE,
    beatTimezone: config.BEAT_TIMEZONE,
    queueBacklogDepth: config.QUEUE_BACKLOG_DEPTH ?? null,
    queueBacklogWindowS: config.QUEUE_BACKLOG_WINDOW_S,
    queueBacklogMinGrowth: config.QUEUE_BACKLOG_MIN_GROWTH,
    eventsDisabledAfterS: config.EVENTS_DISABLED_AFTER_S,
    eventGapMergeS: config.EVENT_GAP_MERGE_S,
    tasksExpiredQuietS: config.TASKS_EXPIRED_QUIET_S,
    intervalS: config.DETECT_INTERVAL_S,
    inspectIntervalS: config.INSPECT_INTERVAL_S,
    workerConfigIntervalS: config.WORKER_CONFIG_INTERVAL_S,
    declaredSchedules: config.BEAT_SCHEDULES,
    resultBackend: Boolean(config.RESULT_BACKEND_URL),
  };
}

/** RabbitMQ's consumer_timeout plays the part of Redis's visibility timeout. */
function redeliveryLimit(config: Config, brokerUrl: string): Pick<DetectConfig, "visibilityTimeoutS" | "redeliveryLimit"> {
  return brokerKind(brokerUrl) === "rabbitmq"
    ? { visibilityTimeoutS: config.BROKER_CONSUMER_TIMEOUT, redeliveryLimit: "consumer_timeout" }
    : { visibilityTimeoutS: config.BROKER_VISIBILITY_TIMEOUT, redeliveryLimit: "visibility_timeout" };
}

/** The settings of a Crisper started with an empty environment. */
export const DEFAULT_DETECT_CONFIG: DetectorConfig = detectConfig(configSchema.parse({}));
