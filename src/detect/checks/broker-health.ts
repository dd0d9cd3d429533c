/**
 * broker_eviction_risk and broker_memory_high, from the broker's health
 * samples (the collector writes one with each queue sample).
 *
 * Celery keeps everything in Redis as ordinary keys: each queue is a list,
 * the messages workers hold are the `unacked` hash, results are strings.
 * Redis with a `maxmemory` and any policy but `noeviction` deletes keys when
 * it runs out of room, and those may be Celery's: tasks then vanish without
 * a trace. So a policy that allows eviction is a standing risk (warning);
 * `evicted_keys` rising means it is happening (critical).
 */
import type { AlertSpec } from "../../alerts/kinds.ts";
import { openAlerts } from "../../alerts/store.ts";
import { type BrokerSampleRow, brokerHistory, latestBrokerSamples } from "../../store/queries/broker.ts";
import type { Check } from "../pass.ts";

/** broker_memory_high opens past this share of the limit (CONTRACT.md: 80 %)… */
export const MEMORY_HIGH_RATIO = 0.8;
/** …and resolves only below this one, so memory hovering at 80 % does not flap. */
export const MEMORY_LOW_RATIO = 0.75;
/** Evictions counted over this window: any in it make the eviction alert critical. */
export const EVICTION_WINDOW_S = 600;
/** A sample older than this says nothing about now (no collector, or the broker unreachable). */
export const SAMPLE_FRESH_S = 300;

/** One health sample, as the rules read it (times in unix seconds). */
export interface BrokerPoint {
  broker: string;
  kind: string;
  at: number;
  uptimeS: number | null;
  usedMemoryBytes: number | null;
  maxMemoryBytes: number | null;
  maxMemoryPolicy: string | null;
  evictedKeys: number | null;
  memoryAlarm: boolean | null;
}

export const pointOf = (r: BrokerSampleRow): BrokerPoint => ({
  broker: r.broker,
  kind: r.kind,
  at: r.sampledAt.getTime() / 1000,
  uptimeS: r.uptimeS,
  usedMemoryBytes: r.usedMemoryBytes,
  maxMemoryBytes: r.maxMemoryBytes,
  maxMemoryPolicy: r.maxMemoryPolicy,
  evictedKeys: r.evictedKeys,
  memoryAlarm: r.memoryAlarm,
});

/** Whether Redis may evict keys: a maxmemory, and a policy other than noeviction. */
export function mayEvict(h: { kind: string; maxMemoryBytes: number | null; maxMemoryPolicy: string | null }): boolean {
  return h.kind === "redis" && h.maxMemoryBytes !== null && h.maxMemoryBytes > 0 && h.maxMemoryPolicy !== null && h.maxMemoryPolicy !== "noeviction";
}

const mb = (b: number) => `${Math.round(b / 2 ** 20)} MB`;

/**
 * Keys evicted within the window, from the first sample of the window to the
 * last. A restart in between (uptime went back) resets Redis's counter, so
 * then only the count since the restart is known.
 */
export function evictedInWindow(window: readonly BrokerPoint[]): number {
  const first = window[0];
  const last = window.at(-1);
  if (!first || !last || last.evictedKeys === null) return 0;
  const restarted = window.some((p, i) => {
    const before = window[i - 1];
    return before !== undefined && p.uptimeS !== null && before.uptimeS !== null && p.uptimeS < before.uptimeS;
  });
  if (restarted) return last.evictedKeys;
  return Math.max(0, last.evictedKeys - (first.evictedKeys ?? last.evictedKeys));
}

/** broker_eviction_risk for the latest sample and the window before it; null when Redis cannot evict. */
export function evictionRisk(window: readonly BrokerPoint[]): AlertSpec | null {
  const last = window.at(-1);
  if (!last || last.kind !== "redis") return null;
  const evicted = evictedInWindow(window);
  const policy = last.maxMemoryPolicy;
  if (!mayEvict(last) && evicted === 0) return null;
  const fix = "Set maxmemory-policy to noeviction (CONFIG SET maxmemory-policy noeviction, and in redis.conf or your provider's parameter group), or give Celery a Redis of its own.";
  const limit = last.maxMemoryBytes ? mb(last.maxMemoryBytes) : "no limit";
  const details = {
    broker: last.broker,
    maxmemory_policy: policy,
    maxmemory_bytes: last.maxMemoryBytes,
    evicting: evicted > 0,
    evicted_keys_total: last.evictedKeys,
    why: "Celery's queues (lists), the unacked hash of messages workers hold, and results are ordinary Redis keys: at maxmemory Redis deletes keys by its policy, and tasks then vanish without a trace.",
    fix,
  };
  if (evicted > 0) {
    return {
      kind: "broker_eviction_risk",
      subject: last.broker,
      severity: "critical",
      summary:
        `Redis (broker ${last.broker}) is evicting keys: ${evicted} evicted in the last ${Math.round(EVICTION_WINDOW_S / 60)} minutes ` +
        `(maxmemory ${limit}, maxmemory-policy ${policy ?? "unknown"}). Celery's queues, the unacked set and results may be among them: tasks vanish without a trace. ${fix}`,
      details,
    };
  }
  return {
    kind: "broker_eviction_risk",
    subject: last.broker,
    summary:
      `Redis (broker ${last.broker}) may evict Celery's keys: maxmemory is ${limit} and maxmemory-policy is ${policy}. ` +
      `When Redis fills up it deletes keys by that policy, and Celery's queues, the unacked set and results are keys like any other: tasks would vanish without a trace. ${fix}`,
    details,
  };
}

/** broker_memory_high for the latest sample; `open`: whether its alert is open now (it then resolves only under MEMORY_LOW_RATIO). */
export function memoryHigh(last: BrokerPoint | undefined, open: boolean): AlertSpec | null {
  if (!last) return null;
  const used = last.usedMemoryBytes;
  const max = last.maxMemoryBytes;
  const ratio = used !== null && max !== null && max > 0 ? used / max : null;
  const alarm = last.memoryAlarm === true;
  const high = ratio !== null && ratio >= (open ? MEMORY_LOW_RATIO : MEMORY_HIGH_RATIO);
  if (!high && !alarm) return null;
  const percent = ratio === null ? null : Math.round(ratio * 100);
  const server = last.kind === "rabbitmq" ? "RabbitMQ" : "Redis";
  const limitName = last.kind === "rabbitmq" ? "memory high watermark" : "maxmemory";
  const consequence =
    last.kind === "rabbitmq"
      ? "At the watermark RabbitMQ raises its memory alarm and blocks every publisher: task sends hang."
      : "At maxmemory Redis evicts keys by its policy or, with noeviction, refuses writes: task sends fail.";
  return {
    kind: "broker_memory_high",
    subject: last.broker,
    severity: alarm ? "critical" : undefined,
    summary:
      (alarm
        ? `${server} (broker ${last.broker}) has raised its memory alarm: publishers are blocked.`
        : `${server} (broker ${last.broker}) uses ${percent} % of its ${limitName} (${mb(used ?? 0)} of ${mb(max ?? 0)}).`) +
      ` ${consequence} Drain or purge backlogged queues, expire results sooner (result_expires), or raise the limit.`,
    details: {
      broker: last.broker,
      // Whole percent, so a pass that sees a few bytes more does not rewrite the alert.
      used_percent: percent,
      max_memory_bytes: max,
      memory_alarm: last.memoryAlarm,
      threshold_percent: MEMORY_HIGH_RATIO * 100,
    },
  };
}

export const checkBrokerHealth: Check = async (pass) => {
  const { database, now } = pass;
  const latest = (await latestBrokerSamples(database)).map(pointOf);
  const fresh = latest.filter((p) => now - p.at <= SAMPLE_FRESH_S);
  // Brokers without a recent sample cannot be judged: their open alerts stay as they are.
  const stale = latest.filter((p) => now - p.at > SAMPLE_FRESH_S).map((p) => p.broker);
  const memoryOpen = new Set((await openAlerts(database, "broker_memory_high")).map((a) => a.subject));
  const eviction: AlertSpec[] = [];
  const memory: AlertSpec[] = [];
  for (const p of fresh) {
    const window = (await brokerHistory(database, p.broker, new Date((now - EVICTION_WINDOW_S) * 1000))).map(pointOf);
    const e = evictionRisk(window.length ? window : [p]);
    if (e) eviction.push(e);
    const m = memoryHigh(p, memoryOpen.has(p.broker));
    if (m) memory.push(m);
  }
  await pass.sync("broker_eviction_risk", eviction, { leaveOpen: stale });
  await pass.sync("broker_memory_high", memory, { leaveOpen: stale });
};
