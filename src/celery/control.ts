/**
 * Celery's remote control, whatever the broker: the exchanges kombu's
 * Mailbox uses and the request a worker reads (`Mailbox._broadcast`,
 * celery-wire.md). The Redis adapter wraps it in a kombu envelope, the AMQP
 * one publishes it as the message body.
 */

/** Celery's event exchange (topic on AMQP, fanout on Redis). */
export const EVENT_EXCHANGE = "celeryev";
/** Celery's remote-control exchange (fanout): the "pidbox" mailbox. */
export const CONTROL_EXCHANGE = "celery.pidbox";
/** The direct exchange workers send remote-control replies through. */
export const REPLY_EXCHANGE = "reply.celery.pidbox";

/** Exchanges whose bindings are Celery's own plumbing, not task queues. */
const PLUMBING_EXCHANGES = new Set([EVENT_EXCHANGE, CONTROL_EXCHANGE, REPLY_EXCHANGE]);

export function isPlumbingExchange(exchange: string): boolean {
  return PLUMBING_EXCHANGES.has(exchange);
}

/** Celery's own queues: a monitor's event queue, a worker's mailbox, a reply queue. */
export function isPlumbingQueue(queue: string): boolean {
  return queue.startsWith(`${EVENT_EXCHANGE}.`) || queue.endsWith(`.${CONTROL_EXCHANGE}`) || queue.endsWith(`.${REPLY_EXCHANGE}`);
}

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

/** A request that wants replies: on `replyTo` (Crisper's reply queue), within `timeoutMs`. */
export function callRequest(
  method: string,
  args: Record<string, unknown>,
  o: { destination?: string[]; ticket: string; replyTo: string; timeoutMs: number },
): ControlRequest {
  return {
    method,
    arguments: args,
    destination: o.destination ?? null,
    ticket: o.ticket,
    replyTo: o.replyTo,
    expires: Date.now() / 1000 + o.timeoutMs / 1000,
  };
}

/** The request body a worker's mailbox reads. */
export function controlBody(req: ControlRequest): Record<string, unknown> {
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
  return body;
}

/** A worker's reply body, `{ "<worker>": value }`; null when it is not a JSON object. */
export function replyBody(text: string): Record<string, unknown> | null {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    try {
      body = JSON.parse(withoutPythonNumbers(text));
    } catch {
      return null;
    }
  }
  return typeof body === "object" && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : null;
}

/** A JSON string, or one of the bare words Python's json module writes for floats JSON has no room for. */
const STRING_OR_PYTHON_NUMBER = /"(?:[^"\\]|\\.)*"|-?\bInfinity\b|\bNaN\b/g;

/**
 * Python's json writes float('inf') and float('nan') as bare `Infinity` and
 * `NaN`, which JSON.parse refuses: a `conf` reply with defaults carries
 * `result_backend_max_retries: Infinity` (Celery 5.2), so the whole reply
 * would be lost. They become null; the same words inside strings stay.
 */
function withoutPythonNumbers(text: string): string {
  return text.replace(STRING_OR_PYTHON_NUMBER, (m) => (m.startsWith('"') ? m : "null"));
}
