/**
 * Celery's remote control ("pidbox") on a Redis broker, as kombu writes it:
 * a kombu envelope on the fanout channel `/{db}.celery.pidbox`, replies
 * LPUSHed by workers onto `<oid>.reply.celery.pidbox` through the direct
 * exchange `reply.celery.pidbox`. See celery-wire.md.
 */
import { SEP } from "./url.ts";

export const REPLY_EXCHANGE = "reply.celery.pidbox";

export interface ControlRequest {
  method: string;
  arguments: Record<string, unknown>;
  destination: string[] | null;
  /** Present only when replies are wanted. */
  ticket?: string;
  replyTo?: string;
  /** Unix seconds after which workers ignore the message. */
  expires: number;
}

/** The kombu envelope Celery's `Mailbox._broadcast` publishes. */
export function controlEnvelope(req: ControlRequest): string {
  const body: Record<string, unknown> = {
    method: req.method,
    arguments: req.arguments,
    destination: req.destination,
    pattern: null,
    matcher: null,
  };
  if (req.ticket && req.replyTo) {
    body.ticket = req.ticket;
    body.reply_to = { exchange: REPLY_EXCHANGE, routing_key: req.replyTo };
  }
  return JSON.stringify({
    body: Buffer.from(JSON.stringify(body)).toString("base64"),
    "content-encoding": "utf-8",
    "content-type": "application/json",
    headers: { clock: 1, expires: req.expires },
    properties: {
      delivery_mode: 2,
      delivery_info: { exchange: "celery.pidbox", routing_key: "" },
      priority: 0,
      body_encoding: "base64",
      delivery_tag: crypto.randomUUID(),
    },
  });
}

/** The binding that makes kombu route a worker's reply to our list. */
export function replyBinding(oid: string): { member: string; queue: string } {
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
  try {
    const text = env.properties?.body_encoding === "base64" ? Buffer.from(env.body, "base64").toString("utf8") : env.body;
    const body = JSON.parse(text);
    return body && typeof body === "object" && !Array.isArray(body) ? (body as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
