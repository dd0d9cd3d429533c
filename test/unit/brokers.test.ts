/**
 * Several brokers: reading BROKERS, and what a RabbitMQ event queue's
 * dropped messages tell (on the real RabbitMQ capture, as the overflow queue
 * receives them: the bodies as published).
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { droppedEvents } from "../../src/broker/amqp/events.ts";
import { decodeRawMessage } from "../../src/collector/decode.ts";
import { brokerSpecs, parseConfig } from "../../src/config.ts";
import { FIXTURES_DIR } from "../fixtures/captures.ts";

describe("BROKERS", () => {
  const parse = (BROKERS: string) => parseConfig({ BROKERS });

  test("name=url entries, Redis and RabbitMQ mixed; BROKER_URL alone is the broker named default", () => {
    const r = parse(" eu=redis://:secret@h1:6379/0 ; us-2=amqp://u:p@h2:5672/prod ");
    if ("error" in r) throw new Error(r.error);
    expect(brokerSpecs(r.config)).toEqual([
      { name: "eu", url: "redis://:secret@h1:6379/0" },
      { name: "us-2", url: "amqp://u:p@h2:5672/prod" },
    ]);
    const one = parseConfig({ BROKER_URL: "amqp://h//" });
    if ("error" in one) throw new Error(one.error);
    expect(brokerSpecs(one.config)).toEqual([{ name: "default", url: "amqp://h//" }]);
  });

  test("bad names, twice the same name, or a bad URL: one line, never the password", () => {
    for (const [value, says] of [
      ["EU=redis://h", "names of 1-32 characters"],
      ["e u=redis://h", "names of 1-32 characters"],
      [`${"x".repeat(33)}=redis://h`, "names of 1-32 characters"],
      ["a=redis://h;a=redis://h2", 'the name "a" is given twice'],
      ["a=http://user:hunter2@h", "a: expected redis://"],
      ["a=amqp://user:hunter2@h:notaport/", "a:"],
      [";", "expected name=url"],
    ] as const) {
      const r = parse(value);
      expect("error" in r ? r.error : "").toContain(says);
      expect("error" in r ? r.error : "").toStartWith("BROKERS:");
      expect("error" in r ? r.error : "").not.toContain("hunter2");
    }
  });
});

describe("an overflowed event queue's dropped messages", () => {
  const bodies = readFileSync(join(FIXTURES_DIR, "celery-5.2-rabbitmq-mixed.jsonl"), "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { kind: string; routing_key: string; properties: { content_type?: string }; body: unknown })
    .filter((l) => l.kind === "amqp");

  test("name the tasks and the times of every event they carry, task.multi lists included", () => {
    for (const l of bodies) {
      const data = JSON.stringify(l.body);
      const events = decodeRawMessage({ stream: "events", channel: l.routing_key, data, contentType: l.properties.content_type ?? "", receivedAt: 0 }).events;
      const seen = droppedEvents(data);
      const ids = [...new Set(events.map((e) => e.uuid).filter((u) => u))];
      expect(seen.taskIds.sort()).toEqual((ids as string[]).sort());
      // As the workers stamped them (the decoder keeps its own clock beside them).
      const sent = (Array.isArray(l.body) ? l.body : [l.body]) as { timestamp: number }[];
      const times = sent.map((e) => e.timestamp);
      expect(seen.from).toBeCloseTo(Math.min(...times), 3);
      expect(seen.to).toBeCloseTo(Math.max(...times), 3);
    }
    expect(bodies.some((l) => l.routing_key === "task.multi" && droppedEvents(JSON.stringify(l.body)).taskIds.length > 1)).toBe(true);
  });

  test("a body that says nothing usable names nothing", () => {
    expect(droppedEvents("not json")).toEqual({ from: null, to: null, taskIds: [] });
    expect(droppedEvents('{"uuid": "<script>", "timestamp": -1}')).toEqual({ from: null, to: null, taskIds: [] });
  });
});
