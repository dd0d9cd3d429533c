/**
 * The demo's broker: kombu's Redis transport kept in memory, with two faces.
 *
 * - `port`: the broker port (src/broker/port.ts) Crisper's collector,
 *   detectors and pages use, as the Redis adapter serves it: event messages
 *   are kombu envelopes on `/0.celeryev/<routing key>`, the `unacked` entries
 *   are `[message, exchange, routing_key]` read by the Redis adapter's own
 *   parser, remote-control requests and replies are kombu envelopes read by
 *   the Redis adapter's pidbox functions.
 * - `server`: what the simulated workers, Beat and producers do to a Redis
 *   broker: publish events, push task messages onto queue lists, take them
 *   (into `unacked`, as a worker's prefetch does), acknowledge them, restore
 *   those past the visibility timeout, read the pidbox and answer it.
 *
 * Like Redis PUB/SUB, an event published while nobody subscribes is gone.
 */
import type { BrokerPort, QueueSample, RawMessage, StreamStatus } from "../broker/port.ts";
import { controlEnvelope, parseControlReply } from "../broker/redis/pidbox.ts";
import { parseUnacked } from "../broker/redis/queues.ts";
import { PRIORITY_STEPS } from "../broker/redis/keys.ts";
import { callRequest } from "../celery/control.ts";
import { eventMessage } from "./wire.ts";

/** A message a worker took from a queue and has not acknowledged. */
export interface Delivery {
  tag: string;
  queue: string;
  /** The kombu envelope, as it sat in the queue. */
  message: string;
}

interface UnackedEntry {
  queue: string;
  message: string;
  deliveredAt: number;
}

export interface DemoServer {
  /** Publishes one event message (a list of task events for `task.multi`). */
  publishEvent(routingKey: string, hostname: string, body: object): void;
  /** Declares a queue (kombu's binding), so it is sampled while empty too. */
  declareQueue(name: string): void;
  /** LPUSH: a producer sends a task. */
  push(queue: string, message: string): void;
  /** BRPOP into `unacked`: a worker prefetches the next message of one of its queues. */
  take(queues: readonly string[]): Delivery | null;
  ack(tag: string): void;
  /** Puts back every message unacknowledged for longer than `visibilityTimeoutS`, marked redelivered (kombu's `restore_visible`). */
  restoreVisible(visibilityTimeoutS: number): number;
  /** Subscribes a worker's mailbox to the pidbox fanout; returns the unsubscribe. */
  onControl(handler: (envelope: string) => void): () => void;
  /** A worker's reply, routed to the caller's reply queue. */
  reply(routingKey: string, envelope: string): void;
  depth(queue: string): number;
}

export interface MemoryBroker {
  port: BrokerPort;
  server: DemoServer;
}

export function createMemoryBroker(): MemoryBroker {
  const queues = new Map<string, string[]>();
  const unacked = new Map<string, UnackedEntry>();
  const subscribers = new Set<(m: RawMessage) => void>();
  const mailboxes = new Set<(envelope: string) => void>();
  /** Reply queues of calls in flight (the `reply.celery.pidbox` bindings). */
  const replyQueues = new Map<string, (envelope: string) => void>();
  let closed = false;

  const queue = (name: string) => {
    let q = queues.get(name);
    if (!q) {
      q = [];
      queues.set(name, q);
    }
    return q;
  };

  /** Remote-control messages travel like any other: asynchronously. */
  const toMailboxes = (envelope: string) => {
    setTimeout(() => {
      for (const m of mailboxes) m(envelope);
    }, 1);
  };

  const server: DemoServer = {
    publishEvent(routingKey, hostname, body) {
      if (closed || subscribers.size === 0) return;
      const { channel, data } = eventMessage(routingKey, hostname, body);
      const receivedAt = Date.now() / 1000;
      for (const s of subscribers) s({ stream: "events", channel, data, receivedAt });
    },
    declareQueue(name) {
      queue(name);
    },
    push(name, message) {
      queue(name).unshift(message);
    },
    take(names) {
      for (const name of names) {
        const message = queue(name).pop();
        if (message === undefined) continue;
        const tag = crypto.randomUUID();
        unacked.set(tag, { queue: name, message, deliveredAt: Date.now() / 1000 });
        return { tag, queue: name, message };
      }
      return null;
    },
    ack(tag) {
      unacked.delete(tag);
    },
    restoreVisible(visibilityTimeoutS) {
      const now = Date.now() / 1000;
      let restored = 0;
      for (const [tag, u] of unacked) {
        if (now - u.deliveredAt < visibilityTimeoutS) continue;
        unacked.delete(tag);
        queue(u.queue).push(markRedelivered(u.message));
        restored++;
      }
      return restored;
    },
    onControl(handler) {
      mailboxes.add(handler);
      return () => mailboxes.delete(handler);
    },
    reply(routingKey, envelope) {
      replyQueues.get(routingKey)?.(envelope);
    },
    depth(name) {
      return queues.get(name)?.length ?? 0;
    },
  };

  /** The `unacked` hash as the Redis adapter reads it. */
  function unackedMessages() {
    const delivered = new Map([...unacked].map(([tag, u]) => [tag, u.deliveredAt]));
    const routes = new Map<string, string>();
    return [...unacked].map(([tag, u]) => parseUnacked(tag, JSON.stringify([JSON.parse(u.message), "", u.queue]), delivered, routes));
  }

  const port: BrokerPort = {
    // As on Redis: anyone can read `unacked`, and a dead worker's prefetched
    // messages stay there until the visibility timeout.
    capabilities: { listsUnacked: true, countsUnacked: true, strandsPrefetched: true },

    async subscribe(onMessage, onStatus: (s: StreamStatus) => void) {
      subscribers.add(onMessage);
      onStatus({ state: "connected", at: Date.now() / 1000 });
      return {
        async close() {
          subscribers.delete(onMessage);
        },
      };
    },

    async sampleQueues(known = []) {
      for (const name of known) queue(name);
      const sampledAt = Date.now() / 1000;
      const messages = unackedMessages();
      return [...queues.keys()].sort().map((name): QueueSample => {
        const mine = messages.filter((m) => m.queue === name);
        const oldest = Math.min(...mine.map((m) => m.deliveredAt ?? sampledAt));
        const depth = queues.get(name)?.length ?? 0;
        // Every demo message has priority 0: kombu keeps it in the plain list.
        const byPriority = Object.fromEntries(PRIORITY_STEPS.map((p) => [String(p), p === 0 ? depth : 0]));
        return { name, depth, byPriority, unacked: mine.length, oldestUnackedAgeS: mine.length ? Math.max(0, sampledAt - oldest) : null, sampledAt };
      });
    },

    async unacked() {
      return unackedMessages();
    },

    async broadcast(method, args = {}, destination) {
      toMailboxes(controlEnvelope({ method, arguments: args, destination: destination ?? null, expires: Date.now() / 1000 + 10 }));
    },

    async call(method, args = {}, opts = {}) {
      const timeoutMs = opts.timeoutMs ?? 1000;
      const limit = opts.limit ?? opts.destination?.length ?? Number.POSITIVE_INFINITY;
      const oid = crypto.randomUUID();
      const ticket = crypto.randomUUID();
      const replies: Record<string, unknown> = {};
      let count = 0;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        replyQueues.set(oid, (envelope) => {
          const reply = parseControlReply(envelope, ticket);
          if (!reply) return;
          for (const [worker, value] of Object.entries(reply)) {
            replies[worker] = value;
            count++;
          }
          if (count >= limit) {
            clearTimeout(timer);
            resolve();
          }
        });
        toMailboxes(controlEnvelope(callRequest(method, args, { destination: opts.destination, ticket, replyTo: oid, timeoutMs })));
      });
      replyQueues.delete(oid);
      return replies;
    },

    async getResult() {
      // The demo's Celery has no result backend.
      return null;
    },

    async ping() {},

    async close() {
      closed = true;
      subscribers.clear();
    },
  };

  return { port, server };
}

/** A restored message carries `redelivered: true`, in its headers and delivery_info (celery-wire.md). */
function markRedelivered(message: string): string {
  const m = JSON.parse(message) as { headers: Record<string, unknown>; properties: { delivery_info: Record<string, unknown> } };
  m.headers.redelivered = true;
  m.properties.delivery_info.redelivered = true;
  return JSON.stringify(m);
}
