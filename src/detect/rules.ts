/**
 * The detectors: plain functions from a snapshot of what Crisper knows (and
 * the time, injected) to the alerts that should be open. No I/O, no clock of
 * their own, so unit tests drive them with synthetic timelines.
 *
 * Each returns the conditions that hold *now*; the engine opens, updates and
 * resolves alerts to match (alerts/store.ts).
 */
import type { AlertSpec } from "../alerts/kinds.ts";
import { AT_WORKER_STATES } from "../celery/states.ts";
import { workerLiveness } from "../state/worker.ts";

export interface DetectConfig {
  /** Extra seconds past Celery's heartbeat expiry before a worker is declared dead. */
  workerOfflineGraceS: number;
  /** Workers silent for longer than this are history, not alerts. */
  workerForgetAfterS: number;
  taskStallDefaultS: number;
  taskStallMinS: number;
  taskStallFactor: number;
  taskStallThresholds: Record<string, number>;
  visibilityTimeoutS: number;
  visibilityRiskRatio: number;
  beatTolerance: number;
  queueBacklogDepth: number | null;
  queueBacklogWindowS: number;
  queueBacklogMinGrowth: number;
  eventsDisabledAfterS: number;
}

export const DEFAULT_DETECT_CONFIG: DetectConfig = {
  workerOfflineGraceS: 2,
  workerForgetAfterS: 86_400,
  taskStallDefaultS: 3600,
  taskStallMinS: 60,
  taskStallFactor: 3,
  taskStallThresholds: {},
  visibilityTimeoutS: 3600,
  visibilityRiskRatio: 0.8,
  beatTolerance: 1,
  queueBacklogDepth: null,
  queueBacklogWindowS: 300,
  queueBacklogMinGrowth: 100,
  eventsDisabledAfterS: 60,
};

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

const iso = (t: number | null) => (t === null ? null : new Date(t * 1000).toISOString());
const label = (t: TaskView) => `${t.name ?? "task"} ${t.id}`;

/** When a worker is dead by Celery's heartbeat rule plus grace; null if alive or shut down cleanly. */
export function deathTime(w: WorkerView, now: number, cfg: DetectConfig): number | null {
  const live = workerLiveness(
    { lastHeartbeatAt: w.lastHeartbeatAt, freq: w.freq, offlineAt: w.offlineAt },
    now,
  );
  if (live.status !== "offline" || live.reason !== "heartbeat_lost" || live.expiresAt === null) return null;
  if (now < live.expiresAt + cfg.workerOfflineGraceS) return null;
  if (now - live.expiresAt > cfg.workerForgetAfterS) return null;
  return live.expiresAt;
}

/**
 * worker_offline, task_lost and prefetched_stranded. `streamUpSince` is when
 * the event stream last (re)connected: heartbeats missed while Crisper itself
 * was cut off say nothing about the workers, so nothing is declared dead
 * until the stream has been up for a full heartbeat window.
 */
export function detectWorkerDeath(
  workers: readonly WorkerView[],
  unfinished: readonly TaskView[],
  unacked: readonly UnackedView[] | null,
  now: number,
  streamUpSince: number | null,
  cfg: DetectConfig,
): { workerOffline: AlertSpec[]; taskLost: AlertSpec[]; prefetchedStranded: AlertSpec[] } {
  const out = { workerOffline: [] as AlertSpec[], taskLost: [] as AlertSpec[], prefetchedStranded: [] as AlertSpec[] };
  if (streamUpSince === null) return out;
  const byHost = new Map(workers.map((w) => [w.hostname, w]));
  const dead = new Map<string, number>();
  for (const w of workers) {
    const died = deathTime(w, now, cfg);
    // The stream must have been up long enough to have seen its heartbeats.
    const window = (w.freq ?? 2) * 2 + cfg.workerOfflineGraceS;
    if (died !== null && now - streamUpSince >= window) dead.set(w.hostname, died);
  }
  for (const [hostname, died] of dead) {
    const w = byHost.get(hostname) as WorkerView;
    out.workerOffline.push({
      kind: "worker_offline",
      subject: hostname,
      summary: `Worker ${hostname} stopped sending heartbeats at ${iso(w.lastHeartbeatAt)} without shutting down: it died (killed, out of memory, or its host is gone).`,
      details: { last_heartbeat_at: iso(w.lastHeartbeatAt), declared_dead_at: iso(died), freq_s: w.freq },
    });
  }

  const unackedIds = unacked ? new Map(unacked.filter((u) => u.taskId).map((u) => [u.taskId as string, u])) : null;
  const stranded = new Map<string, { ids: Set<string> }>();
  for (const t of unfinished) {
    if (!(AT_WORKER_STATES as readonly string[]).includes(t.state)) continue;
    if (!t.worker) continue;
    const w = byHost.get(t.worker);
    if (!w) continue;
    const died = dead.get(t.worker);
    // A worker that came back online after the task's last event is a new
    // process: the old one, which held this task, is gone — unless it shut
    // down cleanly in between (a warm shutdown finishes what it runs and
    // hands prefetched messages back to the queue).
    const cleanExit = w.offlineAt !== null && w.offlineAt >= t.lastEventAt;
    const restarted = w.onlineAt !== null && w.onlineAt > t.lastEventAt && !cleanExit;
    if (died === undefined && !restarted) continue;
    out.taskLost.push({
      kind: "task_lost",
      subject: t.id,
      summary: `${label(t)} was ${t.state} on ${t.worker}, which ${died !== undefined ? "died" : "restarted"}: it will not finish there.`,
      details: {
        task_id: t.id,
        name: t.name,
        worker: t.worker,
        state: t.state,
        received_at: iso(t.receivedAt),
        started_at: iso(t.startedAt),
        worker_died_at: iso(died ?? w.onlineAt),
        still_unacked: unackedIds ? unackedIds.has(t.id) : null,
      },
    });
    if (died !== undefined && t.state === "RECEIVED") {
      const s = stranded.get(t.worker) ?? { ids: new Set<string>() };
      s.ids.add(t.id);
      stranded.set(t.worker, s);
    }
  }
  // Prefetched (reserved) messages of a dead worker: from its last `reserved`
  // reply and its RECEIVED-but-never-started tasks, confirmed in `unacked`.
  for (const [hostname] of dead) {
    const w = byHost.get(hostname) as WorkerView;
    const ids = stranded.get(hostname)?.ids ?? new Set<string>();
    for (const id of w.reservedTaskIds) ids.add(id);
    const held = unackedIds ? [...ids].filter((id) => unackedIds.has(id)) : [...ids];
    if (held.length === 0) continue;
    const delivered = held.map((id) => unackedIds?.get(id)?.deliveredAt ?? null).filter((d): d is number => d !== null);
    const backAt = delivered.length ? Math.min(...delivered) + cfg.visibilityTimeoutS : null;
    out.prefetchedStranded.push({
      kind: "prefetched_stranded",
      subject: hostname,
      summary: `${held.length} message${held.length === 1 ? "" : "s"} prefetched by dead worker ${hostname} sit unacknowledged in the broker; Redis hands them back only after the visibility timeout (${cfg.visibilityTimeoutS} s)${backAt ? `, from ${iso(backAt)}` : ""}, when a worker restores them.`,
      details: { task_ids: held.slice(0, 100), count: held.length, returns_at: iso(backAt), visibility_timeout_s: cfg.visibilityTimeoutS },
    });
  }
  return out;
}

/** The STARTED-too-long threshold for a task name: configured, learned, or the default. */
export function stallThreshold(name: string | null, learnedP99: number | null, cfg: DetectConfig): { seconds: number; source: string } {
  if (name && cfg.taskStallThresholds[name] !== undefined) return { seconds: cfg.taskStallThresholds[name] as number, source: "configured" };
  if (learnedP99 !== null) return { seconds: Math.max(cfg.taskStallMinS, learnedP99 * cfg.taskStallFactor), source: "learned" };
  return { seconds: cfg.taskStallDefaultS, source: "default" };
}

export function detectStalled(
  unfinished: readonly TaskView[],
  learnedP99: ReadonlyMap<string, number>,
  deadWorkers: ReadonlySet<string>,
  now: number,
  cfg: DetectConfig,
): AlertSpec[] {
  const out: AlertSpec[] = [];
  for (const t of unfinished) {
    if (t.state !== "STARTED") continue;
    // A task on a dead worker is lost, not stalled.
    if (t.worker && deadWorkers.has(t.worker)) continue;
    // Started unseen (task events were off; the result backend said STARTED):
    // time it from when Crisper heard of it, which can only be later.
    const since = t.startedAt ?? t.lastEventAt;
    const th = stallThreshold(t.name, t.name ? (learnedP99.get(t.name) ?? null) : null, cfg);
    const running = now - since;
    if (running < th.seconds) continue;
    out.push({
      kind: "task_stalled",
      subject: t.id,
      summary: `${label(t)} has been STARTED on ${t.worker ?? "an unknown worker"} for ${Math.round(running)} s (threshold ${Math.round(th.seconds)} s, ${th.source}).`,
      details: { task_id: t.id, name: t.name, worker: t.worker, started_at: iso(since), running_s: Math.round(running), threshold_s: th.seconds, threshold_source: th.source },
    });
  }
  return out;
}

/** Messages unacknowledged for close to the visibility timeout: Redis will soon hand them to another worker. */
export function detectVisibilityRisk(unacked: readonly UnackedView[], names: ReadonlyMap<string, string | null>, now: number, cfg: DetectConfig): AlertSpec[] {
  const out: AlertSpec[] = [];
  for (const u of unacked) {
    if (!u.taskId || u.deliveredAt === null) continue;
    const age = now - u.deliveredAt;
    if (age < cfg.visibilityTimeoutS * cfg.visibilityRiskRatio) continue;
    const name = names.get(u.taskId) ?? null;
    out.push({
      kind: "visibility_timeout_risk",
      subject: u.taskId,
      summary: `${name ?? "task"} ${u.taskId} has been unacknowledged for ${Math.round(age)} s of the ${cfg.visibilityTimeoutS} s visibility timeout: past it, any worker that restores unacked messages runs it again.`,
      details: { task_id: u.taskId, name, queue: u.queue, delivered_at: iso(u.deliveredAt), unacked_s: Math.round(age), visibility_timeout_s: cfg.visibilityTimeoutS, redelivery_at: iso(u.deliveredAt + cfg.visibilityTimeoutS) },
    });
  }
  return out;
}

export interface QueueSamplePoint {
  at: number;
  depth: number;
}

export function detectBacklog(history: ReadonlyMap<string, readonly QueueSamplePoint[]>, now: number, cfg: DetectConfig): AlertSpec[] {
  const out: AlertSpec[] = [];
  for (const [queue, all] of history) {
    const points = all.filter((p) => p.at >= now - cfg.queueBacklogWindowS).sort((a, b) => a.at - b.at);
    const last = points.at(-1);
    if (!last) continue;
    if (cfg.queueBacklogDepth !== null && last.depth >= cfg.queueBacklogDepth) {
      out.push({
        kind: "queue_backlog",
        subject: queue,
        summary: `Queue ${queue} holds ${last.depth} messages (limit ${cfg.queueBacklogDepth}).`,
        details: { queue, depth: last.depth, limit: cfg.queueBacklogDepth, rule: "depth" },
      });
      continue;
    }
    const first = points[0] as QueueSamplePoint;
    if (points.length < 5 || last.at - first.at < cfg.queueBacklogWindowS * 0.8) continue;
    const growth = last.depth - first.depth;
    if (growth < cfg.queueBacklogMinGrowth) continue;
    // Sustained: in the second half of the window it never fell back to where it started.
    const half = points.filter((p) => p.at >= first.at + (last.at - first.at) / 2);
    if (half.some((p) => p.depth <= first.depth)) continue;
    const perMinute = (growth / (last.at - first.at)) * 60;
    out.push({
      kind: "queue_backlog",
      subject: queue,
      summary: `Queue ${queue} grows faster than it drains: ${first.depth} → ${last.depth} messages in ${Math.round(last.at - first.at)} s (+${perMinute.toFixed(0)}/min).`,
      details: { queue, depth: last.depth, from_depth: first.depth, window_s: Math.round(last.at - first.at), growth_per_min: Math.round(perMinute), rule: "growth" },
    });
  }
  return out;
}

export interface ActivityView {
  hostname: string;
  /** `processed` from heartbeats at the start and end of the window we watched. */
  processedFrom: number;
  processedTo: number;
  watchedSince: number;
  lastTaskEventAt: number | null;
}

/** A live worker completes tasks (its `processed` grows) but no task event from it arrives. */
export function detectEventsDisabled(activity: readonly ActivityView[], now: number, cfg: DetectConfig): AlertSpec[] {
  const out: AlertSpec[] = [];
  for (const a of activity) {
    if (now - a.watchedSince < cfg.eventsDisabledAfterS) continue;
    if (a.processedTo <= a.processedFrom) continue;
    if (a.lastTaskEventAt !== null && now - a.lastTaskEventAt < cfg.eventsDisabledAfterS) continue;
    out.push({
      kind: "events_disabled",
      subject: a.hostname,
      summary: `Worker ${a.hostname} processed ${a.processedTo - a.processedFrom} tasks in the last ${Math.round(now - a.watchedSince)} s but sent no task events: start it with -E (worker_send_task_events=True), or let Crisper broadcast enable_events (ENABLE_EVENTS).`,
      details: { hostname: a.hostname, processed: a.processedTo - a.processedFrom, window_s: Math.round(now - a.watchedSince), last_task_event_at: iso(a.lastTaskEventAt) },
    });
  }
  return out;
}
