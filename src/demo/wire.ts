/**
 * What the simulated cluster puts on the wire, byte for byte as Celery 5.2 and
 * kombu's Redis transport write it (celery-wire.md; compare the captures in
 * the shared fixtures): kombu envelopes with base64 JSON bodies, event
 * channels `/0.celeryev/<routing key>`, task messages in protocol 2 with
 * `argsrepr`/`kwargsrepr` headers. The demo's messages therefore go through
 * the same decoder (src/celery/envelope.ts) as a real broker's.
 */
import { EVENT_EXCHANGE } from "../celery/control.ts";
import { kombuKeys } from "../broker/redis/keys.ts";

/** The demo's broker is "db 0" of a Redis without a key prefix. */
export const DEMO_KEYS = kombuKeys("", 0);

const base64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

/** A kombu envelope around a JSON body, as `kombu.transport.virtual.Channel.prepare_message` writes it. */
export function kombuEnvelope(
  body: unknown,
  o: { exchange: string; routingKey: string; headers: Record<string, unknown>; deliveryMode: 1 | 2; priority?: number; properties?: Record<string, unknown> },
): string {
  // Python's json.dumps separators: ", " and ": ".
  return pyJson({
    body: base64(pyJson(body)),
    "content-encoding": "utf-8",
    "content-type": "application/json",
    headers: o.headers,
    properties: {
      ...o.properties,
      delivery_mode: o.deliveryMode,
      delivery_info: { exchange: o.exchange, routing_key: o.routingKey },
      priority: o.priority ?? 0,
      body_encoding: "base64",
      delivery_tag: crypto.randomUUID(),
    },
  });
}

/** One event message: the channel it is published on and the envelope. `body` is an event, or a list for `task.multi`. */
export function eventMessage(routingKey: string, hostname: string, body: object): { channel: string; data: string } {
  return {
    channel: `${DEMO_KEYS.fanout(EVENT_EXCHANGE)}/${routingKey}`,
    data: kombuEnvelope(body, { exchange: EVENT_EXCHANGE, routingKey, headers: { hostname }, deliveryMode: 1 }),
  };
}

export interface TaskMessageFields {
  id: string;
  name: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  retries: number;
  rootId: string;
  parentId: string | null;
  origin: string;
  queue: string;
  eta: string | null;
  /** Celery's `expires` (ISO 8601): a worker that takes it later discards it unrun. */
  expires?: string | null;
}

/** A task message, protocol 2, as `app.send_task` puts it on a queue: `[args, kwargs, embed]`, the rest in headers. */
export function taskMessage(t: TaskMessageFields): string {
  return kombuEnvelope([t.args, t.kwargs, { callbacks: null, errbacks: null, chain: null, chord: null }], {
    exchange: "",
    routingKey: t.queue,
    deliveryMode: 2,
    headers: {
      lang: "py",
      task: t.name,
      id: t.id,
      shadow: null,
      eta: t.eta,
      expires: t.expires ?? null,
      group: null,
      group_index: null,
      retries: t.retries,
      timelimit: [null, null],
      root_id: t.rootId,
      parent_id: t.parentId,
      argsrepr: pyRepr(t.args, true),
      kwargsrepr: pyRepr(t.kwargs),
      origin: t.origin,
      ignore_result: false,
    },
    properties: { correlation_id: t.id, reply_to: "9f1c2d3e-5a6b-3c7d-8e9f-0a1b2c3d4e5f" },
  });
}

/** JSON as Python's json.dumps writes it by default (", " and ": " separators, ASCII only). */
export function pyJson(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "string") return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  if (Array.isArray(value)) return `[${value.map(pyJson).join(", ")}]`;
  return `{${Object.entries(value as Record<string, unknown>)
    .map(([k, v]) => `${pyJson(k)}: ${pyJson(v)}`)
    .join(", ")}}`;
}

/**
 * Python's repr() of JSON-like values, as Celery's `saferepr` puts args,
 * kwargs and results into events: `(1, 2)`, `{'width': 800}`, `'sent'`.
 * `asTuple` writes a list as a tuple (a task's positional arguments).
 */
export function pyRepr(value: unknown, asTuple = false): string {
  if (value === null || value === undefined) return "None";
  if (typeof value === "boolean") return value ? "True" : "False";
  if (typeof value === "number") return String(value);
  if (typeof value === "string") return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
  if (Array.isArray(value)) {
    const items = value.map((v) => pyRepr(v));
    if (!asTuple) return `[${items.join(", ")}]`;
    return items.length === 1 ? `(${items[0]},)` : `(${items.join(", ")})`;
  }
  return `{${Object.entries(value as Record<string, unknown>)
    .map(([k, v]) => `${pyRepr(k)}: ${pyRepr(v)}`)
    .join(", ")}}`;
}
