/**
 * Control actions on a Redis broker, done the way kombu's Redis transport
 * does them (kombu/transport/redis.py):
 * - requeueStranded: what `restore_visible` → `restore_by_tag` →
 *   `_do_restore_message` does for an unacknowledged delivery once its
 *   visibility timeout has passed, for the given delivery tags now: the
 *   `unacked` entry (`[message, exchange, routing_key]`) is removed from
 *   `unacked` and `unacked_index`, marked `redelivered`, and RPUSHed onto
 *   each queue its exchange and routing key lead to (the end BRPOP takes
 *   next), on the list of its priority step (kombu 5.3 and later; 5.2
 *   pushed onto the plain list). One Lua script does the move for all the
 *   tags, and moves an entry only if it is still exactly what was read: a
 *   delivery acknowledged or restored meanwhile is left alone. Since the
 *   entry leaves `unacked`, a later `restore_visible` cannot push it again.
 * - publishTask: kombu's `_put`, an LPUSH of the JSON envelope (body in
 *   base64, `properties.delivery_tag`, `delivery_info`) onto the list of
 *   the message's priority step; then the `task-sent` event.
 * - purgeQueue: kombu's `_purge`, LLEN and DEL of every priority step's list.
 */
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { isLiteralDict, LiteralNumber, literalToJson, parseLiteral } from "../../celery/python-literal.ts";
import type { BrokerPort, RequeueResult } from "../port.ts";
import { ensureConnected } from "./connection.ts";
import { EVENT_EXCHANGE, type KombuKeys, parseBinding, PRIORITY_STEPS, priorityQueueKey } from "./keys.ts";
import { taskSentEvent } from "../../celery/task-message.ts";

/**
 * KEYS: unacked, unacked_index, then the destination lists of every move in
 * order. ARGV: per move, the delivery tag, the entry as read, the message to
 * push and how many destination lists it takes from KEYS. Returns the tags
 * moved.
 */
const REQUEUE_SCRIPT = `
local moved = {}
local k = 3
local a = 1
while a <= #ARGV do
  local tag, expected, payload, n = ARGV[a], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])
  if redis.call('HGET', KEYS[1], tag) == expected then
    redis.call('ZREM', KEYS[2], tag)
    redis.call('HDEL', KEYS[1], tag)
    for i = 0, n - 1 do redis.call('RPUSH', KEYS[k + i], payload) end
    moved[#moved + 1] = tag
  end
  k = k + n
  a = a + 4
end
return moved
`;

/** kombu's `priority()`: the highest step at or below the message's priority (0–9, default 0). */
export function priorityStep(priority: unknown): number {
  const n = typeof priority === "number" && Number.isFinite(priority) ? Math.max(0, Math.min(9, Math.trunc(priority))) : 0;
  return [...PRIORITY_STEPS].reverse().find((s) => s <= n) ?? 0;
}

export function redisActions(commands: Redis, keys: KombuKeys): Required<Pick<BrokerPort, "requeueStranded" | "publishTask" | "purgeQueue">> {
  /** kombu's `_lookup`: the default exchange routes to the queue named by the key; others through their bindings. */
  async function queuesFor(exchange: string, routingKey: string): Promise<string[]> {
    if (!exchange) return routingKey ? [routingKey] : [];
    const members = await commands.smembers(keys.bindings(exchange));
    // Celery's task exchanges are direct: the bindings whose routing key is this one.
    return members.flatMap((m) => {
      const b = parseBinding(m);
      return b && b.routingKey === routingKey ? [b.queue] : [];
    });
  }

  return {
    async requeueStranded(deliveryTags) {
      await ensureConnected(commands);
      const result: RequeueResult = { requeued: [], skipped: [] };
      const tags = [...new Set(deliveryTags)];
      if (tags.length === 0) return result;
      const raws = await commands.hmget(keys.key("unacked"), ...tags);
      const destinations: string[] = [];
      const argv: string[] = [];
      const planned = new Map<string, { taskId: string | null; queues: string[] }>();
      for (const [i, tag] of tags.entries()) {
        const raw = raws[i];
        if (raw == null) {
          result.skipped.push({ deliveryTag: tag, reason: "no longer unacknowledged (acknowledged or restored meanwhile)" });
          continue;
        }
        const parsed = parseLiteral(raw, "json");
        const entry = parsed.ok && Array.isArray(parsed.value) ? parsed.value : null;
        const [message, exchange, routingKey] = entry ?? [];
        if (!message || !isLiteralDict(message) || typeof routingKey !== "string") {
          result.skipped.push({ deliveryTag: tag, reason: "an unacked entry kombu did not write ([message, exchange, routing_key] expected)" });
          continue;
        }
        const queues = await queuesFor(typeof exchange === "string" ? exchange : "", routingKey);
        if (queues.length === 0) {
          result.skipped.push({ deliveryTag: tag, reason: `no queue is bound to exchange ${JSON.stringify(exchange)} with routing key ${JSON.stringify(routingKey)}` });
          continue;
        }
        // As kombu: redelivered in the headers and in delivery_info, where they exist.
        const headers = message.headers;
        const properties = message.properties;
        const info = isLiteralDict(properties) ? properties.delivery_info : undefined;
        if (isLiteralDict(headers) && isLiteralDict(info)) {
          headers.redelivered = true;
          info.redelivered = true;
        }
        const priority = isLiteralDict(properties) && properties.priority instanceof LiteralNumber ? Number(properties.priority.text) : 0;
        const step = priorityStep(priority);
        argv.push(tag, raw, literalToJson(message), String(queues.length));
        for (const q of queues) destinations.push(keys.key(priorityQueueKey(q, step)));
        const taskId = isLiteralDict(headers) && typeof headers.id === "string" ? headers.id.slice(0, 255) : null;
        planned.set(tag, { taskId, queues });
      }
      if (argv.length === 0) return result;
      const moved = (await commands.eval(REQUEUE_SCRIPT, 2 + destinations.length, keys.key("unacked"), keys.key("unacked_index"), ...destinations, ...argv)) as string[];
      const done = new Set(moved);
      for (const [tag, p] of planned) {
        if (done.has(tag)) result.requeued.push({ deliveryTag: tag, ...p });
        else result.skipped.push({ deliveryTag: tag, reason: "no longer unacknowledged (acknowledged or restored meanwhile)" });
      }
      return result;
    },

    async publishTask(m) {
      await ensureConnected(commands);
      const envelope = {
        body: Buffer.from(m.body, "utf8").toString("base64"),
        "content-encoding": m.contentEncoding,
        "content-type": m.contentType,
        headers: m.headers,
        properties: {
          correlation_id: m.id,
          delivery_mode: 2,
          delivery_info: { exchange: m.exchange, routing_key: m.routingKey },
          priority: m.priority,
          body_encoding: "base64",
          delivery_tag: randomUUID(),
        },
      };
      // The message goes onto the queue's list directly (Crisper knows the queue it was sent to);
      // its exchange and routing key ride along, as kombu's basic_publish records them.
      await commands.lpush(keys.key(priorityQueueKey(m.queue, priorityStep(m.priority))), JSON.stringify(envelope));
      // Then the task-sent event, as Celery's producer publishes it on the `celeryev` fanout (PUB/SUB).
      const event = taskSentEvent(m, Date.now() / 1000);
      const eventEnvelope = {
        body: Buffer.from(JSON.stringify(event), "utf8").toString("base64"),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        headers: { hostname: event.hostname },
        properties: {
          delivery_mode: 1,
          delivery_info: { exchange: EVENT_EXCHANGE, routing_key: "task.sent" },
          priority: 0,
          body_encoding: "base64",
          delivery_tag: randomUUID(),
        },
      };
      await commands.publish(`${keys.fanout(EVENT_EXCHANGE)}/task.sent`, JSON.stringify(eventEnvelope));
    },

    async purgeQueue(queue) {
      await ensureConnected(commands);
      const multi = commands.multi();
      for (const step of PRIORITY_STEPS) multi.llen(keys.key(priorityQueueKey(queue, step))).del(keys.key(priorityQueueKey(queue, step)));
      const replies = (await multi.exec()) ?? [];
      let purged = 0;
      for (let i = 0; i < replies.length; i += 2) {
        const [err, n] = replies[i] ?? [null, 0];
        if (err) throw err;
        purged += Number(n);
      }
      return purged;
    },
  };
}
