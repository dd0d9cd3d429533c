/**
 * Celery-shaped event traffic for benchmarks, built like the real captures
 * (test/fixtures/captures): producers' task-sent one per message on
 * `task.sent`; workers' task events batched as JSON lists on `task.multi`;
 * heartbeats on `worker.heartbeat`. On Redis each message is a kombu JSON
 * envelope with a base64 body on a PUB/SUB channel; on RabbitMQ it is the
 * bare JSON body, published to the `celeryev` exchange with its routing key.
 */

import amqplib from "amqplib";
import Redis from "ioredis";

export interface PublishedMessage {
  /** Redis: the PUB/SUB channel; RabbitMQ: the routing key. */
  channel: string;
  data: string;
}

/** How a broker carries Celery's events: kombu's envelope (Redis) or a bare body (AMQP). */
export type Wire = "redis" | "amqp";

let tag = 0;
function envelope(body: unknown, routingKey: string, hostname: string): string {
  return JSON.stringify({
    body: Buffer.from(JSON.stringify(body)).toString("base64"),
    "content-encoding": "utf-8",
    "content-type": "application/json",
    headers: { hostname },
    properties: {
      delivery_mode: 1,
      delivery_info: { exchange: "celeryev", routing_key: routingKey },
      priority: 0,
      body_encoding: "base64",
      delivery_tag: `bench-${++tag}`,
    },
  });
}

const NAMES = ["app.tasks.send_email", "app.tasks.charge_card", "app.reports.build", "app.ml.infer"];

export class TrafficGenerator {
  private clock = 0;
  private seq = 0;
  /** Task events waiting to be flushed as one task.multi per worker. */
  private pending = new Map<string, Record<string, unknown>[]>();

  constructor(
    readonly db = 0,
    readonly workers = Array.from({ length: 8 }, (_, i) => `bench${i}@host`),
    /** Celery's worker flushes task events in groups (buffer_limit 24 by default). */
    readonly multiSize = 16,
    readonly wire: Wire = "redis",
  ) {}

  private channel(routingKey: string) {
    return this.wire === "amqp" ? routingKey : `/${this.db}.celeryev/${routingKey}`;
  }

  private message(body: unknown, routingKey: string, hostname: string): PublishedMessage {
    return { channel: this.channel(routingKey), data: this.wire === "amqp" ? JSON.stringify(body) : envelope(body, routingKey, hostname) };
  }

  /** One task's life: task-sent, then received/started/succeeded batched by its worker. Four events. */
  task(id: string, now: number): PublishedMessage[] {
    const n = this.seq++;
    const name = NAMES[n % NAMES.length] as string;
    const worker = this.workers[n % this.workers.length] as string;
    const out: PublishedMessage[] = [];
    const sent = {
      hostname: "gen1234@producer",
      utcoffset: 0,
      pid: 1234,
      clock: ++this.clock,
      uuid: id,
      root_id: id,
      parent_id: null,
      name,
      args: `(${n}, 'user-${n % 997}@example.com')`,
      kwargs: "{'retry': True}",
      retries: 0,
      eta: null,
      expires: null,
      queue: "celery",
      exchange: "",
      routing_key: "celery",
      timestamp: now,
      type: "task-sent",
    };
    out.push(this.message(sent, "task.sent", sent.hostname));
    const base = { hostname: worker, utcoffset: 0, pid: 4242 };
    const events = [
      { ...base, clock: ++this.clock, uuid: id, name, args: sent.args, kwargs: sent.kwargs, root_id: id, parent_id: null, retries: 0, eta: null, expires: null, timestamp: now, type: "task-received" },
      { ...base, clock: ++this.clock, uuid: id, timestamp: now, type: "task-started" },
      { ...base, clock: ++this.clock, uuid: id, result: `{'ok': True, 'n': ${n}}`, runtime: 0.0042, timestamp: now, type: "task-succeeded" },
    ];
    const list = this.pending.get(worker) ?? [];
    list.push(...events);
    this.pending.set(worker, list);
    if (list.length >= this.multiSize) out.push(...this.flushWorker(worker));
    return out;
  }

  private flushWorker(worker: string): PublishedMessage[] {
    const list = this.pending.get(worker);
    if (!list || list.length === 0) return [];
    this.pending.set(worker, []);
    return [this.message(list, "task.multi", worker)];
  }

  /** Flushes every worker's batched task events. */
  flush(): PublishedMessage[] {
    return this.workers.flatMap((w) => this.flushWorker(w));
  }

  heartbeats(now: number): PublishedMessage[] {
    return this.workers.map((w) =>
      this.message(
        {
          hostname: w,
          utcoffset: 0,
          pid: 4242,
          clock: ++this.clock,
          freq: 2.0,
          active: 4,
          processed: this.seq,
          loadavg: [1.2, 1.1, 1.0],
          sw_ident: "py-celery",
          sw_ver: "5.2.6",
          sw_sys: "Linux",
          timestamp: now,
          type: "worker-heartbeat",
        },
        "worker.heartbeat",
        w,
      ),
    );
  }
}

export const EVENTS_PER_TASK = 4;

let taskSeq = 0;
/** A task id unique within this process and across runs. */
const newId = () => {
  const n = (taskSeq++).toString(16).padStart(12, "0");
  return `${crypto.randomUUID().slice(0, 24)}${n}`;
};

/** Where the traffic goes: Redis PUB/SUB, or RabbitMQ's `celeryev` exchange. */
export interface Publisher {
  wire: Wire;
  send(messages: PublishedMessage[]): Promise<void>;
  close(): Promise<void>;
}

export function redisPublisher(url: string): Publisher {
  const redis = new Redis(url, { lazyConnect: false });
  return {
    wire: "redis",
    async send(messages) {
      const p = redis.pipeline();
      for (const m of messages) p.publish(m.channel, m.data);
      await p.exec();
    },
    async close() {
      await redis.quit();
    },
  };
}

/** `url` as Celery spells it (`amqp://…//` for the default vhost). */
export async function amqpPublisher(url: string): Promise<Publisher> {
  // amqplib reads the path as the vhost name: Celery's `//` is vhost "/", which it wants as `/%2F`.
  const conn = await amqplib.connect(url.replace(/\/\/$/, "/%2F"));
  const ch = await conn.createChannel();
  await ch.assertExchange("celeryev", "topic", { durable: true });
  return {
    wire: "amqp",
    async send(messages) {
      for (const m of messages) {
        // As Celery publishes events: transient, JSON, the routing key saying the type.
        const ok = ch.publish("celeryev", m.channel, Buffer.from(m.data), { contentType: "application/json", contentEncoding: "utf-8", deliveryMode: 1 });
        if (!ok) await new Promise((resolve) => ch.once("drain", resolve));
      }
    },
    async close() {
      await ch.close();
      await conn.close();
    },
  };
}

/**
 * Publishes tasks at `eventsPerSecond` for `seconds`, in 10 ms ticks, with
 * heartbeats every 2 s, into a real Redis (`to` its URL) or through a
 * publisher (closed at the end). Calls onTick with the seconds elapsed, and
 * onProbe with some tasks' ids (one per 50 ms) once their last message went
 * out. Every task event has a unique key: the store holds exactly `events`
 * of them once all is written.
 */
export async function publishTraffic(
  to: string | Publisher,
  eventsPerSecond: number,
  seconds: number,
  onTick?: (elapsed: number) => void,
  onProbe?: (id: string) => void,
): Promise<{ tasks: number; events: number; seconds: number }> {
  const publisher = typeof to === "string" ? redisPublisher(to) : to;
  const gen = new TrafficGenerator(0, undefined, undefined, publisher.wire);
  const tasksPerSecond = eventsPerSecond / EVENTS_PER_TASK;
  const start = performance.now();
  let sent = 0;
  let lastBeat = 0;
  let lastProbe = 0;
  for (;;) {
    const elapsed = (performance.now() - start) / 1000;
    if (elapsed >= seconds) break;
    const due = Math.floor(tasksPerSecond * elapsed);
    const now = Date.now() / 1000;
    const out: PublishedMessage[] = [];
    const probes: string[] = [];
    while (sent < due) {
      const id = newId();
      out.push(...gen.task(id, now));
      sent++;
      if (onProbe && elapsed - lastProbe >= 0.05) {
        lastProbe = elapsed;
        probes.push(id);
      }
    }
    out.push(...gen.flush());
    if (elapsed - lastBeat >= 2) {
      lastBeat = elapsed;
      out.push(...gen.heartbeats(now));
    }
    if (out.length) {
      await publisher.send(out);
      for (const id of probes) onProbe?.(id);
    }
    onTick?.(elapsed);
    await Bun.sleep(Math.max(0, 10 - ((performance.now() - start) % 10)));
  }
  await publisher.send(gen.flush());
  const took = (performance.now() - start) / 1000;
  await publisher.close();
  return { tasks: sent, events: sent * EVENTS_PER_TASK, seconds: took };
}
