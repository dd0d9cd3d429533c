/**
 * The broker port: everything Crisper asks of a Celery broker. Redis is the
 * one adapter today (broker/redis/); RabbitMQ would be a second one. The
 * collector and the fronts know only this interface.
 */

/** One raw message from the event stream, before decoding. */
export interface RawMessage {
  /** Which stream it came from. */
  stream: "events" | "result-backend";
  channel: string;
  /**
   * The message as text, decoded from UTF-8 on arrival: a string holds
   * ASCII in one byte per character, while the Buffers a Redis client hands
   * out can pin much larger socket chunks for as long as they are buffered.
   */
  data: string;
  /** Collector's clock at arrival, unix seconds. */
  receivedAt: number;
}

/** What the subscription is doing; every drop becomes an event_gap. */
export type StreamStatus =
  | { state: "connected"; at: number }
  | { state: "disconnected"; at: number; reason: string };

export interface Subscription {
  close(): Promise<void>;
}

export interface QueueSample {
  name: string;
  /** Waiting messages, all priorities. */
  depth: number;
  /** Waiting messages per priority step ("0", "3", "6", "9"). */
  byPriority: Record<string, number>;
  /** Delivered to a worker, not yet acknowledged (prefetched or running). */
  unacked: number;
  /** Age of the oldest unacknowledged message of this queue, seconds; null if none. */
  oldestUnackedAgeS: number | null;
  /** Collector's clock, unix seconds. */
  sampledAt: number;
}

/** A message delivered to a worker and not yet acknowledged (Redis: the `unacked` hash). */
export interface UnackedMessage {
  deliveryTag: string;
  taskId: string | null;
  taskName: string | null;
  queue: string | null;
  /** When it was delivered, unix seconds. */
  deliveredAt: number | null;
  redelivered: boolean;
}

export interface ControlCallOptions {
  /** Node names to ask; all workers if omitted. */
  destination?: string[];
  /** How long to wait for replies, ms. */
  timeoutMs?: number;
  /** Stop waiting once this many replies arrived (e.g. destination.length). */
  limit?: number;
}

export interface BrokerPort {
  /** Subscribes to Celery's event stream (and, when configured, the result backend's publishes). */
  subscribe(onMessage: (m: RawMessage) => void, onStatus: (s: StreamStatus) => void): Promise<Subscription>;
  /** Queue depths by priority and unacked counts for the given and discovered queues. */
  sampleQueues(knownQueues?: readonly string[]): Promise<QueueSample[]>;
  /** Every delivered-but-unacknowledged message. */
  unacked(): Promise<UnackedMessage[]>;
  /** Fire-and-forget remote control (e.g. `enable_events`, `revoke`). */
  broadcast(method: string, args?: Record<string, unknown>, destination?: string[]): Promise<void>;
  /** Remote control with replies: `{ "<worker>": reply }`. */
  call(method: string, args?: Record<string, unknown>, opts?: ControlCallOptions): Promise<Record<string, unknown>>;
  /** Reads a stored result (`celery-task-meta-<id>`) from the result backend; null if absent or none configured. */
  getResult(taskId: string): Promise<string | null>;
  /** Throws if the broker cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
