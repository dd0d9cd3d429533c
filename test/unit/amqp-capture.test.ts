/**
 * The RabbitMQ capture (real Celery 5.2.6 on RabbitMQ 3.10: every event
 * message, as Crisper's event queue received it) decodes as the AMQP
 * adapter hands it over, a bare JSON body with its content type beside
 * it, into the same task truth as on Redis.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { RawMessage } from "../../src/broker/port.ts";
import { decodeRawMessage } from "../../src/collector/decode.ts";
import { taskPatchesFromEvents } from "../../src/state/task-patch.ts";
import { FIXTURES_DIR } from "../fixtures/captures.ts";

interface AmqpLine {
  kind: "amqp";
  t: number;
  routing_key: string;
  properties: { content_type?: string };
  body: unknown;
}

const messages: RawMessage[] = readFileSync(join(FIXTURES_DIR, "celery-5.2-rabbitmq-mixed.jsonl"), "utf8")
  .split("\n")
  .filter((l) => l.trim())
  .map((l): AmqpLine => JSON.parse(l))
  .filter((l) => l.kind === "amqp")
  .map((l) => ({ stream: "events", channel: l.routing_key, data: JSON.stringify(l.body), contentType: l.properties.content_type ?? "", receivedAt: l.t }));

describe("the RabbitMQ capture", () => {
  const decoded = messages.map(decodeRawMessage);
  const events = decoded.flatMap((d) => d.events);
  const tasks = [...taskPatchesFromEvents(events).values()];
  const byName = (name: string) => tasks.filter((t) => t.name === name);

  test("every message decodes without error; task.multi carries several events", () => {
    expect(messages.length).toBeGreaterThan(40);
    expect(decoded.flatMap((d) => d.errors)).toEqual([]);
    expect(decoded.some((d, i) => messages[i]?.channel === "task.multi" && d.events.length > 1)).toBe(true);
  });

  test("states, exception and retries are Celery's", () => {
    expect(byName("labapp.add").map((t) => t.state)).toEqual(["SUCCESS", "SUCCESS"]);
    expect(byName("labapp.boom")[0]).toMatchObject({ state: "FAILURE" });
    const flaky = byName("labapp.flaky")[0];
    expect(flaky).toMatchObject({ state: "FAILURE", retries: 2 });
    // The events-off worker's task, sent after enable_events, ran on it.
    expect(byName("labapp.add").some((t) => t.worker === "quiet@lab")).toBe(true);
  });

  test("a body in another serializer is refused with the reason, never decoded", () => {
    const d = decodeRawMessage({ stream: "events", channel: "task.multi", data: "\x80\x04\x95", contentType: "application/x-python-serialize", receivedAt: 1 });
    expect(d.events).toEqual([]);
    expect(d.errors[0]?.reason).toBe("unsupported_serializer");
    const bad = decodeRawMessage({ stream: "events", channel: "task.multi", data: "{not json", contentType: "application/json", receivedAt: 1 });
    expect(bad.errors[0]?.reason).toBe("bad_body_json");
  });
});
