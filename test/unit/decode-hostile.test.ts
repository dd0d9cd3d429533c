/**
 * Messages that crashed Crisper, and poison events: each valid but for one
 * field PostgreSQL would refuse (taking the whole batch with it) or that must
 * not be believed. Decoding never throws, and what it keeps is storable.
 */
import { describe, expect, test } from "bun:test";
import { LIMITS, isObject, needsCleaning } from "../../src/celery/bounds.ts";
import { decodeEventMessage } from "../../src/celery/envelope.ts";
import type { CeleryEvent, Decoded } from "../../src/celery/event.ts";
import { decodeResultMeta } from "../../src/celery/result-meta.ts";
import { buildBatch } from "../../src/collector/batch.ts";
import { CRASH_MESSAGES, deepJson, envelope, poisonEvents } from "../support/hostile-wire.ts";

const now = 1_795_476_000;
const received = { type: "task-received", uuid: "t-1", hostname: "w1@lab", timestamp: now, name: "app.add", args: "(1, 2)", kwargs: "{}", retries: 0, clock: 3, pid: 7 };

/** What PostgreSQL refuses in text and jsonb: NUL, and lone surrogates (JSON.stringify writes them as \udXXX escapes). */
function assertStorable(what: string, value: unknown) {
  const json = JSON.stringify(value);
  expect(json.includes("\0"), `${what}: raw NUL`).toBe(false);
  // Escapes follow an even number of backslashes (JSON.stringify writes a lone surrogate as one).
  expect(/(?:^|[^\\])(?:\\\\)*\\u0000/.test(json), `${what}: escaped NUL`).toBe(false);
  expect(/(?:^|[^\\])(?:\\\\)*\\ud[89a-f]/i.test(json), `${what}: lone surrogate`).toBe(false);
  expect(json.isWellFormed(), `${what}: not well-formed`).toBe(true);
}

function only(d: Decoded): CeleryEvent {
  expect(d.errors).toEqual([]);
  expect(d.events).toHaveLength(1);
  return d.events[0] as CeleryEvent;
}

describe("the messages that crashed crisper serve are rejected with a reason", () => {
  test('{"body":"x","content-type":{"toString":1}}', () => {
    const d = decodeEventMessage(CRASH_MESSAGES.contentTypeTrap, now);
    expect(d.errors.map((e) => e.reason)).toEqual(["not_envelope"]);
    expect(d.errors[0]?.detail).toContain("content-type is an object");
  });

  test("other content-types that are not text", () => {
    for (const ct of [42, ["application/json"], { valueOf: null }, true]) {
      expect(decodeEventMessage(JSON.stringify({ body: "x", "content-type": ct }), now).errors.map((e) => e.reason)).toEqual(["not_envelope"]);
    }
  });

  test("a 200 KB body of [ nested 100,000 deep", () => {
    expect(CRASH_MESSAGES.deepBody.length).toBeGreaterThan(200_000);
    expect(decodeEventMessage(CRASH_MESSAGES.deepBody, now).errors.map((e) => e.reason)).toEqual(["not_an_event"]);
  });

  test("deep nesting everywhere: unclosed, as objects, inside base64, inside a field, four megabytes of it", () => {
    const cases: [string, string][] = [
      ["unclosed", `{"body":${"[".repeat(200_000)}`],
      ["objects", `{"body":${deepJson(100_000, '{"a":', "}")}}`],
      ["base64", JSON.stringify({ body: Buffer.from(deepJson(100_000)).toString("base64"), properties: { body_encoding: "base64" } })],
      ["4 MB", `{"body":${deepJson(LIMITS.messageBytes / 2 - 10)}}`],
    ];
    for (const [what, data] of cases) {
      const d = decodeEventMessage(data, now);
      expect(d.events, what).toEqual([]);
      expect(d.errors, what).toHaveLength(1);
    }
    // In a field of a good event: the event is kept, the field cut at LIMITS.depth.
    const field = JSON.stringify({ body: { ...received, extra: "@" }, "content-type": "application/json" }).replace('"@"', deepJson(100_000));
    const e = only(decodeEventMessage(field, now));
    expect(JSON.stringify(e.fields.extra)).toContain("nested too deep");
    assertStorable("deep field", e.fields);
  });
});

describe("poison events cost one event: cleaned or dated, never refused by the store", () => {
  const poison = Object.fromEntries(poisonEvents(now, "u").map((p) => [p.what, p]));
  const decode = (what: string): Decoded => {
    const p = poison[what];
    if (!p) throw new Error(`no poison event ${what}`);
    return p.channel.startsWith("celery-task-meta-") ? decodeResultMeta(p.data, now) : decodeEventMessage(p.data, now);
  };

  test("NUL or a lone surrogate in the task id becomes U+FFFD", () => {
    expect(only(decode("NUL in the task id")).uuid).toBe("poison-nul-u-\uFFFD-x");
    expect(only(decode("a lone surrogate in the task id")).uuid).toBe("poison-surrogate-u-\uFFFD-x");
  });

  test("NUL and lone surrogates in names, hostnames, args and nested JSON keys and values", () => {
    const e = only(decode("NUL and lone surrogates in names, hostnames, args and nested JSON"));
    expect(e.hostname).toBe("poison\uFFFD@lab\uFFFD");
    expect(e.fields.name).toBe("poison\uFFFD.task");
    expect(e.fields.args).toBe("('\uFFFD', '\uFFFD')");
    assertStorable("fields", e.fields);
    assertStorable("batch", buildBatch([e]));
    expect(JSON.stringify(e.fields.extra)).toBe(JSON.stringify({ "k\uFFFDey": ["v\uFFFD", "\uFFFD", { deeper: "\uFFFD" }] }));
  });

  test("valid surrogate pairs (emoji) are kept, also when a cut falls inside one", () => {
    const e = only(decodeEventMessage(envelope([{ ...received, args: "😀".repeat(10), result: "😀".repeat(LIMITS.repr) }]), now));
    expect(e.fields.args).toBe("😀".repeat(10));
    expect(String(e.fields.result)).toContain("cut by Crisper");
    assertStorable("cut emoji", e.fields);
  });

  test("a timestamp in 1970, in the far future or two days ahead is taken as received, and reported", () => {
    for (const what of ["a timestamp in 1970", "a timestamp in the year 3 trillion", "a timestamp two days ahead"]) {
      const d = decode(what);
      expect(only(d).timestamp, what).toBe(now);
      expect(d.dropped.map((f) => [f.field, f.reason]), what).toEqual([["timestamp", "out_of_range"]]);
    }
    // An hour ahead (clock skew) is believed.
    const skewed = decodeEventMessage(envelope([{ ...received, timestamp: now + 3600 }]), now);
    expect(only(skewed).timestamp).toBe(now + 3600);
    expect(skewed.dropped).toEqual([]);
    // The task's times are then sane for the store.
    const patch = buildBatch([only(decode("a timestamp in the year 3 trillion"))]).tasks[0];
    expect(patch?.receivedAt).toBe(now);
  });

  test("retries, pid, active and processed that are not 32-bit integers are dropped, and reported", () => {
    const d = decode("retries 1.5 and a pid of 1e20 (integer columns)");
    const e = only(d);
    expect(e.fields.retries).toBeUndefined();
    expect(e.fields.pid).toBeUndefined();
    expect(d.dropped.map((f) => `${f.field}:${f.reason}`).sort()).toEqual(["pid:not_an_integer", "retries:not_an_integer"]);
    const hb = decode("a worker heartbeat with active 1e12 (integer column)");
    expect(only(hb).fields).toMatchObject({ pid: 7, freq: 2 });
    expect(hb.dropped.map((f) => f.field).sort()).toEqual(["active", "processed"]);
    const worker = buildBatch(hb.events).workers[0];
    expect(worker).toMatchObject({ active: null, processed: null, pid: 7 });
  });

  test("__proto__ and constructor are just keys: nothing is inherited, nothing polluted", () => {
    const e = only(decode("`__proto__` and `constructor` keys"));
    expect(Object.getPrototypeOf(e.fields)).toBeNull();
    expect(Object.keys(e.fields)).toContain("__proto__");
    expect(e.fields.name).toBe("poison.task");
    expect(e.fields.exception).toBeUndefined();
    expect(Object.getOwnPropertyDescriptor(e.fields, "constructor")?.value).toBe("x");
    expect(JSON.parse(JSON.stringify(e.fields)).__proto__).toEqual({ name: "pwned", exception: "pwned" });
    const fresh: Record<string, unknown> = {};
    expect(fresh.name).toBeUndefined();
    expect(buildBatch([e]).tasks[0]).toMatchObject({ name: "poison.task", exception: null });
  });

  test("nested objects are built without a prototype too", () => {
    const e = only(decodeEventMessage(envelope([{ ...received, extra: JSON.parse('{"__proto__": {"polluted": 1}, "a": {"constructor": {"prototype": 1}}}') }]), now));
    const extra = e.fields.extra;
    if (!isObject(extra)) throw new Error("extra is not an object");
    expect(Object.getPrototypeOf(extra)).toBeNull();
    expect(Object.keys(extra)).toEqual(["__proto__", "a"]);
    const fresh: Record<string, unknown> = {};
    expect(fresh.polluted).toBeUndefined();
  });

  test("a result with status constructor (or any Object.prototype name) is not a state", () => {
    expect(decode("a result with status `constructor`").errors.map((e) => e.reason)).toEqual(["unknown_event_type"]);
    for (const status of ["__proto__", "toString", "hasOwnProperty", "valueOf"]) {
      expect(decodeResultMeta(JSON.stringify({ status, task_id: "x" }), now).errors.map((e) => e.reason)).toEqual(["unknown_event_type"]);
    }
  });

  test("a result with a NUL id, a 1970 date_done and an exc_message nested 100,000 deep", () => {
    const d = decode("a result with NUL in its task id, a date_done in 1970 and an exc_message nested 100,000 deep");
    const e = only(d);
    expect(e.uuid).toBe("poison-result-u-\uFFFD");
    expect(e.timestamp).toBe(now);
    expect(d.dropped.map((f) => f.field)).toEqual(["date_done"]);
    expect(String(e.fields.exception)).toStartWith("ValueError(");
    assertStorable("result", e.fields);
  });
});

describe("every event is bounded: about 64 KB of fields in all", () => {
  test("400 KB each of args, kwargs, exception and traceback, and 1,000 junk fields", () => {
    const huge = poisonEvents(now, "u").find((p) => p.what.startsWith("400 KB"));
    if (!huge) throw new Error("no huge poison event");
    const e = only(decodeEventMessage(huge.data, now));
    const size = JSON.stringify(e.fields).length;
    expect(size).toBeLessThan(LIMITS.eventFields + 4096);
    for (const k of ["args", "kwargs", "exception", "traceback"]) expect(String(e.fields[k]), k).toMatch(/… \[\d+ more characters cut by Crisper\]$/);
    expect(String(e.fields.traceback).length).toBeGreaterThan(16 * 1024);
    expect(e.fields.name).toBe("poison.task");
    expect(e.fields["[cut by Crisper]"]).toBe("more fields");
  });

  test("non-string args (a list of fat strings) share the same budget", () => {
    const e = only(decodeEventMessage(envelope([{ ...received, args: Array.from({ length: 200 }, () => "a".repeat(8000)), result: { big: "r".repeat(100_000) } }]), now));
    expect(JSON.stringify(e.fields).length).toBeLessThan(LIMITS.eventFields + 4096);
    expect(JSON.stringify(e.fields.args)).toContain("more items cut by Crisper");
  });

  test("a result backend message is bounded the same way", () => {
    const d = decodeResultMeta(
      JSON.stringify({ status: "FAILURE", task_id: "r-1", args: ["a".repeat(1e6)], kwargs: { k: "k".repeat(1e6) }, traceback: "t".repeat(1e6), result: { exc_type: "E", exc_message: ["m".repeat(1e6)] } }),
      now,
    );
    expect(JSON.stringify(only(d).fields).length).toBeLessThan(LIMITS.eventFields + 4096);
  });

  test("a message of more than 10,000 events reads the first 10,000 and counts the rest", () => {
    const hb = { type: "worker-heartbeat", hostname: "w@h", timestamp: now };
    const d = decodeEventMessage(envelope(Array.from({ length: LIMITS.eventsPerMessage + 5 }, () => hb)), now);
    expect(d.events).toHaveLength(LIMITS.eventsPerMessage);
    expect(d.errors).toEqual([expect.objectContaining({ reason: "too_large", count: 5 })]);
  });
});

describe("the fast path", () => {
  test("only text that may hold NUL or surrogates is cleaned string by string", () => {
    expect(needsCleaning(envelope([received]))).toBe(false);
    expect(needsCleaning('{"a":"\\u0000"}')).toBe(true);
    expect(needsCleaning('{"a":"\\uD83D\\uDE00"}')).toBe(true);
    expect(needsCleaning('{"a":"\\udfff"}')).toBe(true);
    expect(needsCleaning('{"a":"😀"}')).toBe(true);
    expect(needsCleaning('{"a":"\\u00e9 \\u2603"}')).toBe(false);
  });
});
