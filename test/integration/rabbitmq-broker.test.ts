/**
 * The RabbitMQ broker adapter against a real rabbitmq-server and real
 * Celery workers on amqp://: Crisper's own event queue (declared as
 * configured, kept while nobody consumes, acknowledged only once settled),
 * remote control with replies, queue depths (priority queues too) and
 * consumers, unacked messages as the workers report them, the management
 * API's counts, a Redis result backend, and reconnection after a restart.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import amqplib from "amqplib";
import { createAmqpBroker } from "../../src/broker/amqp/adapter.ts";
import type { BrokerPort, RawMessage, StreamStatus } from "../../src/broker/port.ts";
import { logger } from "../../src/log.ts";
import { LiteralNumber } from "../../src/celery/python-literal.ts";
import { taskMessage } from "../../src/celery/task-message.ts";
import { type CeleryProcess, sendTasks, startWorker, pingUntilAnswered } from "../support/celery.ts";
import { waitUntil } from "../support/processes.ts";
import { type RabbitServer, startRabbit } from "../support/rabbitmq-server.ts";
import { type RedisServer, startRedis } from "../support/redis-server.ts";

const quiet = logger("test", () => {});
let rabbit: RabbitServer;
let redis: RedisServer;
let brokerUrl: string;
let backendUrl: string;
const workers: CeleryProcess[] = [];
const brokers: BrokerPort[] = [];

function broker(opts: { resultBackendUrl?: string; eventQueue?: string; managementUrl?: string; eventQueueMaxBytes?: number } = {}) {
  const b = createAmqpBroker({ brokerUrl, log: quiet, eventQueue: "crisper.test", ...opts });
  brokers.push(b);
  return b;
}

/** Subscribes; settles every message at once unless told not to. */
function collect(b: BrokerPort, settle = true) {
  const messages: RawMessage[] = [];
  const statuses: StreamStatus[] = [];
  const ready = b.subscribe(
    (m) => {
      messages.push(m);
      if (settle) m.settle?.();
    },
    (s) => statuses.push(s),
  );
  return { messages, statuses, ready };
}

const events = (messages: RawMessage[]) =>
  messages
    .filter((m) => m.stream === "events")
    .flatMap((m) => {
      const body = JSON.parse(m.data);
      return Array.isArray(body) ? body : [body];
    });

/** A plain client, as a second party looking at the broker. */
async function raw() {
  const conn = await amqplib.connect(brokerUrl.replace(/\/\/$/, "/%2F"));
  const ch = await conn.createChannel();
  return { conn, ch };
}

beforeAll(async () => {
  const t0 = performance.now();
  [rabbit, redis] = await Promise.all([startRabbit(), startRedis()]);
  console.log(`[rabbitmq] up in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  brokerUrl = rabbit.url;
  backendUrl = `redis://127.0.0.1:${redis.port}/3`;
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await Promise.all(brokers.map((b) => b.close()));
  await Promise.all([rabbit?.stop(), redis?.stop()]);
});

describe("RabbitMQ broker adapter", () => {
  test("queued tasks show before any worker: depth, a priority queue's depth, a known queue not declared", async () => {
    await sendTasks({ brokerUrl }, [
      { task: "labapp.add", args: [1, 1] },
      { task: "labapp.add", args: [2, 2] },
      { task: "labapp.add", args: [5, 5], queue: "reports" },
    ]);
    const { conn, ch } = await raw();
    await ch.assertQueue("urgent", { durable: true, maxPriority: 10 });
    for (const priority of [0, 5, 9]) ch.sendToQueue("urgent", Buffer.from("{}"), { priority });
    await ch.close();
    await conn.close();
    const b = broker();
    const samples = await b.sampleQueues(["reports", "urgent", "never-declared"]);
    const byName = Object.fromEntries(samples.map((s) => [s.name, s]));
    // `celery` is looked at unasked: Celery's default queue.
    expect(Object.keys(byName).sort()).toEqual(["celery", "never-declared", "reports", "urgent"]);
    expect(byName.celery).toMatchObject({ depth: 2, consumers: 0, unacked: 0 });
    expect(byName.reports?.depth).toBe(1);
    expect(byName.urgent?.depth).toBe(3);
    expect(byName["never-declared"]?.depth).toBe(0);
    expect(b.capabilities).toEqual({ listsUnacked: false, countsUnacked: false, strandsPrefetched: false });
  });

  test("a default worker's events, switched on by enable_events, and control replies", async () => {
    const b = broker();
    const stream = collect(b);
    await stream.ready;
    expect(stream.statuses.map((s) => s.state)).toEqual(["connected"]);
    const worker = await startWorker({ brokerUrl, hostname: "amqp1@lab", concurrency: 1, queues: ["celery", "reports"] });
    workers.push(worker);
    await waitUntil(() => events(stream.messages).some((e) => e.type === "worker-online" && e.hostname === "amqp1@lab"), 20_000, "worker-online");
    // Routing keys as the channel, the content type beside a bare JSON body.
    expect(stream.messages.some((m) => m.channel === "worker.online" && m.contentType === "application/json")).toBe(true);

    const pong = await pingUntilAnswered(b, "amqp1@lab");
    expect(pong).toEqual({ "amqp1@lab": { ok: "pong" } });
    const queues = (await b.call("active_queues", {}, { timeoutMs: 5000, limit: 1 })) as Record<string, { name: string }[]>;
    expect(queues["amqp1@lab"]?.map((q) => q.name).sort()).toEqual(["celery", "reports"]);

    // The queued tasks ran without task events: only their task-sent was seen.
    await waitUntil(async () => (await b.sampleQueues(["reports"])).every((s) => s.depth === 0), 20_000, "queues drained");
    expect(events(stream.messages).some((e) => e.type === "task-succeeded")).toBe(false);
    const celery = (await b.sampleQueues()).find((s) => s.name === "celery");
    expect(celery?.consumers).toBe(1);

    await b.broadcast("enable_events");
    const [id] = await sendTasks({ brokerUrl }, [{ task: "labapp.add", args: [20, 22] }]);
    await waitUntil(() => events(stream.messages).some((e) => e.type === "task-succeeded" && e.uuid === id), 20_000, "task-succeeded after enable_events");
    expect(stream.messages.some((m) => m.channel === "task.multi")).toBe(true);
    // Each call's reply queue went away with it.
    const names = (await rabbit.ctl("list_queues", "name", "--quiet")).split("\n");
    expect(names.filter((n) => n.endsWith(".reply.celery.pidbox"))).toEqual([]);
    await worker.stop();
  });

  test("the event queue is Crisper's own: declared as configured, it keeps events while nobody reads", async () => {
    const b = broker({ eventQueue: "crisper.keep", eventQueueMaxBytes: 1_000_000 });
    const first = collect(b);
    await first.ready;
    const line = (await rabbit.ctl("list_queues", "name", "durable", "arguments", "--quiet")).split("\n").find((l) => l.startsWith("crisper.keep\t"));
    expect(line).toContain("true");
    expect(line).toContain("x-expires");
    expect(line).toContain("86400000");
    expect(line).toContain("1000000");
    expect(line).toContain("drop-head");
    await b.close();

    // Nobody subscribed: events published now wait in the queue.
    const { conn, ch } = await raw();
    for (let i = 0; i < 5; i++) {
      ch.publish("celeryev", "worker.heartbeat", Buffer.from(JSON.stringify({ type: "worker-heartbeat", hostname: `kept${i}@lab`, timestamp: 1 })), {
        contentType: "application/json",
      });
    }
    await ch.close();
    await conn.close();
    await waitUntil(async () => (await rabbit.ctl("list_queues", "name", "messages", "--quiet")).includes("crisper.keep\t5"), 10_000, "5 waiting");

    const again = broker({ eventQueue: "crisper.keep", eventQueueMaxBytes: 1_000_000 });
    const second = collect(again);
    await second.ready;
    await waitUntil(() => second.messages.length >= 5, 10_000, "kept events delivered");
    expect(events(second.messages).map((e) => e.hostname)).toEqual(["kept0@lab", "kept1@lab", "kept2@lab", "kept3@lab", "kept4@lab"]);
  });

  test("a delivery is acknowledged only once settled: what a collector held unsettled comes to the next one", async () => {
    const b = broker({ eventQueue: "crisper.acks" });
    const first = collect(b, false);
    await first.ready;
    const { conn, ch } = await raw();
    const publish = (i: number) =>
      ch.publish("celeryev", "worker.heartbeat", Buffer.from(JSON.stringify({ type: "worker-heartbeat", hostname: `h${i}@lab`, timestamp: i })), {
        contentType: "application/json",
      });
    for (let i = 0; i < 6; i++) publish(i);
    await waitUntil(() => first.messages.length >= 6, 10_000, "6 delivered");
    // Settled out of order: 0, 1 and 3 now. Only 0 and 1 may be acknowledged (in order).
    for (const i of [3, 1, 0]) first.messages[i]?.settle?.();
    await waitUntil(async () => (await rabbit.ctl("list_queues", "name", "messages_unacknowledged", "--quiet")).includes("crisper.acks\t4"), 10_000, "4 unacked");
    // The collector dies (its connection closes) before settling the rest.
    await b.close();

    const next = broker({ eventQueue: "crisper.acks" });
    const second = collect(next);
    await second.ready;
    await waitUntil(() => second.messages.length >= 4, 10_000, "redelivered");
    await Bun.sleep(300);
    expect(events(second.messages).map((e) => e.hostname)).toEqual(["h2@lab", "h3@lab", "h4@lab", "h5@lab"]);
    await waitUntil(async () => (await rabbit.ctl("list_queues", "name", "messages", "--quiet")).includes("crisper.acks\t0"), 10_000, "all acked");
    await ch.close();
    await conn.close();
  });

  test("two collectors on one queue share it; when one dies, the other gets what it held, and nothing is lost", async () => {
    const a = broker({ eventQueue: "crisper.shared" });
    const b = broker({ eventQueue: "crisper.shared" });
    // A receives but never commits (it is about to be killed); B commits everything.
    const held = collect(a, false);
    const carried = collect(b);
    await Promise.all([held.ready, carried.ready]);
    const { conn, ch } = await raw();
    for (let i = 0; i < 100; i++) {
      ch.publish("celeryev", "worker.heartbeat", Buffer.from(JSON.stringify({ type: "worker-heartbeat", hostname: `s${i}@lab`, timestamp: i })), {
        contentType: "application/json",
      });
    }
    await waitUntil(() => held.messages.length + carried.messages.length >= 100, 10_000, "100 delivered");
    // RabbitMQ hands them out in turn.
    expect(held.messages.length).toBeGreaterThan(0);
    expect(carried.messages.length).toBeGreaterThan(0);
    await a.close();
    await waitUntil(() => new Set(events(carried.messages).map((e) => e.hostname)).size >= 100, 10_000, "all 100 at the survivor");
    expect(new Set(events(carried.messages).map((e) => e.hostname)).size).toBe(100);
    await ch.close();
    await conn.close();
  });

  test("prefetched and late-acked running tasks are unacked, as the worker reports them; the management API counts them", async () => {
    const b = broker({ managementUrl: rabbit.managementUrl });
    expect(b.capabilities.countsUnacked).toBe(true);
    const worker = await startWorker({ brokerUrl, hostname: "amqp2@lab", concurrency: 1, queues: ["slow"], prefetchMultiplier: 4, acksLate: true });
    workers.push(worker);
    const ids = await sendTasks({ brokerUrl }, [1, 2, 3].map(() => ({ task: "labapp.sleepy", args: [8], queue: "slow" })));
    await waitUntil(async () => (await b.unacked()).filter((m) => m.deliveredAt !== null).length === 1, 20_000, "one running");
    const unacked = await b.unacked();
    expect(unacked.map((m) => m.taskId).sort()).toEqual([...ids].sort());
    for (const m of unacked) {
      expect(m.taskName).toBe("labapp.sleepy");
      expect(m.queue).toBe("slow");
      expect(m.redelivered).toBe(false);
    }
    const running = unacked.find((m) => m.deliveredAt !== null);
    expect(running?.deliveredAt).toBeGreaterThan(Date.now() / 1000 - 60);
    // The management API's figures lag a few seconds behind.
    await waitUntil(async () => ((await b.sampleQueues()).find((s) => s.name === "slow")?.unacked ?? 0) >= 2, 20_000, "unacked counted");
    // A queue nobody named, found through the management API.
    const { conn, ch } = await raw();
    await ch.assertQueue("discovered", { durable: true });
    await ch.close();
    await conn.close();
    await waitUntil(async () => (await b.sampleQueues()).some((s) => s.name === "discovered"), 20_000, "discovered queue");
    await worker.stop();
  });

  test("the node's health from the management API: memory against the watermark, no alarm; none without the API", async () => {
    expect(broker().health).toBeUndefined();
    const b = broker({ managementUrl: rabbit.managementUrl });
    // A node's figures appear in the API once its statistics were first collected.
    let h: Awaited<ReturnType<NonNullable<BrokerPort["health"]>>> | undefined;
    await waitUntil(async () => (h = await b.health?.())?.usedMemoryBytes != null, 30_000, "the node's memory figures");
    expect(h).toMatchObject({ kind: "rabbitmq", memoryAlarm: false, diskAlarm: false, maxMemoryPolicy: null, evictedKeys: null });
    expect(h?.version).toMatch(/^\d+\.\d+/);
    expect(h?.usedMemoryBytes).toBeGreaterThan(0);
    // The default high watermark: a share of the machine's memory, above what the node uses.
    expect(h?.maxMemoryBytes).toBeGreaterThan(h?.usedMemoryBytes ?? Infinity);
    expect(h?.uptimeS).toBeGreaterThan(0);
    expect(h?.diskFreeBytes).toBeGreaterThan(0);
    // Connections: a number (none of this test's own: health asks over HTTP only).
    expect(typeof h?.connectedClients).toBe("number");
  });

  test("a Redis result backend with a RabbitMQ broker: its publishes arrive as their own stream", async () => {
    const b = broker({ resultBackendUrl: backendUrl, eventQueue: "crisper.results" });
    const stream = collect(b);
    await stream.ready;
    const worker = await startWorker({ brokerUrl, resultBackend: backendUrl, hostname: "amqp3@lab", concurrency: 1, queues: ["results"] });
    workers.push(worker);
    const [id] = await sendTasks({ brokerUrl, resultBackend: backendUrl }, [{ task: "labapp.add", args: [2, 3], queue: "results" }]);
    const published = () => stream.messages.filter((m) => m.stream === "result-backend" && m.channel === `celery-task-meta-${id}`).map((m) => JSON.parse(m.data));
    await waitUntil(() => published().some((r) => r.status === "SUCCESS"), 20_000, "result publish");
    expect(JSON.parse((await b.getResult(id as string)) ?? "{}")).toMatchObject({ status: "SUCCESS", result: 5 });
    await worker.stop();
  });

  test("a task published as Celery's producer does runs on a real worker; a purge empties a queue", async () => {
    const b = broker({ resultBackendUrl: backendUrl, eventQueue: "crisper.actions" });
    const worker = await startWorker({ brokerUrl, resultBackend: backendUrl, hostname: "amqp4@lab", concurrency: 1, queues: ["retried"] });
    workers.push(worker);
    const id = crypto.randomUUID();
    await b.publishTask?.(taskMessage({ id, task: "labapp.add", args: [new LiteralNumber("20"), new LiteralNumber("22")], kwargs: {}, queue: "retried", priority: 5 }));
    await waitUntil(async () => JSON.parse((await b.getResult(id)) ?? "{}").status === "SUCCESS", 20_000, "published task ran");
    expect(JSON.parse((await b.getResult(id)) ?? "{}")).toMatchObject({ result: 42, name: "labapp.add", args: [20, 22], queue: "retried" });
    await worker.stop();
    await sendTasks({ brokerUrl }, [1, 2].map((i) => ({ task: "labapp.add", args: [i, i], queue: "parked" })));
    expect(await b.purgeQueue?.("parked")).toBe(2);
    expect(await b.purgeQueue?.("no-such-queue")).toBe(0);
    expect(b.requeueStranded).toBeUndefined();
  });

  test("a RabbitMQ restart is reported as a drop and the stream comes back by itself", async () => {
    const b = broker({ eventQueue: "crisper.restart" });
    const stream = collect(b);
    await stream.ready;
    expect(stream.statuses.map((s) => s.state)).toEqual(["connected"]);
    await rabbit.restart();
    await waitUntil(() => stream.statuses.length >= 3, 60_000, "reconnect");
    expect(stream.statuses.map((s) => s.state)).toEqual(["connected", "disconnected", "connected"]);
    expect(stream.statuses[1]).toMatchObject({ reason: expect.stringContaining("broker (events)") });
    const { conn, ch } = await raw();
    ch.publish("celeryev", "worker.heartbeat", Buffer.from(JSON.stringify({ type: "worker-heartbeat", hostname: "back@lab", timestamp: 1 })), {
      contentType: "application/json",
    });
    await waitUntil(() => events(stream.messages).some((e) => e.hostname === "back@lab"), 10_000, "event after restart");
    await ch.close();
    await conn.close();
    await b.ping();
  });
});
