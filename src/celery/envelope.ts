/**
 * Where events are decoded: a raw PUB/SUB message from the broker becomes
 * Celery events. Pure: no I/O, never throws on bad input, reports every
 * problem with a reason so the collector can count it.
 *
 * Wire format (celery-wire.md): a kombu envelope, JSON, whose `body` is
 * base64 of the serialized payload; `task.multi` carries a JSON list of task
 * events, other routing keys one event.
 */
import { Budget, CUT_KEY, LIMITS, boundKey, boundString, boundValue, isInt32, isObject, isSaneTimestamp, needsCleaning, storable, truncate } from "./bounds.ts";
import type { CeleryEvent, DecodeError, DecodeReason, Decoded, FieldDrop } from "./event.ts";
import { isTaskEventType, isWorkerEventType } from "./states.ts";
import { normalizeException } from "./exception.ts";

const JSON_TYPES = new Set(["application/json", "application/x-json", "text/json"]);

function fail(reason: DecodeReason, detail: string): Decoded {
  return { events: [], errors: [{ reason, detail }], dropped: [] };
}

/** Decodes one message received on an event channel (`/{db}.celeryev/<routing key>`). */
export function decodeEventMessage(data: string | Uint8Array, localReceived: number): Decoded {
  const size = typeof data === "string" ? data.length : data.byteLength;
  if (size > LIMITS.messageBytes) return tooLarge(size);
  const text = typeof data === "string" ? data : utf8(data);
  let envelope: unknown;
  try {
    envelope = JSON.parse(text);
  } catch (e) {
    return fail("not_json", `message is not JSON (${errorMessage(e)})`);
  }
  if (!isObject(envelope) || !Object.hasOwn(envelope, "body")) {
    return fail("not_envelope", "message is JSON but not a kombu envelope (no body)");
  }
  const contentType = envelope["content-type"] ?? "application/json";
  if (typeof contentType !== "string") {
    return fail("not_envelope", `message is not a kombu envelope (its content-type is ${kindOf(contentType)}, not text)`);
  }
  const refused = refuseSerializer(contentType);
  if (refused) return refused;
  const properties = isObject(envelope.properties) ? envelope.properties : {};
  const body = envelope.body;
  if (typeof body !== "string") {
    // kombu may embed the body as raw JSON when body_encoding is absent. It
    // was parsed with the envelope and is used as it is: never re-serialized,
    // so a body nested 100,000 deep overflows nothing (fields are bounded in
    // depth as they are copied).
    return eventsFrom(body, needsCleaning(text), localReceived);
  }
  let bodyText = body;
  if (properties.body_encoding === "base64") {
    const decoded = decodeBase64(body);
    if (decoded === null) return fail("bad_base64", "envelope body is not valid base64");
    bodyText = decoded;
  }
  return eventsFromJson(bodyText, localReceived);
}

/**
 * Decodes one event message that arrives without kombu's envelope: on AMQP
 * the content type is a message property and the body is the event JSON
 * itself (a list for `task.multi`); celery-wire.md, "RabbitMQ".
 */
export function decodeEventBody(body: string, contentType: string, localReceived: number): Decoded {
  if (body.length > LIMITS.messageBytes) return tooLarge(body.length);
  return refuseSerializer(contentType) ?? eventsFromJson(body, localReceived);
}

function tooLarge(size: number): Decoded {
  return fail("too_large", `message of ${size} bytes is over the ${LIMITS.messageBytes}-byte limit`);
}

/** Crisper reads Celery's default JSON serializer; anything else is refused with the fix. */
function refuseSerializer(contentType: string): Decoded | null {
  if (JSON_TYPES.has(contentType)) return null;
  return fail(
    "unsupported_serializer",
    `events serialized as ${JSON.stringify(truncate(contentType, 60))}; Crisper reads JSON events (set event_serializer='json', Celery's default)`,
  );
}

function eventsFromJson(bodyText: string, localReceived: number): Decoded {
  let payload: unknown;
  try {
    payload = JSON.parse(bodyText);
  } catch (e) {
    return fail("bad_body_json", `message body is not JSON (${errorMessage(e)})`);
  }
  return eventsFrom(payload, needsCleaning(bodyText), localReceived);
}

/** One event, or a `task.multi` list of them, each checked and bounded on its own. */
function eventsFrom(payload: unknown, clean: boolean, localReceived: number): Decoded {
  const out: Decoded = { events: [], errors: [], dropped: [] };
  const items = Array.isArray(payload) ? payload : [payload];
  for (let i = 0; i < items.length; i++) {
    if (i === LIMITS.eventsPerMessage) {
      const left = items.length - i;
      out.errors.push({ reason: "too_large", detail: `a message of ${items.length} events: only the first ${LIMITS.eventsPerMessage} are read`, count: left });
      break;
    }
    const r = toEvent(items[i], localReceived, clean, out.dropped);
    if ("reason" in r) out.errors.push(r);
    else out.events.push(r);
  }
  return out;
}

/**
 * A parse error's message, short and on one line (JSON.parse quotes the
 * offending character, which may be a control character); never calls a
 * thrown value's own toString, which may be a trap.
 */
function errorMessage(e: unknown): string {
  if (!(e instanceof Error)) return kindOf(e);
  return e.message.slice(0, 80).replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  const t = typeof v;
  return t === "object" ? "an object" : `a ${t}`;
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

/**
 * Celery's big fields, in the order in which they share what is left of an
 * event's size once its other fields are copied, each within its own limit.
 * The exception says most in fewest characters; the traceback, last, gets all
 * that remains (at least 24 KB).
 */
const BIG_FIELDS = [
  ["exception", LIMITS.repr],
  ["result", LIMITS.repr],
  ["args", LIMITS.repr],
  ["kwargs", LIMITS.repr],
  ["traceback", LIMITS.traceback],
] as const;
const BIG = new Set<string>(BIG_FIELDS.map(([k]) => k));
const NAME_FIELDS = new Set(["name", "queue", "exchange", "routing_key", "root_id", "parent_id", "eta", "expires"]);
/** Fields the store keeps in integer columns (tasks.retries; workers.pid, active, processed). */
const INTEGER_FIELDS = new Set<string>(["retries", "pid", "active", "processed"] satisfies FieldDrop["field"][]);
function isIntegerField(k: string): k is "retries" | "pid" | "active" | "processed" {
  return INTEGER_FIELDS.has(k);
}

/**
 * Validates one decoded event dict and bounds its fields. `clean` says its
 * strings may hold NUL or surrogates (see needsCleaning); `dropped` collects
 * fields taken out of the event it keeps.
 */
export function toEvent(item: unknown, localReceived: number, clean = true, dropped: FieldDrop[] = []): CeleryEvent | DecodeError {
  if (!isObject(item)) return { reason: "not_an_event", detail: "event is not an object" };
  const type = item.type;
  if (typeof type !== "string") return { reason: "missing_fields", detail: "event has no type" };
  const task = isTaskEventType(type);
  if (!task && !isWorkerEventType(type)) {
    return { reason: "unknown_event_type", detail: `unknown event type ${JSON.stringify(truncate(type, 60))}` };
  }
  const hostname = item.hostname;
  const sentAt = item.timestamp;
  if (typeof hostname !== "string" || hostname === "") {
    return { reason: "missing_fields", detail: `${type} event has no hostname` };
  }
  if (typeof sentAt !== "number" || !Number.isFinite(sentAt)) {
    return { reason: "missing_fields", detail: `${type} event has no numeric timestamp` };
  }
  const sane = isSaneTimestamp(sentAt, localReceived);
  const timestamp = sane ? sentAt : localReceived;
  if (!sane) {
    dropped.push({ field: "timestamp", reason: "out_of_range", detail: `a ${type} event had timestamp ${sentAt}; it is taken as received` });
  }
  let uuid: string | undefined;
  if (task) {
    if (typeof item.uuid !== "string" || item.uuid === "" || item.uuid.length > LIMITS.name) {
      return { reason: "missing_fields", detail: `${type} event has no usable uuid` };
    }
    uuid = clean ? storable(item.uuid) : item.uuid;
  }

  const fields: Record<string, unknown> = Object.create(null);
  const small = new Budget(LIMITS.smallFields, clean);
  for (const [k, v] of Object.entries(item)) {
    if (k === "type" || k === "hostname" || k === "timestamp" || k === "uuid" || BIG.has(k)) continue;
    if (small.left <= 0) {
      fields[CUT_KEY] = "more fields";
      break;
    }
    if (isIntegerField(k) && typeof v === "number" && !isInt32(v)) {
      dropped.push({ field: k, reason: "not_an_integer", detail: `a ${type} event had ${k} ${v}` });
      continue;
    }
    const name = NAME_FIELDS.has(k);
    fields[name ? k : boundKey(k, small)] = boundValue(v, name ? LIMITS.name : LIMITS.other, small);
  }
  const big = new Budget(LIMITS.eventFields - (LIMITS.smallFields - small.left), clean);
  for (const [k, max] of BIG_FIELDS) {
    if (!Object.hasOwn(item, k)) continue;
    const v = item[k];
    fields[k] = typeof v === "string" ? boundString(v, max, big) : boundValue(v, max, big);
  }
  if (type === "task-failed" || type === "task-retried") {
    const exc = normalizeException(fields.exception, fields.traceback);
    if (exc !== undefined) fields.exception = exc;
  }
  const event: CeleryEvent = {
    type,
    hostname: truncate(hostname, LIMITS.name, clean),
    timestamp,
    localReceived,
    source: "events",
    fields,
  };
  if (uuid !== undefined) event.uuid = uuid;
  return event;
}
