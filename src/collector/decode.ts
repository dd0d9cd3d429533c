/**
 * Routes a raw broker message to the right decoder by where it came from.
 * Pidbox broadcasts (remote control) travel on their own channel and are not
 * events; the adapter does not deliver them.
 */
import type { RawMessage } from "../broker/port.ts";
import { decodeEventMessage } from "../celery/envelope.ts";
import type { Decoded } from "../celery/event.ts";
import { decodeResultMeta } from "../celery/result-meta.ts";

export function decodeRawMessage(m: RawMessage): Decoded {
  return m.stream === "result-backend" ? decodeResultMeta(m.data, m.receivedAt) : decodeEventMessage(m.data, m.receivedAt);
}
