/**
 * The broker port: everything Crisper asks of a Celery broker, in Celery's
 * terms (events, queues, unacknowledged messages, remote control, results).
 * Each broker has an adapter under broker/<name>/ (Redis in broker/redis/,
 * RabbitMQ in broker/amqp/), and create.ts picks one by the URL's scheme.
 * The collector and the fronts know only this interface.
 */
import type { TaskMessage } from "../celery/task-message.ts";

/** One raw message from the event stream (or the result backend), before decoding. */
export interface RawMessage {
  /** Which source it came from: Celery's events, or the result backend's announcement of a result. */
  stream: "events" | "result-backend";
  /**
   * Where it was published, as the broker names it (for log lines, never
   * decoded): e.g. a Redis PUB/SUB channel, or an AMQP routing key.
   */
  channel: string;
  /**
   * The message as text, decoded from UTF-8 on arrival: a string holds
   * ASCII in one byte per character, while the Buffers a client library
   * hands out can pin much larger socket chunks for as long as they are
   * buffered.
   */
  data: string;
  /**
   * Set where the broker carries the content type beside the message (AMQP
   * properties): `data` is then the serialized body itself, with no kombu
   * envelope around it. Unset on Redis, where the envelope says it.
   */
  contentType?: string;
  /** Collector's clock at arrival, unix seconds. */
  receivedAt: number;
  /**
   * Called by the collector once it is done with the message: its batch is
   * committed to the database (or it was refused as unusable, or dropped,
   * counted, as a gap). Where the broker keeps a message until it is
   * acknowledged (RabbitMQ), the adapter acknowledges it only then, so a
   * collector that dies first gets it again (writes are idempotent).
   * Absent where there is nothing to acknowledge (Redis PUB/SUB).
   */
  settle?: () => void;
}

/**
 * What the event subscription is doing. Report every drop: the collector
 * records each one as an event_gap, since events published meanwhile may
 * be lost.
 */
export type StreamStatus =
  | { state: "connected"; at: number }
  | { state: "disconnected"; at: number; reason: string }
  /**
   * The stream stayed up but the broker dropped events before Crisper read
   * them (RabbitMQ: the event queue passed its size bound while nobody kept
   * up, and dropped its oldest): a gap from the first to the last dropped
   * event's time.
   */
  | { state: "overflowed"; at: number; from: number; to: number; dropped: number; reason: string; taskIds?: string[] };

export interface Subscription {
  close(): Promise<void>;
}

export interface QueueSample {
  name: string;
  /** Waiting messages, all priorities. */
  depth: number;
  /**
   * Waiting messages per priority, where the broker keeps them apart (kombu
   * on Redis: steps "0", "3", "6", "9"); empty where it counts them together
   * (a RabbitMQ priority queue's depth is all priorities).
   */
  byPriority: Record<string, number>;
  /** Consumers attached (RabbitMQ says; on Redis there is no such count). */
  consumers?: number;
  /**
   * Delivered to a worker, not yet acknowledged (prefetched or running).
   * RabbitMQ gives this count only through its management API: without
   * RABBITMQ_MANAGEMENT_URL it is 0 (see `capabilities.countsUnacked`).
   */
  unacked: number;
  /** Age of the oldest unacknowledged message of this queue, seconds; null if none. */
  oldestUnackedAgeS: number | null;
  /** Collector's clock, unix seconds. */
  sampledAt: number;
}

/** One consumer of a queue, as the broker sees it (RabbitMQ's management API). */
export interface QueueConsumer {
  queue: string;
  consumerTag: string;
  /** Its prefetch count (basic.qos); 0: unlimited; null if not said. */
  prefetch: number | null;
  /** Delivered on its channel and not yet acknowledged (a worker's queues share one channel); null if not said. */
  unacked: number | null;
  /** The channel, as RabbitMQ names it (`<peer> -> <node> (n)`). */
  channel: string;
  /** The consumer's address (host:port), which identifies the worker's connection. */
  peer: string | null;
}

/** A message delivered to a worker (prefetched or running) and not yet acknowledged. */
export interface UnackedMessage {
  /** The broker's id for this delivery. */
  deliveryTag: string;
  taskId: string | null;
  taskName: string | null;
  queue: string | null;
  /** When it was delivered, unix seconds. */
  deliveredAt: number | null;
  /** Delivered before and given back to its queue (a visibility timeout, a worker's connection closing). */
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

/** What requeueStranded did with each delivery tag it was given. */
export interface RequeueResult {
  /** Moved from `unacked` back onto their queues' lists. */
  requeued: { deliveryTag: string; taskId: string | null; queues: string[] }[];
  /** Left where they were, and why (acknowledged or restored meanwhile, no queue bound to its route). */
  skipped: { deliveryTag: string; reason: string }[];
}

/** What a broker lets a third party see, where brokers differ. */
export interface BrokerCapabilities {
  /**
   * Whether unacked() lists every delivered-but-unacknowledged message.
   * Redis keeps them where any client can read them; AMQP 0-9-1 shows a
   * delivery only to the consumer that holds it (RabbitMQ's management API
   * gives counts, not messages).
   */
  listsUnacked: boolean;
  /** Whether QueueSample.unacked is a real count (Redis; RabbitMQ with its management API). */
  countsUnacked: boolean;
  /**
   * Whether a dead worker's prefetched messages stay unacknowledged until a
   * timeout returns them (Redis: the visibility timeout) rather than going
   * back to their queue at once (RabbitMQ requeues them when the worker's
   * connection closes).
   */
  strandsPrefetched: boolean;
}

/**
 * The name of the broker Crisper watches while it watches one (BROKER_URL):
 * the subject of the broker's alerts and the key of its health samples.
 */
export { DEFAULT_BROKER } from "../store/schema/columns.ts";

/**
 * The broker server's own health at one moment: memory against its limit,
 * what it does when full, clients and throughput. Fields a broker does not
 * report (or that could not be read) are null.
 */
export interface BrokerHealth {
  kind: "redis" | "rabbitmq";
  /** Server version (Redis `redis_version`, RabbitMQ's). */
  version: string | null;
  uptimeS: number | null;
  usedMemoryBytes: number | null;
  /**
   * The memory limit: Redis `maxmemory` (null when 0, no limit), RabbitMQ's
   * memory high watermark (`mem_limit`), past which it blocks publishers.
   */
  maxMemoryBytes: number | null;
  /**
   * Redis `maxmemory-policy`: what Redis does at maxmemory. Anything but
   * `noeviction` may evict Celery's queues, its `unacked` hash and results.
   */
  maxMemoryPolicy: string | null;
  connectedClients: number | null;
  /** Redis `instantaneous_ops_per_sec`; RabbitMQ: messages published per second. */
  opsPerSecond: number | null;
  /** Redis `evicted_keys`: keys evicted since the server started. */
  evictedKeys: number | null;
  /** RabbitMQ's memory and disk alarms (publishers blocked); null on Redis. */
  memoryAlarm: boolean | null;
  diskAlarm: boolean | null;
  diskFreeBytes: number | null;
  /** Collector's clock, unix seconds. */
  sampledAt: number;
}

export interface BrokerPort {
  readonly capabilities: BrokerCapabilities;
  /**
   * Subscribes to Celery's event stream and, when a result backend is
   * configured, to its announcements of stored results. Resolves once
   * subscribed, or after a short wait while the broker is unreachable (the
   * adapter keeps retrying and reports through `onStatus`).
   */
  subscribe(onMessage: (m: RawMessage) => void, onStatus: (s: StreamStatus) => void): Promise<Subscription>;
  /** Queue depths by priority and unacked counts for the given and discovered queues. */
  sampleQueues(knownQueues?: readonly string[]): Promise<QueueSample[]>;
  /**
   * Every delivered-but-unacknowledged message. Where the broker cannot
   * show them (`capabilities.listsUnacked` false: RabbitMQ), what the live
   * workers say they hold unacknowledged (`active`, `reserved`): a dead
   * worker's deliveries are requeued there at once, so that is all of them
   * but those of workers too busy to answer.
   */
  unacked(): Promise<UnackedMessage[]>;
  /** Fire-and-forget remote control (e.g. `enable_events`, `revoke`) over Celery's pidbox mailbox. */
  broadcast(method: string, args?: Record<string, unknown>, destination?: string[]): Promise<void>;
  /** Remote control with replies: `{ "<worker>": reply }`. */
  call(method: string, args?: Record<string, unknown>, opts?: ControlCallOptions): Promise<Record<string, unknown>>;
  /** A task's stored result, as the result backend keeps it (JSON meta); null if absent or no result backend is configured. */
  getResult(taskId: string): Promise<string | null>;
  /** Throws if the broker cannot be reached. */
  ping(): Promise<void>;
  /**
   * The server's health (memory, eviction policy, clients), where the
   * adapter can read it: Redis's INFO; RabbitMQ's management API, when
   * RABBITMQ_MANAGEMENT_URL is set. Absent where it cannot; throws if the
   * broker does not answer.
   */
  health?(): Promise<BrokerHealth>;
  /**
   * Control actions (src/api/actions/), where the broker has them:
   * - requeueStranded: puts these unacknowledged deliveries (a dead worker's)
   *   back onto their queues at once, as the broker would after its timeout
   *   (Redis: kombu's `restore_visible`); absent where nothing is stranded
   *   (`capabilities.strandsPrefetched` false: RabbitMQ);
   * - publishTask: sends a task message as Celery's producer does;
   * - purgeQueue: deletes a queue's waiting messages (all priorities); returns how many.
   */
  requeueStranded?(deliveryTags: readonly string[]): Promise<RequeueResult>;
  publishTask?(message: TaskMessage): Promise<void>;
  purgeQueue?(queue: string): Promise<number>;
  /**
   * Whether the events published while no Crisper was subscribed waited
   * for it (RabbitMQ: the event queue already existed when this process
   * subscribed), so that Crisper's own downtime is no gap. Absent, or false,
   * where they are lost (Redis PUB/SUB).
   */
  keptEventsWhileAway?(): boolean;
  /**
   * Who consumes each queue, with each consumer's prefetch and unacknowledged
   * deliveries (RabbitMQ with its management API). Absent where the broker
   * cannot say (Redis has no consumers to list; RabbitMQ without
   * RABBITMQ_MANAGEMENT_URL).
   */
  consumers?(): Promise<QueueConsumer[]>;
  close(): Promise<void>;
}
