/** The alert kinds of CONTRACT.md, with what their subject is and how loud they are. */
export const ALERT_KINDS = {
  worker_offline: { subject: "hostname", severity: "critical" },
  task_lost: { subject: "task id", severity: "critical" },
  task_stalled: { subject: "task id", severity: "warning" },
  duplicate_execution: { subject: "task id", severity: "warning" },
  visibility_timeout_risk: { subject: "task id", severity: "warning" },
  prefetched_stranded: { subject: "hostname", severity: "critical" },
  beat_missed: { subject: "schedule name", severity: "critical" },
  queue_backlog: { subject: "queue", severity: "warning" },
  event_gap: { subject: "collector", severity: "warning" },
  events_disabled: { subject: "hostname", severity: "warning" },
  config_risk: { subject: "hostname", severity: "warning" },
  broker_eviction_risk: { subject: "broker", severity: "warning" },
  broker_memory_high: { subject: "broker", severity: "warning" },
  tasks_expired: { subject: "task name", severity: "warning" },
} as const;

export type AlertKind = keyof typeof ALERT_KINDS;

export function isAlertKind(k: string): k is AlertKind {
  return Object.hasOwn(ALERT_KINDS, k);
}

/** What a detector says should be open right now. */
export interface AlertSpec {
  kind: AlertKind;
  subject: string;
  summary: string;
  details: Record<string, unknown>;
  /** Louder or quieter than the kind's own (ALERT_KINDS), while it holds: Redis evicting keys now is critical. */
  severity?: "critical" | "warning";
}

export interface Alert extends Omit<AlertSpec, "severity"> {
  id: number;
  /** The broker it is about ("default" when only BROKER_URL is set). */
  broker: string;
  severity: string;
  status: "open" | "resolved";
  openedAt: Date;
  updatedAt: Date;
  resolvedAt: Date | null;
}
