/**
 * Events that arrive without kombu's envelope: on AMQP the content type is
 * a message property and the body is the event JSON itself (a list for
 * `task.multi`); celery-wire.md, "RabbitMQ". Pure, never throws on bad
 * input, every problem reported with a reason (as envelope.ts does for the
 * Redis envelope, whose event checks it shares).
 */
import { LIMITS, truncate } from "./bounds.ts";
import { toEvent } from "./envelope.ts";
import type { Decoded } from "./event.ts";
import { errorText } from "../log.ts";

const JSON_TYPES = new Set(["application/json", "application/x-json", "text/json"]);

/** Decodes one AMQP event message: its body as text and its `content_type` property. */
export function decodeEventBody(body: string, contentType: string, localReceived: number): Decoded {
  if (body.length > LIMITS.messageBytes) {
    return { events: [], errors: [{ reason: "too_large", detail: `message of ${body.length} bytes is over the ${LIMITS.messageBytes}-byte limit` }] };
  }
  if (!JSON_TYPES.has(contentType)) {
    return {
      events: [],
      errors: [
        {
          reason: "unsupported_serializer",
          detail: `events serialized as ${JSON.stringify(truncate(contentType, 60))}; Crisper reads JSON events (set event_serializer='json', Celery's default)`,
        },
      ],
    };
  }
  let payload: unknown;
  try {
    payload = JSON.parse(body);
  } catch (e) {
    return { events: [], errors: [{ reason: "bad_body_json", detail: `message body is not JSON (${errorText(e).slice(0, 80)})` }] };
  }
  const out: Decoded = { events: [], errors: [] };
  for (const item of Array.isArray(payload) ? payload : [payload]) {
    const r = toEvent(item, localReceived);
    if ("reason" in r) out.errors.push(r);
    else out.events.push(r);
  }
  return out;
}
