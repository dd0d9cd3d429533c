/**
 * The demo's simulated cluster speaks Celery's wire format: its event
 * messages have the shape of the real captures (the same envelope, the same
 * fields per event type) and decode without a complaint through the
 * production decoder; its workers answer remote control and leave their
 * prefetched messages in `unacked`, as the Redis adapter reads them.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { RawMessage } from "../../src/broker/port.ts";
import { decodeRawMessage } from "../../src/collector/decode.ts";
import { Producer, Registry, Worker } from "../../src/demo/cluster.ts";
import { createMemoryBroker } from "../../src/demo/memory-broker.ts";
import { waitUntil } from "../support/processes.ts";
import { type CaptureLine, readCapture } from "../fixtures/captures.ts";

type Envelope = { body: string; headers: Record<string, unknown>; properties: Record<string, unknown> };
const parse = (data: string) => JSON.parse(data) as Envelope;
const body = (env: Envelope) => JSON.parse(Buffer.from(env.body, "base64").toString("utf8")) as Record<string, unknown> | Record<string, unknown>[];
const keys = (o: object) => Object.keys(o).sort();

/** For each event type in some messages: the sorted field names of its events. */
function fieldsByType(messages: { channel: string; data: string }[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of messages) {
    if (!m.channel.includes(".celeryev/")) continue;
    const b = body(parse(m.data));
    for (const e of Array.isArray(b) ? b : [b]) out.set(String(e.type), keys(e));
  }
  return out;
}

const broker = createMemoryBroker();
const received: RawMessage[] = [];
const registry = new Registry();
const worker = new Worker(broker.server, registry, { hostname: "w1@demo-test", queues: ["celery"], concurrency: 1, prefetchExtra: 2, visibilityTimeoutS: 20 });
const producer = new Producer(broker.server, registry, "gen1@demo-test");

beforeAll(async () => {
  await broker.port.subscribe((m) => received.push(m), () => {});
  worker.start();
  // A default worker sends task events only once told to, as Crisper's collector does.
  await broker.port.broadcast("enable_events");
  await waitUntil(async () => "w1@demo-test" in (await broker.port.call("ping", {}, { timeoutMs: 200 })), 5000, "the worker's pong");
});

afterAll(() => worker.kill());

describe("the demo on the wire", () => {
  test("its messages have the real captures' envelope and fields per event type, and decode cleanly", async () => {
    // A slow one first, so that the next ones wait prefetched behind it.
    producer.send({ name: "shop.tasks.resize_image", args: [1], kwargs: { width: 640 }, queue: "celery", runtimeS: 0.6 });
    producer.send({ name: "shop.tasks.send_welcome_email", args: [42], kwargs: {}, queue: "celery", runtimeS: 0.05 });
    producer.send({ name: "shop.tasks.charge_card", args: [7], kwargs: { amount_cents: 100 }, queue: "celery", runtimeS: 0.05 });

    // While the first runs, the others sit prefetched: `reserved` names them, and so does `unacked`.
    await waitUntil(async () => ((await broker.port.call("reserved", {}, { limit: 1 }))["w1@demo-test"] as unknown[])?.length === 2, 5000, "two reserved");
    const active = (await broker.port.call("active", {}, { limit: 1 }))["w1@demo-test"] as { name: string; acknowledged: boolean; delivery_info: object }[];
    expect(active.map((a) => a.name)).toEqual(["shop.tasks.resize_image"]);
    expect(keys(active[0] as object)).toEqual(["acknowledged", "args", "delivery_info", "hostname", "id", "kwargs", "name", "time_start", "type", "worker_pid"]);
    const unacked = await broker.port.unacked();
    expect(unacked.map((u) => u.taskName).sort()).toEqual(["shop.tasks.charge_card", "shop.tasks.send_welcome_email"]);
    expect(unacked.every((u) => u.queue === "celery" && u.deliveredAt !== null && typeof u.taskId === "string")).toBe(true);
    const [sample] = await broker.port.sampleQueues();
    expect(sample).toMatchObject({ name: "celery", depth: 0, unacked: 2 });

    await waitUntil(() => received.some((m) => m.data.length > 0 && JSON.stringify(body(parse(m.data))).includes("task-succeeded")), 5000, "a task-succeeded");
    await waitUntil(async () => (await broker.port.unacked()).length === 0, 5000, "every message acknowledged");
    await waitUntil(() => received.some((m) => m.channel.endsWith("/worker.heartbeat")), 5000, "a heartbeat (every 2 s)");
    await Bun.sleep(300);

    // Through the production decoder: no message refused, no field dropped.
    for (const m of received) {
      const d = decodeRawMessage(m);
      expect(d.errors).toEqual([]);
      expect(d.dropped).toEqual([]);
      expect(d.events.length).toBeGreaterThan(0);
    }

    const capture = readCapture("celery-5.2-redis-mixed.jsonl").filter((l): l is Extract<CaptureLine, { kind: "pubsub" }> => l.kind === "pubsub");
    const real = fieldsByType(capture);
    const demo = fieldsByType(received);
    for (const type of ["task-sent", "task-received", "task-started", "task-succeeded", "worker-online", "worker-heartbeat"]) {
      expect({ type, fields: demo.get(type) }).toEqual({ type, fields: real.get(type) });
    }
    // The envelope around them, key for key.
    const realEvent = parse((capture.find((l) => l.channel.endsWith("/task.multi")) as { data: string }).data);
    const demoEvent = parse((received.find((m) => m.channel.endsWith("/task.multi")) as RawMessage).data);
    expect(keys(demoEvent)).toEqual(keys(realEvent));
    expect(keys(demoEvent.properties)).toEqual(keys(realEvent.properties));
    expect(keys(demoEvent.headers)).toEqual(keys(realEvent.headers));
    expect(received.map((m) => m.channel)).toContain("/0.celeryev/task.sent");
  });

  test("a killed worker says nothing more and leaves its prefetched messages unacknowledged", async () => {
    const before = received.length;
    const id = producer.send({ name: "shop.tasks.resize_image", args: [2], kwargs: {}, queue: "celery", runtimeS: 30 });
    producer.send({ name: "shop.tasks.resize_image", args: [3], kwargs: {}, queue: "celery", runtimeS: 30 });
    await waitUntil(() => worker.holding().active === 1 && worker.holding().reserved === 1, 5000, "one running, one prefetched");
    await Bun.sleep(200);
    worker.kill();
    const afterKill = received.length;
    expect(afterKill).toBeGreaterThan(before);
    await Bun.sleep(2500);
    // No worker-offline, no heartbeat: silence.
    expect(received.length).toBe(afterKill);
    // The running one was acknowledged at its start; the prefetched one stays in `unacked`.
    const left = await broker.port.unacked();
    expect(left).toHaveLength(1);
    expect(left[0]?.taskId).not.toBe(id);
    expect(await broker.port.call("ping", {}, { timeoutMs: 200 })).toEqual({});
  });
});
