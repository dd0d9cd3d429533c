/**
 * Celery's queues and its delivered-but-unacknowledged messages as kombu's
 * Redis transport keeps them (celery-wire.md, "Queues in Redis"):
 * - a queue is a list, with a sub-list per priority step;
 * - the `_kombu.binding.<exchange>` sets name every declared queue and the
 *   routing key that leads to it;
 * - the `unacked` hash holds every message a worker has taken but not yet
 *   acknowledged (prefetched or running), and the `unacked_index` zset
 *   when it was delivered. Any client can read both, which is how Crisper
 *   sees prefetched messages stranded by a dead worker.
 */
import type { Redis } from "ioredis";
import type { BrokerPort, QueueSample, UnackedMessage } from "../port.ts";
import { ensureConnected } from "./connection.ts";
import { BINDINGS, escapeGlob, isPlumbingExchange, isPlumbingQueue, type KombuKeys, parseBinding, PRIORITY_STEPS, priorityQueueKey } from "./keys.ts";

/** Past this many unacked messages, per-queue unacked counts come from a sample. */
const MAX_UNACKED_SCANNED = 50_000;
const MAX_QUEUES_SAMPLED = 1000;

export function kombuQueues(commands: Redis, keys: KombuKeys): Pick<BrokerPort, "sampleQueues" | "unacked"> {
  /** Queue names from the binding sets, without Celery's plumbing. */
  async function discoverQueues(): Promise<{ queues: Set<string>; routes: Map<string, string> }> {
    const queues = new Set<string>();
    /** `exchange SEP routing_key` → queue, to attribute unacked messages. */
    const routes = new Map<string, string>();
    const bindingPrefix = keys.key(BINDINGS);
    let cursor = "0";
    do {
      const [next, found] = await commands.scan(cursor, "MATCH", `${escapeGlob(bindingPrefix)}*`, "COUNT", 1000);
      cursor = next;
      for (const k of found) {
        const exchange = k.slice(bindingPrefix.length);
        if (isPlumbingExchange(exchange)) continue;
        for (const member of await commands.smembers(k)) {
          const b = parseBinding(member);
          if (!b || isPlumbingQueue(b.queue)) continue;
          if (queues.size < MAX_QUEUES_SAMPLED) queues.add(b.queue);
          routes.set(`${exchange}\x00${b.routingKey}`, b.queue);
        }
      }
    } while (cursor !== "0");
    return { queues, routes };
  }

  /** Entries of the `unacked` hash, their queue resolved through the bindings. */
  async function readUnacked(limit: number, routes: Map<string, string>): Promise<UnackedMessage[]> {
    const total = await commands.hlen(keys.key("unacked"));
    const messages: UnackedMessage[] = [];
    const delivered = new Map<string, number>();
    if (total > 0) {
      const index = await commands.zrange(keys.key("unacked_index"), "0", String(limit - 1), "WITHSCORES");
      for (let i = 0; i + 1 < index.length; i += 2) delivered.set(index[i] as string, Number(index[i + 1]));
      let cursor = "0";
      do {
        const [next, entries] = await commands.hscan(keys.key("unacked"), cursor, "COUNT", 1000);
        cursor = next;
        for (let i = 0; i + 1 < entries.length && messages.length < limit; i += 2) {
          messages.push(parseUnacked(entries[i] as string, entries[i + 1] as string, delivered, routes));
        }
      } while (cursor !== "0" && messages.length < limit);
    }
    return messages;
  }

  return {
    async sampleQueues(knownQueues = []) {
      await ensureConnected(commands);
      const { queues, routes } = await discoverQueues();
      for (const q of knownQueues) if (queues.size < MAX_QUEUES_SAMPLED && !isPlumbingQueue(q)) queues.add(q);
      const names = [...queues].sort();
      const pipeline = commands.pipeline();
      for (const q of names) for (const step of PRIORITY_STEPS) pipeline.llen(keys.key(priorityQueueKey(q, step)));
      const lengths = (await pipeline.exec()) ?? [];
      const messages = await readUnacked(MAX_UNACKED_SCANNED, routes);
      const sampledAt = Date.now() / 1000;
      const unackedBy = new Map<string, { count: number; oldest: number | null }>();
      for (const m of messages) {
        const q = m.queue ?? "";
        const entry = unackedBy.get(q) ?? { count: 0, oldest: null };
        entry.count++;
        if (m.deliveredAt !== null && (entry.oldest === null || m.deliveredAt < entry.oldest)) entry.oldest = m.deliveredAt;
        unackedBy.set(q, entry);
      }
      return names.map((name, qi): QueueSample => {
        const byPriority: Record<string, number> = {};
        let depth = 0;
        PRIORITY_STEPS.forEach((step, si) => {
          const [err, n] = lengths[qi * PRIORITY_STEPS.length + si] ?? [null, 0];
          const count = err ? 0 : Number(n);
          byPriority[String(step)] = count;
          depth += count;
        });
        const u = unackedBy.get(name);
        return {
          name,
          depth,
          byPriority,
          unacked: u?.count ?? 0,
          oldestUnackedAgeS: u?.oldest != null ? Math.max(0, sampledAt - u.oldest) : null,
          sampledAt,
        };
      });
    },

    async unacked() {
      await ensureConnected(commands);
      const { routes } = await discoverQueues();
      return readUnacked(MAX_UNACKED_SCANNED, routes);
    },
  };
}

/** One `unacked` hash entry: JSON `[message, exchange, routing_key]`. */
export function parseUnacked(tag: string, raw: string, delivered: Map<string, number>, routes: Map<string, string>): UnackedMessage {
  const out: UnackedMessage = {
    deliveryTag: tag,
    taskId: null,
    taskName: null,
    queue: null,
    deliveredAt: delivered.get(tag) ?? null,
    redelivered: false,
  };
  try {
    const [message, exchange, routingKey] = JSON.parse(raw) as [
      { headers?: Record<string, unknown>; properties?: { delivery_info?: Record<string, unknown> } },
      string,
      string,
    ];
    const headers = message?.headers ?? {};
    const info = message?.properties?.delivery_info ?? {};
    out.taskId = typeof headers.id === "string" ? headers.id.slice(0, 255) : null;
    out.taskName = typeof headers.task === "string" ? headers.task.slice(0, 255) : null;
    // Routed through (exchange, routing_key): the bindings say which queue;
    // the default exchange ("") routes straight to the queue named by the key.
    if (typeof routingKey === "string") out.queue = (routes.get(`${exchange ?? ""}\x00${routingKey}`) ?? routingKey).slice(0, 255);
    out.redelivered = headers.redelivered === true || info.redelivered === true;
  } catch {
    // An unreadable entry still counts as unacked; it just has no task id.
  }
  return out;
}
