/**
 * The detection loop: every few seconds, read what the store and the broker
 * say, run the detectors (rules.ts, schedules.ts), and make the alerts match.
 * It runs next to the collector, which feeds it the events it commits
 * (`observe`), so duplicate starts and arrivals are seen as they happen.
 */
import type { BrokerPort, UnackedMessage } from "../broker/port.ts";
import type { CeleryEvent } from "../celery/event.ts";
import { decodeResultMeta } from "../celery/result-meta.ts";
import { READY_STATES } from "../celery/states.ts";
import type { AlertChanges } from "../alerts/store.ts";
import { openAlerts, resolveAlert, subjectsWithAlert, syncAlerts } from "../alerts/store.ts";
import type { AlertKind, AlertSpec } from "../alerts/kinds.ts";
import type { StreamGap } from "../collector/collector.ts";
import { buildBatch } from "../collector/batch.ts";
import type { Logger } from "../log.ts";
import { duplicateRuns, executionsFromStored } from "../state/executions.ts";
import type { Database } from "../store/database.ts";
import {
  listSchedules,
  queueDepthHistory,
  recentRuntimes,
  recordInspection,
  startedMoreThanOnce,
  taskNames,
  taskStates,
  unfinishedSince,
  unfinishedTasks,
  upsertSchedule,
} from "../store/queries/detect.ts";
import { getTaskEvents } from "../store/queries/tasks.ts";
import { heldTasks, listWorkers } from "../store/queries/workers.ts";
import { writeBatch } from "../store/writes.ts";
import {
  type ActivityView,
  type DetectConfig,
  deathTime,
  detectBacklog,
  detectEventsDisabled,
  detectStalled,
  detectVisibilityRisk,
  detectWorkerDeath,
  type WorkerView,
} from "./rules.ts";
import { detectBeatMissed, learnInterval, type Schedule, scheduleStatus } from "./schedules.ts";

export interface EngineOptions {
  database: Database;
  broker: BrokerPort | null;
  config: DetectConfig & {
    intervalS: number;
    inspectIntervalS: number;
    declaredSchedules: Schedule[];
    /** Whether RESULT_BACKEND_URL is set (reconciliation reads it). */
    resultBackend: boolean;
  };
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

const MAX_ARRIVALS_PER_NAME = 20;
const MAX_TRACKED_NAMES = 2000;
const MAX_TRACKED_HOSTS = 2000;
/** Task ids awaiting the duplicate check; a pass drains them all. */
const MAX_PENDING_STARTS = 200_000;
const RAN_TYPES = new Set(["task-started", "task-succeeded", "task-failed", "task-retried"]);

export function createDetector(o: EngineOptions) {
  const { database, broker, config, log } = o;
  const clock = o.now ?? (() => Date.now() / 1000);
  /** Task ids a worker was just seen running: checked for duplicate executions on the next pass. */
  const startedIds = new Set<string>();
  /** Arrival times per task name (task-sent, or task-received where producers send none). */
  const arrivals = new Map<string, number[]>();
  const namesWithSent = new Set<string>();
  const lastTaskEventAt = new Map<string, number>();
  const activity = new Map<string, { processedFrom: number; watchedSince: number }>();
  const reconciled = new Set<number>();
  let timer: ReturnType<typeof setInterval> | null = null;
  let running: Promise<void> | null = null;
  let lastInspection = 0;
  let failing = false;

  function observe(events: readonly CeleryEvent[]) {
    for (const e of events) {
      if (!e.uuid) continue;
      if (e.source === "events" && e.hostname && e.type !== "task-sent") {
        if (lastTaskEventAt.size < MAX_TRACKED_HOSTS || lastTaskEventAt.has(e.hostname)) lastTaskEventAt.set(e.hostname, e.localReceived);
      }
      // Any sign that a worker ran it: a second run may show only some of these.
      if (RAN_TYPES.has(e.type) && e.hostname && startedIds.size < MAX_PENDING_STARTS) startedIds.add(e.uuid);
      const name = typeof e.fields.name === "string" ? e.fields.name : null;
      if (!name) continue;
      // One arrival per sent task: task-sent if producers send it, else the
      // first delivery (retries are not new arrivals).
      const isSent = e.type === "task-sent";
      if (isSent && namesWithSent.size < MAX_TRACKED_NAMES) namesWithSent.add(name);
      const firstDelivery = e.type === "task-received" && !namesWithSent.has(name) && (e.fields.retries ?? 0) === 0;
      if (!(isSent && (e.fields.retries ?? 0) === 0) && !firstDelivery) continue;
      if (e.fields.parent_id) continue; // a subtask, sent by another task, is not Beat's
      let list = arrivals.get(name);
      if (!list) {
        if (arrivals.size >= MAX_TRACKED_NAMES) continue;
        list = [];
        arrivals.set(name, list);
      }
      list.push(e.localReceived);
      if (list.length > MAX_ARRIVALS_PER_NAME) list.shift();
    }
  }

  async function sync(kind: AlertKind, holding: AlertSpec[], now: number, opts?: Parameters<typeof syncAlerts>[4]) {
    const changes = await syncAlerts(database, kind, holding, new Date(now * 1000), opts);
    for (const a of changes.opened) log.warn(`alert opened: ${a.kind} ${a.subject}: ${a.summary}`);
    for (const a of changes.resolved) log.info(`alert resolved: ${a.kind} ${a.subject}`);
    if (changes.opened.length || changes.updated.length || changes.resolved.length) o.onChanges?.(changes);
  }

  async function inspectWorkers(now: number) {
    if (!broker || now - lastInspection < config.inspectIntervalS) return;
    lastInspection = now;
    try {
      const [reserved, active] = await Promise.all([
        broker.call("reserved", {}, { timeoutMs: 1000 }),
        broker.call("active", {}, { timeoutMs: 1000 }),
      ]);
      for (const host of new Set([...Object.keys(reserved), ...Object.keys(active)])) {
        const r = Array.isArray(reserved[host]) ? (reserved[host] as unknown[]) : [];
        const a = Array.isArray(active[host]) ? (active[host] as unknown[]) : [];
        await recordInspection(database, host.slice(0, 255), r, a, new Date(now * 1000));
      }
    } catch (e) {
      log.once("inspect", `could not ask workers what they hold: ${(e as Error).message}`);
    }
  }

  async function checkDuplicates(now: number) {
    const found: AlertSpec[] = [];
    // Only tasks started more than once are worth reading in full.
    const ids: string[] = [];
    while (startedIds.size > 0) {
      const chunk = [...startedIds].slice(0, 5000);
      for (const id of chunk) startedIds.delete(id);
      ids.push(...(await startedMoreThanOnce(database, chunk)));
    }
    if (ids.length) {
      const events = await getTaskEvents(database, ids.slice(0, 500));
      const byTask = Map.groupBy(events, (e) => e.taskId);
      for (const [id, list] of byTask) {
        const dup = duplicateRuns(executionsFromStored(list));
        if (!dup) continue;
        const name = list.find((e) => typeof e.fields.name === "string")?.fields.name as string | undefined;
        const iso = (t: number | null) => (t ? new Date(t * 1000).toISOString() : null);
        found.push({
          kind: "duplicate_execution",
          subject: id,
          summary: `${name ?? "task"} ${id} ran ${dup.runs.length} times at retry ${dup.retries ?? "?"}: on ${dup.runs.map((x) => x.worker).join(" and ")}. Anything it does that is not idempotent happened twice.`,
          details: {
            task_id: id,
            name: name ?? null,
            retries: dup.retries,
            workers: dup.runs.map((x) => x.worker),
            executions: dup.runs.map((x) => ({ worker: x.worker, started_at: iso(x.startedAt), finished_at: iso(x.finishedAt), state: x.state })),
          },
        });
      }
    }
    // Opened when seen; resolved once the task has finished (every run ended).
    // A duplicate is a fact about a task that happened once: later events of
    // the same task must not open it again.
    const known = await subjectsWithAlert(database, "duplicate_execution", found.map((f) => f.subject));
    const fresh = found.filter((f) => !known.has(f.subject));
    const stillOpen = (await openAlerts(database, "duplicate_execution")).map((a) => a.subject);
    await sync("duplicate_execution", [...fresh, ...found.filter((f) => stillOpen.includes(f.subject))], now, { resolveMissing: false });
    const open = await openAlerts(database, "duplicate_execution");
    const states = await taskStates(database, open.map((a) => a.subject));
    for (const a of open) {
      const state = states.get(a.subject);
      if (state && READY_STATES.has(state as never)) {
        const r = await resolveAlert(database, a.id, new Date(now * 1000));
        if (r) o.onChanges?.({ opened: [], updated: [], resolved: [r] });
      }
    }
  }

  async function checkSchedules(now: number) {
    const stored = new Map((await listSchedules(database)).map((s) => [s.name, s]));
    const schedules: Schedule[] = [];
    // Declared: in configuration, and through the API (stored; configuration wins a name).
    const configured = new Set(config.declaredSchedules.map((d) => d.name));
    const declared: Schedule[] = [
      ...config.declaredSchedules,
      ...[...stored.values()]
        .filter((r) => r.source === "api" && !configured.has(r.name))
        .map((r) => ({ name: r.name, task: r.task, expectedIntervalS: r.expectedIntervalS, cron: r.cron, source: "api" as const, lastSeenAt: null })),
    ];
    for (const d of declared) {
      const prev = stored.get(d.name);
      const seen = arrivals.get(d.task)?.at(-1) ?? null;
      schedules.push({ ...d, lastSeenAt: Math.max(seen ?? 0, prev?.lastSeenAt ? prev.lastSeenAt.getTime() / 1000 : 0) || null });
    }
    const declaredTasks = new Set(declared.map((d) => d.task));
    for (const [name, times] of arrivals) {
      if (declaredTasks.has(name)) continue;
      const interval = learnInterval(times);
      const prev = stored.get(name);
      if (interval === null && !prev) continue;
      schedules.push({
        name,
        task: name,
        expectedIntervalS: interval ?? (prev?.expectedIntervalS as number),
        source: "learned",
        lastSeenAt: Math.max(times.at(-1) ?? 0, prev?.lastSeenAt ? prev.lastSeenAt.getTime() / 1000 : 0) || null,
      });
    }
    // Learned schedules from before a restart keep being watched.
    for (const [name, row] of stored) {
      if (schedules.some((s) => s.name === name) || row.expectedIntervalS === null) continue;
      if (row.source !== "learned") continue; // no longer configured, or deleted
      schedules.push({
        name,
        task: row.task,
        expectedIntervalS: row.expectedIntervalS,
        source: "learned",
        lastSeenAt: row.lastSeenAt ? row.lastSeenAt.getTime() / 1000 : null,
      });
    }
    const ms = (d: Date | null) => (d ? d.getTime() : null);
    for (const s of schedules) {
      const { status, nextDueAt } = scheduleStatus(s, now, config.beatTolerance);
      const prev = stored.get(s.name);
      // Written only when something a reader sees changed, not every pass.
      if (
        prev &&
        prev.status === status &&
        prev.expectedIntervalS === s.expectedIntervalS &&
        prev.cron === (s.cron ?? null) &&
        prev.source === s.source &&
        ms(prev.lastSeenAt) === ms(s.lastSeenAt ? new Date(s.lastSeenAt * 1000) : null) &&
        ms(prev.nextDueAt) === ms(nextDueAt ? new Date(nextDueAt * 1000) : null)
      ) {
        continue;
      }
      await upsertSchedule(database, {
        name: s.name,
        task: s.task,
        expectedIntervalS: s.expectedIntervalS,
        cron: s.cron ?? null,
        source: s.source,
        lastSeenAt: s.lastSeenAt ? new Date(s.lastSeenAt * 1000) : null,
        nextDueAt: nextDueAt ? new Date(nextDueAt * 1000) : null,
        status,
        updatedAt: new Date(now * 1000),
      });
    }
    await sync("beat_missed", detectBeatMissed(schedules, now, config.beatTolerance), now);
  }

  /**
   * event_gap: open while the stream is down; once it is back, read the
   * final state of every task left unfinished from the result backend, and
   * resolve with what was recovered.
   */
  async function checkGaps(now: number) {
    const gaps = o.gaps();
    const open = await openAlerts(database, "event_gap");
    const current = gaps.at(-1);
    if (current && current.to === null) {
      await sync(
        "event_gap",
        [
          {
            kind: "event_gap",
            subject: "collector",
            summary: `The event stream is interrupted since ${new Date(current.from * 1000).toISOString()} (${current.reason}): events published meanwhile are lost; Crisper will reconcile when it is back.`,
            details: { from: new Date(current.from * 1000).toISOString(), to: null, reason: current.reason },
          },
        ],
        now,
        { resolveMissing: false },
      );
      return;
    }
    const closed = gaps.filter((g) => g.to !== null && !reconciled.has(g.from));
    if (closed.length === 0) return;
    for (const gap of closed) {
      reconciled.add(gap.from);
      const result = await reconcile(gap);
      const details = {
        from: new Date(gap.from * 1000).toISOString(),
        to: new Date((gap.to as number) * 1000).toISOString(),
        duration_s: Math.round(((gap.to as number) - gap.from) * 10) / 10,
        reason: gap.reason,
        ...result,
      };
      const summary = `The event stream was interrupted for ${details.duration_s} s (${gap.reason}). ${result.note}`;
      const existing = open.find((a) => a.subject === "collector");
      if (existing) {
        const r = await resolveAlert(database, existing.id, new Date(now * 1000), details);
        if (r) o.onChanges?.({ opened: [], updated: [], resolved: [{ ...r, summary }] });
      } else {
        // A gap that came and went between two passes: record it, resolved.
        await sync("event_gap", [{ kind: "event_gap", subject: "collector", summary, details }], now, { resolveMissing: false });
        const [a] = await openAlerts(database, "event_gap");
        if (a) await resolveAlert(database, a.id, new Date(now * 1000), details);
      }
    }
  }

  async function reconcile(gap: StreamGap): Promise<{ checked: number; recovered: number; recovered_tasks: string[]; note: string }> {
    // Tasks active shortly before the gap, or during it, may have finished unseen.
    const ids = await unfinishedSince(database, new Date((gap.from - 3600) * 1000));
    if (!broker || !config.resultBackend) {
      return { checked: ids.length, recovered: 0, recovered_tasks: [], note: `${ids.length} unfinished tasks could not be checked: set RESULT_BACKEND_URL to recover their final states.` };
    }
    const recovered: string[] = [];
    const events: CeleryEvent[] = [];
    for (const id of ids) {
      const raw = await broker.getResult(id).catch(() => null);
      if (!raw) continue;
      const d = decodeResultMeta(raw, clock());
      for (const e of d.events) if (e.type !== "task-started") events.push(e);
      if (d.events.some((e) => e.type !== "task-started")) recovered.push(id);
    }
    if (events.length) await writeBatch(database, buildBatch(events));
    lastInspection = 0; // and ask the workers what they hold now
    return {
      checked: ids.length,
      recovered: recovered.length,
      recovered_tasks: recovered.slice(0, 50),
      note: `Reconciled: ${recovered.length} of ${ids.length} unfinished tasks had a final state in the result backend.`,
    };
  }

  async function runOnce(now = clock()) {
    await inspectWorkers(now);
    const workerRows = await listWorkers(database);
    const toS = (d: Date | null) => (d ? d.getTime() / 1000 : null);
    const workers: WorkerView[] = workerRows.map((w) => ({
      hostname: w.hostname,
      freq: w.freq,
      lastHeartbeatAt: toS(w.lastHeartbeatAt),
      onlineAt: toS(w.onlineAt),
      offlineAt: toS(w.offlineAt),
      processed: w.processed,
      reservedTaskIds: heldTasks(w.reservedTasks).map((t) => t.id),
    }));
    const unfinished = await unfinishedTasks(database);
    let unacked: UnackedMessage[] | null = null;
    if (broker) unacked = await broker.unacked().catch(() => null);

    // The store is true only up to the oldest event not yet written: judge
    // heartbeats as of then, or a collector that falls behind under load
    // would see every worker die.
    const asOf = Math.min(now, o.uncommittedSince?.() ?? now);
    const death = detectWorkerDeath(workers, unfinished, unacked, asOf, o.streamUpSince(), config);
    await sync("worker_offline", death.workerOffline, now);
    await sync("task_lost", death.taskLost, now);
    await sync("prefetched_stranded", death.prefetchedStranded, now);

    const dead = new Set(workers.filter((w) => deathTime(w, asOf, config) !== null).map((w) => w.hostname));
    const longNames = new Set(
      unfinished.filter((t) => t.state === "STARTED" && now - (t.startedAt ?? t.lastEventAt) >= config.taskStallMinS && t.name).map((t) => t.name as string),
    );
    const p99 = new Map<string, number>();
    for (const name of [...longNames].slice(0, 100)) {
      const r = (await recentRuntimes(database, name)).sort((a, b) => a - b);
      if (r.length >= 20) p99.set(name, r[Math.min(r.length - 1, Math.floor(r.length * 0.99))] as number);
    }
    await sync("task_stalled", detectStalled(unfinished, p99, dead, asOf, config), now);

    if (unacked) {
      const risky = unacked.filter((u) => u.taskId && u.deliveredAt !== null && now - u.deliveredAt >= config.visibilityTimeoutS * config.visibilityRiskRatio);
      const names = await taskNames(database, risky.map((u) => u.taskId as string).slice(0, 1000));
      await sync("visibility_timeout_risk", detectVisibilityRisk(risky, names, now, config), now);
    }

    await checkDuplicates(now);
    await checkSchedules(now);
    await sync("queue_backlog", detectBacklog(await queueDepthHistory(database, new Date((now - config.queueBacklogWindowS) * 1000)), now, config), now);

    // events_disabled: watch each live worker's `processed` over time.
    const views: ActivityView[] = [];
    for (const w of workers) {
      if (w.processed === null || dead.has(w.hostname) || w.lastHeartbeatAt === null || now - w.lastHeartbeatAt > (w.freq ?? 2) * 2) {
        activity.delete(w.hostname);
        continue;
      }
      let a = activity.get(w.hostname);
      const seen = lastTaskEventAt.get(w.hostname) ?? null;
      // Restart the window whenever task events are seen: the worker is fine.
      if (!a || w.processed < a.processedFrom || (seen !== null && seen > a.watchedSince)) {
        a = { processedFrom: w.processed, watchedSince: now };
        if (activity.size < MAX_TRACKED_HOSTS) activity.set(w.hostname, a);
      }
      views.push({ hostname: w.hostname, processedFrom: a.processedFrom, processedTo: w.processed, watchedSince: a.watchedSince, lastTaskEventAt: seen });
    }
    await sync("events_disabled", detectEventsDisabled(views, now, config), now);
    await checkGaps(now);
  }

  async function tick() {
    if (running) return;
    running = runOnce()
      .then(() => {
        if (failing) log.info("detection works again");
        failing = false;
      })
      .catch((e) => {
        if (!failing) log.warn(`detection pass failed: ${(e as Error).message}; retrying every ${config.intervalS} s`);
        failing = true;
      })
      .finally(() => {
        running = null;
      });
    await running;
  }

  return {
    observe,
    runOnce,
    start() {
      timer = setInterval(tick, config.intervalS * 1000);
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = null;
      await running;
    },
  };
}

export type Detector = ReturnType<typeof createDetector>;
