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
  /**
   * The event's other fields, bounded in size (celery/bounds.ts), every string
   * storable, built without a prototype so a `__proto__` key is just a key.
   */
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
  | "missing_fields"
  /** The decoder threw: a bug, but it costs that one message, not the collector. */
  | "decoder_error";

export interface DecodeError {
  reason: DecodeReason;
  /** One line, for the log: what was wrong, with no attacker-sized payload. */
  detail: string;
  /** How many events or messages it stands for; 1 when absent. */
  count?: number;
}

/**
 * A field taken out of an event that was kept, because the store could not
 * hold it as Celery means it: a timestamp from 1970 or next year, a pid of
 * 1e20. Counted in crisper_event_fields_dropped_total{field, reason}.
 */
export interface FieldDrop {
  /** One of a fixed set of Celery field names (a metric label: never taken from the wire). */
  field: "timestamp" | "date_done" | "retries" | "pid" | "active" | "processed";
  reason: "out_of_range" | "not_an_integer";
  detail: string;
}

export interface Decoded {
  events: CeleryEvent[];
  errors: DecodeError[];
  dropped: FieldDrop[];
}
