/**
 * Routes a raw broker message to the right decoder by where it came from.
 * Pidbox broadcasts (remote control) travel on their own channel and are not
 * events; the adapter does not deliver them.
 */
import type { RawMessage } from "../broker/port.ts";
import { decodeEventBody, decodeEventMessage } from "../celery/envelope.ts";
import type { Decoded } from "../celery/event.ts";
import { decodeResultMeta } from "../celery/result-meta.ts";

export function decodeRawMessage(m: RawMessage): Decoded {
  if (m.stream === "result-backend") return decodeResultMeta(m.data, m.receivedAt);
  // AMQP carries the content type beside a bare body; Redis wraps both in kombu's envelope.
  return m.contentType !== undefined ? decodeEventBody(m.data, m.contentType, m.receivedAt) : decodeEventMessage(m.data, m.receivedAt);
}
