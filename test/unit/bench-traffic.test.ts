/** The benchmark's synthetic traffic decodes exactly like real Celery traffic. */
import { expect, test } from "bun:test";
import { TrafficGenerator } from "../../bench/traffic.ts";
import { decodeEventMessage } from "../../src/celery/envelope.ts";
import { decodeEventBody } from "../../src/celery/envelope.ts";
import { taskPatchesFromEvents } from "../../src/state/task-patch.ts";

test("every generated message decodes; each task ends SUCCESS with its four events", () => {
  const g = new TrafficGenerator();
  const messages = [];
  for (let i = 0; i < 100; i++) messages.push(...g.task(`00000000-0000-4000-8000-${String(i).padStart(12, "0")}`, 1_800_000_000 + i));
  messages.push(...g.flush(), ...g.heartbeats(1_800_000_100));
  const decoded = messages.map((m) => decodeEventMessage(m.data, 1_800_000_200));
  expect(decoded.flatMap((d) => d.errors)).toEqual([]);
  const events = decoded.flatMap((d) => d.events);
  expect(events.filter((e) => e.uuid).length).toBe(400);
  const tasks = taskPatchesFromEvents(events);
  expect(tasks.size).toBe(100);
  expect([...tasks.values()].every((t) => t.state === "SUCCESS")).toBe(true);
});

test("the RabbitMQ form (bare bodies, routing keys) decodes the same", () => {
  const g = new TrafficGenerator(0, undefined, undefined, "amqp");
  const messages = [];
  for (let i = 0; i < 50; i++) messages.push(...g.task(`00000000-0000-4000-8000-${String(i).padStart(12, "0")}`, 1_800_000_000 + i));
  messages.push(...g.flush(), ...g.heartbeats(1_800_000_100));
  expect(new Set(messages.map((m) => m.channel))).toEqual(new Set(["task.sent", "task.multi", "worker.heartbeat"]));
  const decoded = messages.map((m) => decodeEventBody(m.data, "application/json", 1_800_000_200));
  expect(decoded.flatMap((d) => d.errors)).toEqual([]);
  const tasks = taskPatchesFromEvents(decoded.flatMap((d) => d.events));
  expect(tasks.size).toBe(50);
  expect([...tasks.values()].every((t) => t.state === "SUCCESS")).toBe(true);
});
