/**
 * A Celery event as the collector understands it, after decoding and bounding.
 * Field names are Celery's own (celery-wire.md); `fields` keeps the rest.
 */
export interface CeleryEvent {
  /** Celery's event type: `task-sent`, `task-received`, …, `worker-heartbeat`. */
  type: string;
  /** Who sent it: a worker's node name, or the producer's `gen<pid>@host`. */
  hostname: string;
  /** Sender's clock, unix seconds. Clocks drift between hosts. */
  timestamp: number;
  /** The collector's clock when it arrived, unix seconds (Celery's `local_received`). */
  localReceived: number;
  /** The task id, for task events. */
  uuid?: string;
  /** Where the collector learned it: the event stream, or the result backend's publish. */
  source: EventSource;
  /** The event's other fields, strings bounded in size. */
  fields: Record<string, unknown>;
}

export type EventSource = "events" | "result-backend";

/** Why a message or event could not be used. Counted and logged once per reason. */
export type DecodeReason =
  | "too_large"
  | "not_json"
  | "not_envelope"
  | "unsupported_serializer"
  | "bad_base64"
  | "bad_body_json"
  | "not_an_event"
  | "unknown_event_type"
  | "missing_fields";

export interface DecodeError {
  reason: DecodeReason;
  /** One line, for the log: what was wrong, with no attacker-sized payload. */
  detail: string;
}

export interface Decoded {
  events: CeleryEvent[];
  errors: DecodeError[];
}
