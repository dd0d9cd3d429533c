/**
 * Bad input gets a reason and never throws: malformed envelopes, other
 * serializers, unknown event types, huge or hostile fields.
 */
import { describe, expect, test } from "bun:test";
import { LIMITS } from "../../src/celery/bounds.ts";
import { decodeEventMessage } from "../../src/celery/envelope.ts";
import { decodeResultMeta } from "../../src/celery/result-meta.ts";

const now = 1_800_000_000;
function envelope(body: unknown, extra: Record<string, unknown> = {}) {
  return JSON.stringify({
    body: Buffer.from(JSON.stringify(body)).toString("base64"),
    "content-encoding": "utf-8",
    "content-type": "application/json",
    headers: {},
    properties: { body_encoding: "base64", delivery_info: { exchange: "celeryev", routing_key: "task.multi" } },
    ...extra,
  });
}
const started = { type: "task-started", uuid: "a-1", hostname: "w1@h", timestamp: now, clock: 1, pid: 7 };

describe("decode rejects with a reason", () => {
  const cases: [string, string | Uint8Array, string][] = [
    ["not JSON", "hello", "not_json"],
    ["JSON without body", JSON.stringify({ a: 1 }), "not_envelope"],
    ["pickle", envelope(started, { "content-type": "application/x-python-serialize" }), "unsupported_serializer"],
    ["msgpack", envelope(started, { "content-type": "application/x-msgpack" }), "unsupported_serializer"],
    ["bad base64", JSON.stringify({ body: "%%%not base64", properties: { body_encoding: "base64" } }), "bad_base64"],
    ["body not JSON", JSON.stringify({ body: Buffer.from("{nope").toString("base64"), properties: { body_encoding: "base64" } }), "bad_body_json"],
    ["unknown type", envelope({ ...started, type: "task-progress" }), "unknown_event_type"],
    ["no uuid", envelope({ ...started, uuid: undefined }), "missing_fields"],
    ["no hostname", envelope({ ...started, hostname: 3 }), "missing_fields"],
    ["no timestamp", envelope({ ...started, timestamp: "yesterday" }), "missing_fields"],
    ["a number", envelope(42), "not_an_event"],
    ["too large", "x".repeat(LIMITS.messageBytes + 1), "too_large"],
  ];
  for (const [what, data, reason] of cases) {
    test(what, () => {
      const d = decodeEventMessage(data, now);
      expect(d.events).toEqual([]);
      expect(d.errors.map((e) => e.reason)).toEqual([reason as never]);
      expect(d.errors[0]?.detail.length).toBeLessThan(300);
    });
  }
});

describe("a batch keeps its good events when one is bad", () => {
  test("task.multi with one unknown and one valid event", () => {
    const d = decodeEventMessage(envelope([{ ...started, type: "task-bogus" }, started]), now);
    expect(d.events.map((e) => e.type)).toEqual(["task-started"]);
    expect(d.errors.map((e) => e.reason)).toEqual(["unknown_event_type"]);
  });
});

describe("hostile fields are bounded and made storable", () => {
  test("huge args are cut with a note, NUL and lone surrogates replaced", () => {
    const d = decodeEventMessage(
      envelope({ ...started, type: "task-received", args: "A".repeat(100_000), kwargs: "a\u0000b\ud800c", name: "n".repeat(10_000) }),
      now,
    );
    const f = d.events[0]?.fields ?? {};
    expect(String(f.args).length).toBeLessThan(LIMITS.repr + 100);
    expect(String(f.args)).toContain("more characters cut by Crisper");
    expect(f.kwargs).toBe("a\uFFFDb\uFFFDc");
    expect(String(f.name).length).toBeLessThan(LIMITS.name + 100);
  });

  test("deeply nested unknown fields are cut", () => {
    let deep: unknown = "bottom";
    for (let i = 0; i < 50; i++) deep = { d: deep };
    const d = decodeEventMessage(envelope({ ...started, extra: deep, list: Array.from({ length: 10_000 }, (_, i) => i) }), now);
    const f = d.events[0]?.fields ?? {};
    expect(JSON.stringify(f.extra)).toContain("nested too deep");
    expect((f.list as unknown[]).length).toBe(LIMITS.items + 1);
  });

  test("a body sent as raw JSON rather than base64 still decodes", () => {
    const d = decodeEventMessage(JSON.stringify({ body: started, "content-type": "application/json", properties: {} }), now);
    expect(d.events.map((e) => e.uuid)).toEqual(["a-1"]);
  });
});

describe("result backend messages", () => {
  test("a FAILURE result becomes a task-failed with the exception in Python's words", () => {
    const d = decodeResultMeta(
      JSON.stringify({
        status: "FAILURE",
        result: { exc_type: "ValueError", exc_message: ["card declined"], exc_module: "builtins" },
        traceback: "Traceback…\nValueError: card declined\n",
        date_done: "2026-11-23T23:20:41.013000",
        task_id: "t-1",
        worker: "w1@h",
      }),
      now,
    );
    expect(d.errors).toEqual([]);
    expect(d.events[0]).toMatchObject({
      type: "task-failed",
      uuid: "t-1",
      hostname: "w1@h",
      source: "result-backend",
      fields: { exception: "ValueError('card declined')" },
    });
    expect(d.events[0]?.timestamp).toBeCloseTo(Date.parse("2026-11-23T23:20:41.013Z") / 1000, 3);
  });

  test("garbage and custom states are rejected with reasons", () => {
    expect(decodeResultMeta("not json", now).errors[0]?.reason).toBe("not_json");
    expect(decodeResultMeta(JSON.stringify({ status: "PROGRESS", task_id: "x" }), now).errors[0]?.reason).toBe("unknown_event_type");
    expect(decodeResultMeta(JSON.stringify({ status: "SUCCESS" }), now).errors[0]?.reason).toBe("missing_fields");
  });
});
