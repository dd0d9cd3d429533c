/**
 * The worker-death analysis, one pass over the workers and their tasks that
 * yields three alert kinds: worker_offline (worker-offline.ts), task_lost
 * (task-lost.ts) and prefetched_stranded (prefetched-stranded.ts).
 *
 * A worker is dead when its heartbeats stopped without a worker-offline
 * event (Celery's heartbeat rule, state/worker.ts, plus a grace). Its
 * RECEIVED and STARTED tasks will not finish there; neither will those of a
 * worker that restarted under them.
 *
 * Silence is only evidence while Crisper itself listens: while its event
 * stream is down, or up for less than a heartbeat window (Crisper just
 * started, or just reconnected), a worker whose heartbeats have expired in
 * the store is neither dead nor alive but *unjudged*, and the alerts about it
 * stay as they are. Otherwise a Crisper restart would resolve a dead worker's
 * worker_offline and open it again a few seconds later: two more Slack posts.
 * A heartbeat that arrives meanwhile is a judgement: the worker is back.
 */
import type { AlertSpec } from "../../alerts/kinds.ts";
import { AT_WORKER_STATES } from "../../celery/states.ts";
import { workerLiveness } from "../../state/worker.ts";
import type { DetectConfig } from "../config.ts";
import type { Check, TaskView, UnackedView, WorkerView } from "../pass.ts";
import { prefetchedStrandedAlerts } from "./prefetched-stranded.ts";
import { taskLostAlerts } from "./task-lost.ts";
import { workerOfflineAlerts } from "./worker-offline.ts";

const AT_WORKER: ReadonlySet<string> = new Set(AT_WORKER_STATES);

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

export interface DeadWorker {
  worker: WorkerView;
  /** When its heartbeats expired. */
  diedAt: number;
}

export interface LostTask {
  task: TaskView;
  worker: WorkerView;
  /** When its worker died; null when the worker restarted under it instead. */
  diedAt: number | null;
}

export interface WorkerDeath {
  /** By hostname, in the order of the workers given. */
  dead: ReadonlyMap<string, DeadWorker>;
  /**
   * Workers whose heartbeats have expired in the store, but which Crisper
   * has not listened long enough to call dead (see the top of this file).
   */
  unjudged: ReadonlySet<string>;
  lost: readonly LostTask[];
  /** Unacknowledged messages by task id; null when the broker could not say. */
  unacked: ReadonlyMap<string, UnackedView> | null;
}

/** What the analysis looks at. */
export interface DeathWatch {
  workers: readonly WorkerView[];
  unfinished: readonly TaskView[];
  unacked: readonly UnackedView[] | null;
  now: number;
  /**
   * When the event stream last (re)connected: heartbeats missed while
   * Crisper itself was cut off say nothing about the workers, so nothing is
   * declared dead until the stream has been up for a full heartbeat window.
   */
  streamUpSince: number | null;
}

/**
 * A worker that came back online after the task's last event is a new
 * process: the old one, which held this task, is gone — unless it shut down
 * cleanly in between (a warm shutdown finishes what it runs and hands
 * prefetched messages back to the queue).
 */
export function restartedUnder(w: WorkerView, t: TaskView): boolean {
  const cleanExit = w.offlineAt !== null && w.offlineAt >= t.lastEventAt;
  return w.onlineAt !== null && w.onlineAt > t.lastEventAt && !cleanExit;
}

export function analyseWorkerDeath({ workers, unfinished, unacked, now, streamUpSince }: DeathWatch, cfg: DetectConfig): WorkerDeath {
  const dead = new Map<string, DeadWorker>();
  const unjudged = new Set<string>();
  const lost: LostTask[] = [];
  const unackedById = new Map<string, UnackedView>();
  for (const u of unacked ?? []) if (u.taskId) unackedById.set(u.taskId, u);
  const byHost = new Map(workers.map((w) => [w.hostname, w]));
  for (const w of workers) {
    const died = deathTime(w, now, cfg);
    if (died === null) continue;
    // The stream must have been up long enough to have seen its heartbeats.
    const window = (w.freq ?? 2) * 2 + cfg.workerOfflineGraceS;
    if (streamUpSince !== null && now - streamUpSince >= window) dead.set(w.hostname, { worker: w, diedAt: died });
    else unjudged.add(w.hostname);
  }
  for (const t of unfinished) {
    if (!AT_WORKER.has(t.state) || !t.worker) continue;
    const w = byHost.get(t.worker);
    if (!w) continue;
    const died = dead.get(t.worker)?.diedAt ?? null;
    if (died === null && !restartedUnder(w, t)) continue;
    lost.push({ task: t, worker: w, diedAt: died });
  }
  return { dead, unjudged, lost, unacked: unacked ? unackedById : null };
}

/** worker_offline, task_lost and prefetched_stranded, as they hold now. */
export function detectWorkerDeath(
  workers: readonly WorkerView[],
  unfinished: readonly TaskView[],
  unacked: readonly UnackedView[] | null,
  now: number,
  streamUpSince: number | null,
  cfg: DetectConfig,
  visibilityTimeouts?: ReadonlyMap<string, number>,
): {
  workerOffline: AlertSpec[];
  taskLost: AlertSpec[];
  prefetchedStranded: AlertSpec[];
  /**
   * Subjects whose open alert stands as it is this pass: unjudged workers
   * (worker_offline, prefetched_stranded) and the tasks still at them
   * (task_lost; one that finished meanwhile is not lost).
   */
  unjudged: { workers: string[]; tasks: string[] };
} {
  const death = analyseWorkerDeath({ workers, unfinished, unacked, now, streamUpSince }, cfg);
  const tasks = unfinished.filter((t) => t.worker !== null && death.unjudged.has(t.worker) && AT_WORKER.has(t.state)).map((t) => t.id);
  return {
    workerOffline: workerOfflineAlerts(death),
    taskLost: taskLostAlerts(death),
    prefetchedStranded: prefetchedStrandedAlerts(death, cfg, visibilityTimeouts),
    unjudged: { workers: [...death.unjudged], tasks },
  };
}

export const checkWorkerDeath: Check = async (pass) => {
  const found = detectWorkerDeath(pass.workers, pass.unfinished, pass.unacked, pass.asOf, pass.streamUpSince, pass.config, pass.visibilityTimeouts);
  const { workers, tasks } = found.unjudged;
  await pass.sync("worker_offline", found.workerOffline, { leaveOpen: workers });
  await pass.sync("task_lost", found.taskLost, { leaveOpen: tasks });
  // RabbitMQ requeues a dead worker's prefetched messages at once: nothing is stranded.
  const stranded = pass.broker?.capabilities.strandsPrefetched === false ? [] : found.prefetchedStranded;
  await pass.sync("prefetched_stranded", stranded, { leaveOpen: workers });
};
