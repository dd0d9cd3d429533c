/**
 * Store rows → the JSON shapes of CONTRACT.md (snake_case, ISO 8601 UTC),
 * typed by the API's schemas (schemas.ts). One place, so the API, pages and
 * Slack say the same thing.
 */
import type { Alert as AlertRow } from "../alerts/kinds.ts";
import type { ScheduleRow } from "../store/queries/detect.ts";
import { type Execution as ExecutionRecord, executionsFromStored } from "../state/executions.ts";
import type { QueueRow } from "../store/queries/queues.ts";
import type { EventRecord, Task as TaskRow } from "../store/queries/tasks.ts";
import { type WorkerRow, heldTasks, livenessOf } from "../store/queries/workers.ts";
import { mayEvict } from "../detect/checks/broker-health.ts";
import type { BrokerSampleRow } from "../store/queries/broker.ts";
import type { Alert, AuditEntry, BrokerHealth, Event, Execution, Queue, Schedule, Task, Worker, WorkerAnswer, WorkerConfig } from "./schemas.ts";
import type { AuditRow } from "../store/queries/audit.ts";
import type { WorkerConfigRow } from "../store/queries/worker-config.ts";

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);
const isoS = (s: number | null) => (s === null ? null : new Date(s * 1000).toISOString());

export function eventJson(e: EventRecord): Event {
  return {
    ...e.fields,
    type: e.type,
    hostname: e.hostname,
    timestamp: iso(e.timestamp),
    local_received: iso(e.localReceived),
    source: e.source,
  };
}

export function executionJson(x: ExecutionRecord): Execution {
  return {
    worker: x.worker,
    retries: x.retries,
    received_at: isoS(x.receivedAt),
    started_at: isoS(x.startedAt),
    finished_at: isoS(x.finishedAt),
    state: x.state,
  };
}

/** `alerts`: the task's own, on the one-task answers; lists leave them out. */
export function taskJson(t: TaskRow, events: readonly EventRecord[], alerts: Alert[] = []): Task {
  const runtime =
    t.runtime ?? (t.startedAt && t.finishedAt ? Math.max(0, (t.finishedAt.getTime() - t.startedAt.getTime()) / 1000) : null);
  return {
    id: t.id,
    name: t.name,
    state: t.state,
    worker: t.worker,
    queue: t.queue,
    routing_key: t.routingKey,
    args: t.args,
    kwargs: t.kwargs,
    result: t.result,
    exception: t.exception,
    traceback: t.traceback,
    retries: t.retries,
    root_id: t.rootId,
    parent_id: t.parentId,
    eta: t.eta,
    expires: t.expires,
    revoked_reason: t.state === "REVOKED" && t.expired ? "expired" : null,
    sent_at: iso(t.sentAt),
    received_at: iso(t.receivedAt),
    started_at: iso(t.startedAt),
    finished_at: iso(t.finishedAt),
    runtime_s: runtime,
    first_seen_at: iso(t.firstSeenAt),
    last_event_at: iso(t.lastEventAt),
    executions: executionsFromStored(events).map(executionJson),
    alerts,
    broker: t.broker,
  };
}

export function workerJson(w: WorkerRow, now: number): Worker {
  const live = livenessOf(w, now);
  return {
    hostname: w.hostname,
    status: live.status,
    offline_reason: live.reason,
    last_heartbeat_at: iso(w.lastHeartbeatAt),
    freq_s: w.freq,
    active: w.active,
    processed: w.processed,
    reserved: w.reserved,
    loadavg: w.loadavg,
    pid: w.pid,
    sw_ident: w.swIdent,
    sw_ver: w.swVer,
    sw_sys: w.swSys,
    online_since: iso(w.onlineAt),
    offline_at: live.status === "offline" ? (iso(w.offlineAt) ?? isoS(live.expiresAt)) : null,
    first_seen_at: iso(w.firstSeenAt),
    inspected_at: iso(w.inspectedAt),
    // What the worker said it holds at inspected_at (`reserved`: prefetched, not started).
    reserved_tasks: heldTasks(w.reservedTasks),
    active_tasks: heldTasks(w.activeTasks),
    broker: w.broker,
  };
}

export function queueJson(q: QueueRow): Queue {
  return {
    name: q.name,
    depth: q.depth,
    by_priority: q.byPriority,
    unacked: q.unacked,
    oldest_unacked_age_s: q.oldestUnackedAgeS,
    sampled_at: iso(q.sampledAt),
    broker: q.broker,
  };
}

export function alertJson(a: AlertRow): Alert {
  return {
    id: a.id,
    kind: a.kind,
    subject: a.subject,
    severity: a.severity,
    status: a.status,
    opened_at: a.openedAt.toISOString(),
    updated_at: a.updatedAt.toISOString(),
    resolved_at: iso(a.resolvedAt),
    summary: a.summary,
    details: a.details,
    broker: a.broker,
  };
}

export function scheduleJson(s: ScheduleRow): Schedule {
  return {
    name: s.name,
    task: s.task,
    expected_interval_s: s.expectedIntervalS,
    cron: s.cron,
    source: s.source,
    last_seen_at: iso(s.lastSeenAt),
    next_due_at: iso(s.nextDueAt),
    status: s.status,
    broker: s.broker,
  };
}

/** A worker's stored configuration reading, with its memory history: the API's `config`. */
export function workerConfigJson(row: WorkerConfigRow, memory: readonly { at: Date; maxrssKb: number }[]): WorkerConfig {
  return { ...row.config, read_at: row.readAt.toISOString(), memory: memory.map((m) => ({ at: m.at.toISOString(), maxrss_kb: m.maxrssKb })) };
}

/** One worker with its configuration and findings: `GET /api/workers/{hostname}` and the worker's page. */
export function workerAnswerJson(w: WorkerRow, config: WorkerConfigRow | null, memory: readonly { at: Date; maxrssKb: number }[], now: number): WorkerAnswer {
  return {
    ...workerJson(w, now),
    config: config ? workerConfigJson(config, memory) : null,
    config_findings: config?.findings ?? [],
    config_findings_at: iso(config?.findingsAt),
  };
}

/** A broker's latest health sample, with its recent history (oldest first). */
export function brokerJson(latest: BrokerSampleRow, history: readonly BrokerSampleRow[]): BrokerHealth {
  const max = latest.maxMemoryBytes;
  const used = latest.usedMemoryBytes;
  return {
    broker: latest.broker,
    kind: latest.kind === "rabbitmq" ? "rabbitmq" : "redis",
    version: latest.version,
    uptime_s: latest.uptimeS,
    used_memory_bytes: used,
    max_memory_bytes: max,
    memory_used_ratio: used !== null && max !== null && max > 0 ? used / max : null,
    max_memory_policy: latest.maxMemoryPolicy,
    eviction_possible: mayEvict(latest),
    connected_clients: latest.connectedClients,
    ops_per_second: latest.opsPerSecond,
    evicted_keys: latest.evictedKeys,
    memory_alarm: latest.memoryAlarm,
    disk_alarm: latest.diskAlarm,
    disk_free_bytes: latest.diskFreeBytes,
    sampled_at: latest.sampledAt.toISOString(),
    history: history.map((h) => ({
      at: h.sampledAt.toISOString(),
      used_memory_bytes: h.usedMemoryBytes,
      evicted_keys: h.evictedKeys,
      ops_per_second: h.opsPerSecond,
    })),
  };
}

export function auditJson(a: AuditRow): AuditEntry {
  return {
    id: a.id,
    at: a.at.toISOString(),
    actor: a.actor,
    action: a.action,
    target: a.target,
    outcome: a.outcome === "ok" || a.outcome === "refused" ? a.outcome : "failed",
    status: a.status,
    detail: a.detail,
    ip: a.ip,
  };
}
