/**
 * The RabbitMQ broker adapter (AMQP 0-9-1, amqplib): the broker port
 * assembled from its parts, each in a file of its own (wire facts in
 * celery-wire.md, "RabbitMQ"):
 * - events.ts: the event stream, from a queue of Crisper's own, acknowledged
 *   after commit; the result backend's publishes (a Redis result backend);
 * - queues.ts: depths and consumers (passive queue.declare);
 * - management.ts: unacked counts and every queue, and the node's memory
 *   and alarms, from the optional management API;
 * - pidbox.ts: remote control, with replies;
 * - unacked.ts: unacknowledged messages, as the live workers report them;
 * - connection.ts: the connections and their outages;
 * - url.ts: kombu's reading of an amqp:// URL;
 * - actions.ts: publish a task, purge a queue.
 */
import type { Logger } from "../../log.ts";
import type { BrokerPort } from "../port.ts";
import type { BrokerReachability } from "../reachability.ts";
import { redisResultBackend } from "../redis/result-backend.ts";
import { amqpActions } from "./actions.ts";
import { amqpConnection } from "./connection.ts";
import { amqpStreams, type EventQueueSettings } from "./events.ts";
import { managementApi } from "./management.ts";
import { amqpPidbox } from "./pidbox.ts";
import { rabbitQueues } from "./queues.ts";
import { workersUnacked } from "./unacked.ts";
import { parseAmqpUrl } from "./url.ts";

export interface AmqpBrokerOptions {
  brokerUrl: string;
  /** Celery's Redis result backend (redis://), if any: `rpc://` results cannot be read by a third party. */
  resultBackendUrl?: string;
  /** EVENT_QUEUE: Crisper's own event queue. */
  eventQueue?: string;
  /** EVENT_QUEUE_EXPIRES_S. */
  eventQueueExpiresS?: number;
  /** EVENT_QUEUE_MAX_BYTES. */
  eventQueueMaxBytes?: number;
  /** RABBITMQ_MANAGEMENT_URL. */
  managementUrl?: string;
  log: Logger;
  /** Told of every connection error and reconnect (src/processes.ts makes one per process). */
  reachability?: BrokerReachability;
}

/**
 * Deliveries outstanding before the first is acknowledged. Acks follow
 * commits, so this covers a few batches in flight at full speed; it is
 * also the most a slow database leaves waiting in the collector's memory.
 */
const EVENT_PREFETCH = 10_000;

export function createAmqpBroker(opts: AmqpBrokerOptions): BrokerPort {
  const { log } = opts;
  const target = parseAmqpUrl(opts.brokerUrl);
  const queue: EventQueueSettings = {
    name: opts.eventQueue ?? "crisper.events",
    expiresMs: Math.round((opts.eventQueueExpiresS ?? 86_400) * 1000),
    maxBytes: opts.eventQueueMaxBytes ?? 256 * 2 ** 20,
    prefetch: EVENT_PREFETCH,
  };
  const commands = amqpConnection(target, "crisper", "broker", log, opts.reachability);
  const streams = amqpStreams({
    connection: amqpConnection(target, "crisper-events", "broker (events)", log, opts.reachability),
    queue,
    resultBackendUrl: opts.resultBackendUrl,
    log,
  });
  const results = redisResultBackend(opts.resultBackendUrl, log);
  const management = opts.managementUrl ? managementApi(opts.managementUrl, target.vhost, log) : null;
  const control = amqpPidbox(commands);

  return {
    capabilities: {
      // A delivery is shown only to the consumer holding it.
      listsUnacked: false,
      countsUnacked: management !== null,
      // A closed connection's deliveries go back to their queue at once.
      strandsPrefetched: false,
    },
    subscribe: streams.subscribe,
    keptEventsWhileAway: streams.keptEventsWhileAway,
    ...rabbitQueues({ connection: commands, management, eventQueue: queue.name, log }),
    ...control,
    ...workersUnacked(control.call),
    getResult: results.getResult,
    // Only the management API tells a third party how the node is doing.
    ...(management ? { health: () => management.health() } : {}),
    ...amqpActions(commands),
    ...(management ? { consumers: () => management.consumers() } : {}),

    async ping() {
      await commands.ready();
    },

    async close() {
      await Promise.all([streams.close(), commands.close(), results.close()]);
    },
  };
}
