/**
 * Celery's remote control ("pidbox") on a Redis broker, as kombu writes it
 * (celery-wire.md, "Events are off by default — and can be switched on
 * remotely"): a kombu envelope published on the `celery.pidbox` fanout
 * channel; replies LPUSHed by workers onto `<oid>.reply.celery.pidbox`,
 * routed there through the direct exchange `reply.celery.pidbox` by a
 * binding the caller adds first.
 */
import type { Redis } from "ioredis";
import type { BrokerPort, ControlCallOptions } from "../port.ts";
import { blockingConnection, ensureConnected } from "./connection.ts";
import { CONTROL_EXCHANGE, type ControlRequest, callRequest, controlBody, REPLY_EXCHANGE, replyBody } from "../../celery/control.ts";
import { type KombuKeys, SEP } from "./keys.ts";

/** The kombu envelope Celery's `Mailbox._broadcast` publishes. */
export function controlEnvelope(req: ControlRequest): string {
  return JSON.stringify({
    body: Buffer.from(JSON.stringify(controlBody(req))).toString("base64"),
    "content-encoding": "utf-8",
    "content-type": "application/json",
    headers: { clock: 1, expires: req.expires },
    properties: {
      delivery_mode: 2,
      delivery_info: { exchange: CONTROL_EXCHANGE, routing_key: "" },
      priority: 0,
      body_encoding: "base64",
      delivery_tag: crypto.randomUUID(),
    },
  });
}

/** The binding that makes kombu route a worker's reply to our list. */
function replyBinding(oid: string): { member: string; queue: string } {
  const queue = `${oid}.${REPLY_EXCHANGE}`;
  return { member: `${oid}${SEP}${SEP}${queue}`, queue };
}

/** A worker's reply: `{ "<worker>": value }`, or null if it is not for `ticket`. */
export function parseControlReply(raw: string, ticket: string): Record<string, unknown> | null {
  let env: { body?: unknown; headers?: { ticket?: unknown }; properties?: { body_encoding?: unknown } };
  try {
    env = JSON.parse(raw);
  } catch {
    return null;
  }
  if (env?.headers?.ticket !== ticket || typeof env.body !== "string") return null;
  return replyBody(env.properties?.body_encoding === "base64" ? Buffer.from(env.body, "base64").toString("utf8") : env.body);
}

export function pidbox(commands: Redis, keys: KombuKeys): Pick<BrokerPort, "broadcast" | "call"> {
  const channel = keys.fanout(CONTROL_EXCHANGE);
  return {
    async broadcast(method, args = {}, destination) {
      await ensureConnected(commands);
      const envelope = controlEnvelope({
        method,
        arguments: args,
        destination: destination ?? null,
        expires: Date.now() / 1000 + 10,
      });
      await commands.publish(channel, envelope);
    },

    async call(method, args = {}, callOpts: ControlCallOptions = {}) {
      const timeoutMs = callOpts.timeoutMs ?? 1000;
      const limit = callOpts.limit ?? callOpts.destination?.length ?? Number.POSITIVE_INFINITY;
      await ensureConnected(commands);
      const oid = crypto.randomUUID();
      const ticket = crypto.randomUUID();
      const binding = replyBinding(oid);
      const bindingKey = keys.bindings(REPLY_EXCHANGE);
      const replyList = keys.key(binding.queue);
      // Without the binding kombu drops the worker's reply on the floor.
      await commands.sadd(bindingKey, binding.member);
      const blocking = blockingConnection(commands, "crisper-control");
      const replies: Record<string, unknown> = {};
      try {
        await commands.publish(
          channel,
          controlEnvelope(callRequest(method, args, { destination: callOpts.destination, ticket, replyTo: oid, timeoutMs })),
        );
        const deadline = Date.now() + timeoutMs;
        let count = 0;
        while (count < limit) {
          const left = deadline - Date.now();
          if (left <= 0) break;
          const popped = await blocking.brpop(replyList, Math.max(0.01, left / 1000));
          if (!popped) break;
          const reply = parseControlReply(popped[1], ticket);
          if (!reply) continue;
          for (const [worker, value] of Object.entries(reply)) {
            replies[worker] = value;
            count++;
          }
        }
      } finally {
        blocking.disconnect();
        await commands.srem(bindingKey, binding.member).catch(() => {});
        await commands.del(replyList).catch(() => {});
      }
      return replies;
    },
  };
}
