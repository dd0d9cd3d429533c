/**
 * Where events are decoded: a raw PUB/SUB message from the broker becomes
 * Celery events. Pure: no I/O, never throws on bad input, reports every
 * problem with a reason so the collector can count it.
 *
 * Wire format (celery-wire.md): a kombu envelope, JSON, whose `body` is
 * base64 of the serialized payload; `task.multi` carries a JSON list of task
 * events, other routing keys one event.
 */
import { LIMITS, boundValue, truncate } from "./bounds.ts";
import type { CeleryEvent, DecodeError, DecodeReason, Decoded } from "./event.ts";
import { isTaskEventType, isWorkerEventType } from "./states.ts";
import { normalizeException } from "./exception.ts";

const JSON_TYPES = new Set(["application/json", "application/x-json", "text/json"]);

function fail(reason: DecodeReason, detail: string): Decoded {
  return { events: [], errors: [{ reason, detail }] };
}

/** Decodes one message received on an event channel (`/{db}.celeryev/<routing key>`). */
export function decodeEventMessage(data: string | Uint8Array, localReceived: number): Decoded {
  const size = typeof data === "string" ? data.length : data.byteLength;
  if (size > LIMITS.messageBytes) {
    return fail("too_large", `message of ${size} bytes is over the ${LIMITS.messageBytes}-byte limit`);
  }
  const text = typeof data === "string" ? data : utf8(data);
  let envelope: unknown;
  try {
    envelope = JSON.parse(text);
  } catch (e) {
    return fail("not_json", `message is not JSON (${(e as Error).message.slice(0, 80)})`);
  }
  if (!isObject(envelope) || !("body" in envelope)) {
    return fail("not_envelope", "message is JSON but not a kombu envelope (no body)");
  }
  const contentType = String(envelope["content-type"] ?? "application/json");
  if (!JSON_TYPES.has(contentType)) {
    return fail(
      "unsupported_serializer",
      `events serialized as ${truncate(contentType, 60)}; Crisper reads JSON events (set event_serializer='json', Celery's default)`,
    );
  }
  const properties = isObject(envelope.properties) ? envelope.properties : {};
  let bodyText: string;
  const body = envelope.body;
  if (typeof body !== "string") {
    // kombu may embed the body as raw JSON when body_encoding is absent.
    bodyText = JSON.stringify(body);
  } else if (properties.body_encoding === "base64") {
    const decoded = decodeBase64(body);
    if (decoded === null) return fail("bad_base64", "envelope body is not valid base64");
    bodyText = decoded;
  } else {
    bodyText = body;
  }
  let payload: unknown;
  try {
    payload = JSON.parse(bodyText);
  } catch (e) {
    return fail("bad_body_json", `envelope body is not JSON (${(e as Error).message.slice(0, 80)})`);
  }
  const out: Decoded = { events: [], errors: [] };
  for (const item of Array.isArray(payload) ? payload : [payload]) {
    const r = toEvent(item, localReceived);
    if ("reason" in r) out.errors.push(r);
    else out.events.push(r);
  }
  return out;
}

const TEXT = new TextDecoder(); // not fatal: invalid UTF-8 becomes U+FFFD
const NON_ASCII_RE = /[^\x00-\x7f]/;

/**
 * Base64 to text, or null if it is not base64. atob validates (forgiving
 * base64, as the HTML spec defines it) and is an order of magnitude faster
 * than Buffer here (measured); its result is the bytes as Latin-1, which is
 * already the text when the body is ASCII, as Python's json.dumps writes it.
 */
function decodeBase64(s: string): string | null {
  let bin: string;
  try {
    bin = atob(s);
  } catch {
    return null;
  }
  return NON_ASCII_RE.test(bin) ? TEXT.decode(Buffer.from(bin, "latin1")) : bin;
}

/** Bytes as UTF-8 text; invalid sequences become U+FFFD. */
function utf8(data: Uint8Array): string {
  return TEXT.decode(data);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const REPR_FIELDS = new Set(["args", "kwargs", "result", "exception"]);
const NAME_FIELDS = new Set(["name", "queue", "exchange", "routing_key", "root_id", "parent_id", "eta", "expires"]);

/** Validates one decoded event dict and bounds its fields. */
export function toEvent(item: unknown, localReceived: number): CeleryEvent | DecodeError {
  if (!isObject(item)) return { reason: "not_an_event", detail: "event is not an object" };
  const type = item.type;
  if (typeof type !== "string") return { reason: "missing_fields", detail: "event has no type" };
  const task = isTaskEventType(type);
  if (!task && !isWorkerEventType(type)) {
    return { reason: "unknown_event_type", detail: `unknown event type ${JSON.stringify(truncate(type, 60))}` };
  }
  const hostname = item.hostname;
  const timestamp = item.timestamp;
  if (typeof hostname !== "string" || hostname === "") {
    return { reason: "missing_fields", detail: `${type} event has no hostname` };
  }
  if (typeof timestamp !== "number" || !Number.isFinite(timestamp)) {
    return { reason: "missing_fields", detail: `${type} event has no numeric timestamp` };
  }
  let uuid: string | undefined;
  if (task) {
    if (typeof item.uuid !== "string" || item.uuid === "" || item.uuid.length > LIMITS.name) {
      return { reason: "missing_fields", detail: `${type} event has no usable uuid` };
    }
    uuid = item.uuid;
  }
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(item)) {
    if (k === "type" || k === "hostname" || k === "timestamp" || k === "uuid") continue;
    if (k === "traceback") fields[k] = typeof v === "string" ? truncate(v, LIMITS.traceback) : boundValue(v);
    else if (REPR_FIELDS.has(k)) fields[k] = typeof v === "string" ? truncate(v, LIMITS.repr) : boundValue(v, LIMITS.repr);
    else if (NAME_FIELDS.has(k)) fields[k] = typeof v === "string" ? truncate(v, LIMITS.name) : boundValue(v, LIMITS.name);
    else fields[truncate(k, LIMITS.name)] = boundValue(v);
  }
  if (type === "task-failed" || type === "task-retried") {
    const exc = normalizeException(fields.exception, fields.traceback);
    if (exc !== undefined) fields.exception = exc;
  }
  const event: CeleryEvent = {
    type,
    hostname: truncate(hostname, LIMITS.name),
    timestamp,
    localReceived,
    source: "events",
    fields,
  };
  if (uuid !== undefined) event.uuid = uuid;
  return event;
}
