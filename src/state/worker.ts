/**
 * Where a worker's liveness is decided, by Celery's own rule
 * (celery/events/state.py): a worker is alive while
 *   now < last_heartbeat + freq * HEARTBEAT_EXPIRE_WINDOW / 100
 * where last_heartbeat is when the *collector* received its latest sign of
 * life (a heartbeat, or a task event from it), not the sender's timestamp.
 * A `worker-offline` event is a clean shutdown; heartbeats that just stop are
 * a worker that died.
 */
import { foldPatches } from "./fold.ts";
import type { CeleryEvent } from "../celery/event.ts";

export const HEARTBEAT_EXPIRE_WINDOW = 200;
/** Celery's default `worker_heartbeat` (event `freq`). */
export const DEFAULT_FREQ_S = 2;

export interface WorkerPatch {
  hostname: string;
  /** Collector's clock at the latest sign of life; null if only a clean shutdown was seen. */
  lastHeartbeatAt: number | null;
  /** Fields of the latest worker event (by sender timestamp). */
  statsAt: number | null;
  freq: number | null;
  active: number | null;
  processed: number | null;
  loadavg: number[] | null;
  pid: number | null;
  swIdent: string | null;
  swVer: string | null;
  swSys: string | null;
  /** Collector's clock when the latest worker-online arrived. */
  onlineAt: number | null;
  /** Collector's clock when the latest worker-offline (clean shutdown) arrived. */
  offlineAt: number | null;
}

export function emptyWorkerPatch(hostname: string): WorkerPatch {
  return {
    hostname,
    lastHeartbeatAt: null,
    statsAt: null,
    freq: null,
    active: null,
    processed: null,
    loadavg: null,
    pid: null,
    swIdent: null,
    swVer: null,
    swSys: null,
    onlineAt: null,
    offlineAt: null,
  };
}

const numOrNull = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : null);
const strOrNull = (v: unknown) => (typeof v === "string" ? v : null);

/**
 * What one event says about the worker that sent it. Task events count as
 * signs of life; `task-sent` comes from a producer, not a worker, and the
 * result backend's copies come from nobody in particular.
 */
export function workerPatchFromEvent(e: CeleryEvent): WorkerPatch | null {
  if (e.source !== "events" || e.type === "task-sent" || !e.hostname) return null;
  const p = emptyWorkerPatch(e.hostname);
  if (e.type.startsWith("task-")) {
    p.lastHeartbeatAt = e.localReceived;
    return p;
  }
  const f = e.fields;
  p.statsAt = e.timestamp;
  p.freq = numOrNull(f.freq);
  p.active = numOrNull(f.active);
  p.processed = numOrNull(f.processed);
  p.loadavg = Array.isArray(f.loadavg) ? f.loadavg.filter((x): x is number => typeof x === "number").slice(0, 3) : null;
  p.pid = numOrNull(f.pid);
  p.swIdent = strOrNull(f.sw_ident);
  p.swVer = strOrNull(f.sw_ver);
  p.swSys = strOrNull(f.sw_sys);
  if (e.type === "worker-offline") p.offlineAt = e.localReceived;
  else p.lastHeartbeatAt = e.localReceived;
  if (e.type === "worker-online") p.onlineAt = e.localReceived;
  return p;
}

const maxN = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.max(a, b));

/** Joins two patches of one worker (same rules as the SQL upsert in store/writes.ts). */
export function mergeWorkerPatch(a: WorkerPatch, b: WorkerPatch): WorkerPatch {
  const newer = (b.statsAt ?? -1) > (a.statsAt ?? -1) ? b : a;
  const older = newer === a ? b : a;
  return {
    hostname: a.hostname,
    lastHeartbeatAt: maxN(a.lastHeartbeatAt, b.lastHeartbeatAt),
    statsAt: newer.statsAt,
    freq: newer.freq ?? older.freq,
    active: newer.active ?? older.active,
    processed: newer.processed ?? older.processed,
    loadavg: newer.loadavg ?? older.loadavg,
    pid: newer.pid ?? older.pid,
    swIdent: newer.swIdent ?? older.swIdent,
    swVer: newer.swVer ?? older.swVer,
    swSys: newer.swSys ?? older.swSys,
    onlineAt: maxN(a.onlineAt, b.onlineAt),
    offlineAt: maxN(a.offlineAt, b.offlineAt),
  };
}

/** Folds a batch of events into one patch per worker. */
export function workerPatchesFromEvents(events: Iterable<CeleryEvent>): Map<string, WorkerPatch> {
  return foldPatches(events, workerPatchFromEvent, (p) => p.hostname, mergeWorkerPatch);
}

export type WorkerStatus = "online" | "offline";
export type OfflineReason = "shutdown" | "heartbeat_lost";

/**
 * Online or offline at `now` (collector's clock, unix s). A clean shutdown
 * counts only if no sign of life came after it (a restarted worker keeps its name).
 */
export function workerLiveness(
  w: Pick<WorkerPatch, "lastHeartbeatAt" | "offlineAt" | "freq">,
  now: number,
): { status: WorkerStatus; reason: OfflineReason | null; expiresAt: number | null } {
  const freq = w.freq && w.freq > 0 ? w.freq : DEFAULT_FREQ_S;
  if (w.offlineAt !== null && (w.lastHeartbeatAt === null || w.offlineAt >= w.lastHeartbeatAt)) {
    return { status: "offline", reason: "shutdown", expiresAt: null };
  }
  if (w.lastHeartbeatAt === null) return { status: "offline", reason: "heartbeat_lost", expiresAt: null };
  const expiresAt = w.lastHeartbeatAt + (freq * HEARTBEAT_EXPIRE_WINDOW) / 100;
  return now < expiresAt
    ? { status: "online", reason: null, expiresAt }
    : { status: "offline", reason: "heartbeat_lost", expiresAt };
}
