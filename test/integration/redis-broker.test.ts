/**
 * The Redis broker adapter against a real redis-server and real Celery
 * workers: the event stream (db number and global_keyprefix honoured),
 * remote control with replies, queue depths by priority, the unacked set,
 * the result backend's publishes, and reconnection after a Redis restart.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Redis } from "ioredis";
import { createRedisBroker } from "../../src/broker/redis/adapter.ts";
import type { BrokerPort, RawMessage, StreamStatus } from "../../src/broker/port.ts";
import { logger } from "../../src/log.ts";
import { LiteralNumber } from "../../src/celery/python-literal.ts";
import { taskMessage } from "../../src/celery/task-message.ts";
import { readCapture } from "../fixtures/captures.ts";
import { type CeleryProcess, sendTasks, startWorker, pingUntilAnswered } from "../support/celery.ts";
import { waitUntil } from "../support/processes.ts";
import { type RedisServer, startRedis } from "../support/redis-server.ts";

const quiet = logger("test", () => {});
let redis: RedisServer;
let brokerUrl: string;
let backendUrl: string;
const workers: CeleryProcess[] = [];
const brokers: BrokerPort[] = [];

function broker(opts: { resultBackendUrl?: string; globalKeyprefix?: string; url?: string } = {}) {
  const b = createRedisBroker({ brokerUrl: opts.url ?? brokerUrl, log: quiet, ...opts });
  brokers.push(b);
  return b;
}

function collect(b: BrokerPort) {
  const messages: RawMessage[] = [];
  const statuses: StreamStatus[] = [];
  const ready = b.subscribe(
    (m) => messages.push(m),
    (s) => statuses.push(s),
  );
  return { messages, statuses, ready };
}

const bodies = (messages: RawMessage[]) =>
  messages.flatMap((m) => {
    const env = JSON.parse(m.data.toString());
    const body = JSON.parse(Buffer.from(env.body, "base64").toString());
    return Array.isArray(body) ? body : [body];
  });

beforeAll(async () => {
  redis = await startRedis();
  // A non-zero db: channel names carry it, keys live in it.
  brokerUrl = `redis://127.0.0.1:${redis.port}/2`;
  backendUrl = `redis://127.0.0.1:${redis.port}/5`;
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await Promise.all(brokers.map((b) => b.close()));
  await redis?.stop();
});

describe("Redis broker adapter", () => {
  test("queued tasks show per queue, priorities summed and split", async () => {
    await sendTasks({ brokerUrl }, [
      { task: "labapp.add", args: [1, 1] },
      { task: "labapp.add", args: [2, 2], priority: 6 },
      { task: "labapp.add", args: [3, 3], priority: 9 },
      { task: "labapp.add", args: [4, 4], priority: 7 },
      { task: "labapp.add", args: [5, 5], queue: "reports" },
    ]);
    const samples = await broker().sampleQueues(["never-declared"]);
    const byName = Object.fromEntries(samples.map((s) => [s.name, s]));
    expect(Object.keys(byName).sort()).toEqual(["celery", "never-declared", "reports"]);
    expect(byName.celery?.depth).toBe(4);
    // Priority 7 is bucketed down to the 6 step, as kombu does.
    expect(byName.celery?.byPriority).toEqual({ "0": 1, "3": 0, "6": 2, "9": 1 });
    expect(byName.reports?.depth).toBe(1);
    expect(byName["never-declared"]?.depth).toBe(0);
  });

  test("a default worker's stream, switched on by enable_events, and control replies", async () => {
    const b = broker();
    const stream = collect(b);
    await stream.ready;
    // Celery's defaults: no task events until someone asks.
    const worker = await startWorker({ brokerUrl, hostname: "adapter1@lab", concurrency: 1, queues: ["celery", "reports"] });
    workers.push(worker);
    await waitUntil(() => bodies(stream.messages).some((e) => e.type === "worker-online"), 20_000, "worker-online");
    expect(stream.messages.every((m) => m.channel.startsWith("/2.celeryev/"))).toBe(true);

    const pong = await pingUntilAnswered(b, "adapter1@lab");
    expect(pong).toEqual({ "adapter1@lab": { ok: "pong" } });
    const queues = (await b.call("active_queues", {}, { timeoutMs: 5000, limit: 1 })) as Record<string, { name: string }[]>;
    expect(queues["adapter1@lab"]?.map((q) => q.name).sort()).toEqual(["celery", "reports"]);

    // The five queued tasks ran without task events: only their task-sent was seen.
    await waitUntil(async () => (await b.sampleQueues()).every((s) => s.depth === 0), 20_000, "queues drained");
    expect(bodies(stream.messages).some((e) => e.type === "task-succeeded")).toBe(false);

    await b.broadcast("enable_events");
    const [id] = await sendTasks({ brokerUrl }, [{ task: "labapp.add", args: [20, 22] }]);
    await waitUntil(
      () => bodies(stream.messages).some((e) => e.type === "task-succeeded" && e.uuid === id),
      20_000,
      "task-succeeded after enable_events",
    );
    expect(stream.messages.some((m) => m.channel === "/2.celeryev/task.multi")).toBe(true);
    // The reply binding and list were cleaned up after each call.
    const raw = new Redis(brokerUrl);
    const binding = await raw.smembers("_kombu.binding.reply.celery.pidbox");
    expect(binding).toEqual([]);
    await raw.quit();
  });

  test("prefetched and running messages show as unacked with their task ids", async () => {
    const b = broker();
    const worker = await startWorker({ brokerUrl, hostname: "adapter2@lab", concurrency: 1, queues: ["slow"], prefetchMultiplier: 4 });
    workers.push(worker);
    const ids = await sendTasks({ brokerUrl }, [1, 2, 3].map(() => ({ task: "labapp.sleepy", args: [3], queue: "slow" })));
    await waitUntil(async () => (await b.unacked()).length >= 2, 20_000, "unacked messages");
    const unacked = await b.unacked();
    for (const m of unacked) {
      expect(ids).toContain(m.taskId as string);
      expect(m.taskName).toBe("labapp.sleepy");
      expect(m.queue).toBe("slow");
      expect(m.deliveredAt).toBeGreaterThan(Date.now() / 1000 - 60);
    }
    const slow = (await b.sampleQueues()).find((s) => s.name === "slow");
    expect(slow?.unacked).toBeGreaterThanOrEqual(2);
    expect(slow?.oldestUnackedAgeS).toBeGreaterThanOrEqual(0);
    await worker.stop();
  });

  test("the result backend's publishes arrive as their own stream", async () => {
    const b = broker({ resultBackendUrl: backendUrl });
    const stream = collect(b);
    await stream.ready;
    const worker = await startWorker({ brokerUrl, resultBackend: backendUrl, hostname: "adapter3@lab", concurrency: 1, queues: ["results"] });
    workers.push(worker);
    const [id] = await sendTasks({ brokerUrl, resultBackend: backendUrl }, [{ task: "labapp.add", args: [2, 3], queue: "results" }]);
    const published = () =>
      stream.messages.filter((m) => m.stream === "result-backend" && m.channel === `celery-task-meta-${id}`).map((m) => JSON.parse(m.data.toString()));
    await waitUntil(() => published().some((r) => r.status === "SUCCESS"), 20_000, "result publish");
    // track_started: the backend publishes STARTED (with the worker) before the result.
    expect(published().map((r) => r.status)).toEqual(["STARTED", "SUCCESS"]);
    expect(published()[1]).toMatchObject({ status: "SUCCESS", result: 5, task_id: id, name: "labapp.add", worker: "adapter3@lab" });
    expect(JSON.parse((await b.getResult(id as string)) ?? "{}")).toMatchObject({ status: "SUCCESS", result: 5 });
    expect(await b.getResult("never-existed")).toBeNull();
    await worker.stop();
  });

  test("kombu's global_keyprefix: channels and keys carry it", async () => {
    const b = broker({ globalKeyprefix: "tenant1:" });
    const stream = collect(b);
    await stream.ready;
    const raw = new Redis(brokerUrl);
    // What kombu's PrefixedStrictRedis writes: PUBLISH channel and every key prefixed.
    await raw.publish("tenant1:/2.celeryev/worker.heartbeat", JSON.stringify({ body: "e30=" }));
    await raw.publish("/2.celeryev/worker.heartbeat", JSON.stringify({ body: "e30=" }));
    await raw.sadd("tenant1:_kombu.binding.billing", "billing\x06\x16\x06\x16billing");
    await raw.lpush("tenant1:billing\x06\x163", "m1", "m2");
    await waitUntil(() => stream.messages.length >= 1, 5000, "prefixed event");
    await Bun.sleep(200);
    expect(stream.messages.map((m) => m.channel)).toEqual(["tenant1:/2.celeryev/worker.heartbeat"]);
    const billing = (await b.sampleQueues()).find((s) => s.name === "billing");
    expect(billing).toMatchObject({ depth: 2, byPriority: { "0": 0, "3": 2, "6": 0, "9": 0 } });
    await raw.quit();
  });

  test("requeueStranded moves exactly the given deliveries back, as kombu's restore does; publishTask and purgeQueue as kombu's _put and _purge", async () => {
    const url = `redis://127.0.0.1:${redis.port}/7`;
    const b = broker({ url });
    const r = new Redis(url);
    // A real kombu unacked entry (`[message, exchange, routing_key]`), captured from Celery 5.2.
    const snapshot = readCapture("celery-5.2-redis-mixed.jsonl").find((l) => l.kind === "snapshot" && "0:unacked" in l.keys);
    if (snapshot?.kind !== "snapshot") throw new Error("capture without an unacked entry");
    const captured = Object.values(snapshot.keys["0:unacked"]?.value as Record<string, string>)[0] as string;
    const [message] = JSON.parse(captured);
    // The same through a named exchange's binding, at priority 7 (step 6), and one not asked for.
    const viaExchange = JSON.stringify([{ ...message, headers: { ...message.headers, id: "t2" }, properties: { ...message.properties, priority: 7 } }, "reports", "reports"]);
    await r.sadd("_kombu.binding.reports", "reports\x06\x16\x06\x16reports");
    await r.hset("unacked", "tag1", captured, "tag2", viaExchange, "tag3", captured);
    await r.zadd("unacked_index", "1", "tag1", "2", "tag2", "3", "tag3");
    const result = await b.requeueStranded?.(["tag1", "tag2", "gone"]);
    expect(result?.requeued).toEqual([
      { deliveryTag: "tag1", taskId: message.headers.id, queues: ["celery"] },
      { deliveryTag: "tag2", taskId: "t2", queues: ["reports"] },
    ]);
    expect(result?.skipped.map((x) => x.deliveryTag)).toEqual(["gone"]);
    expect(await r.hkeys("unacked")).toEqual(["tag3"]);
    expect(await r.zrange("unacked_index", "0", "-1")).toEqual(["tag3"]);
    // On its queue's list, marked redelivered, and otherwise the message as it was.
    const [back] = await r.lrange("celery", 0, -1);
    const expected = structuredClone(message);
    expected.headers.redelivered = true;
    expected.properties.delivery_info.redelivered = true;
    expect(JSON.parse(back as string)).toEqual(expected);
    expect(JSON.parse((await r.lrange("reports\x06\x166", 0, -1))[0] as string).headers.id).toBe("t2");
    // Once moved, never again.
    expect((await b.requeueStranded?.(["tag1"]))?.requeued).toEqual([]);

    const stream = collect(b);
    await stream.ready;
    await b.publishTask?.(taskMessage({ id: "new1", task: "labapp.add", args: [new LiteralNumber("1.0"), "x"], kwargs: { k: null }, queue: "celery", priority: 9 }));
    const published = JSON.parse((await r.lrange("celery\x06\x169", 0, -1))[0] as string);
    expect(published.headers).toMatchObject({ id: "new1", task: "labapp.add", root_id: "new1", argsrepr: "(1.0, 'x')", kwargsrepr: "{'k': None}", retries: 0 });
    expect(Buffer.from(published.body, "base64").toString()).toBe('[[1.0, "x"], {"k": null}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]');
    expect(published.properties).toMatchObject({ priority: 9, body_encoding: "base64", delivery_info: { exchange: "", routing_key: "celery" } });
    await waitUntil(() => bodies(stream.messages).some((e) => e.type === "task-sent" && e.uuid === "new1"), 5000, "task-sent event");

    expect(await b.purgeQueue?.("celery")).toBe(2);
    expect(await r.exists("celery", "celery\x06\x169")).toBe(0);
    r.disconnect();
  });

  test("a Redis restart is reported as a gap and the stream comes back by itself", async () => {
    const b = broker();
    const stream = collect(b);
    await stream.ready;
    expect(stream.statuses.map((s) => s.state)).toEqual(["connected"]);
    await redis.restart();
    await waitUntil(() => stream.statuses.length >= 3, 20_000, "reconnect");
    expect(stream.statuses.map((s) => s.state)).toEqual(["connected", "disconnected", "connected"]);
    const raw = new Redis(brokerUrl);
    await waitUntil(async () => (await raw.publish("/2.celeryev/worker.heartbeat", "{}")) > 0, 10_000, "resubscribed");
    await waitUntil(() => stream.messages.some((m) => m.data.toString() === "{}"), 5000, "message after restart");
    await raw.quit();
    await b.ping();
  });
});
