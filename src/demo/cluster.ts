/**
 * The simulated Celery cluster behind the demo's broker: workers, Beat and
 * the web application that sends tasks, each doing to the broker what its
 * Celery counterpart does (celery-wire.md):
 *
 * - a producer pushes a protocol-2 task message onto the queue's list and
 *   sends `task-sent`;
 * - a worker prefetches messages into `unacked`, says `task-received`,
 *   acknowledges on start (or at the end, with `acks_late`), says
 *   `task-started` and how it ended, batching its task events into
 *   `task.multi` messages; it heartbeats every 2 s, answers remote control
 *   from its pidbox (`enable_events`, `reserved`, `active`, `stats`,
 *   `active_queues`, `ping`, `revoke`), starts with task events off like a
 *   default worker, and restores messages past the visibility timeout when
 *   it starts (kombu's `restore_visible`);
 * - a killed worker just stops: no `worker-offline`, its running tasks stay
 *   STARTED, its prefetched messages stay in `unacked`.
 */
import { REPLY_EXCHANGE } from "../celery/control.ts";
import type { Delivery, DemoServer } from "./memory-broker.ts";
import { type Outcome, outcomeOf, type TaskCall } from "./tasks.ts";
import { kombuEnvelope, pyRepr, taskMessage } from "./wire.ts";

/** Unix seconds, finer than a millisecond: a task received and started in one tick still has its events in order. */
const now = () => (performance.timeOrigin + performance.now()) / 1000;
const SW = { sw_ident: "py-celery", sw_ver: "5.2.6", sw_sys: "Linux" };
/** Seconds between heartbeats: Celery's default. */
const FREQ = 2.0;
/** How often a worker's consumer loop looks for messages and flushes its event buffer. */
const TICK_MS = 100;

let nextPid = 4100;

/** What every Celery process stamps on its events. */
class EventSender {
  pid = nextPid++;
  clock = 0;
  constructor(readonly hostname: string) {}
  event(type: string, fields: Record<string, unknown>): Record<string, unknown> {
    this.clock++;
    return { hostname: this.hostname, utcoffset: 0, pid: this.pid, clock: this.clock, ...fields, timestamp: now(), type };
  }
}

/** The tasks sent, with how each will run (the "code" a worker would import). */
export class Registry {
  private readonly calls = new Map<string, TaskCall>();
  set(id: string, call: TaskCall) {
    this.calls.set(id, call);
    // Bounded: the demo runs for as long as anyone likes.
    if (this.calls.size > 20_000) this.calls.delete(this.calls.keys().next().value as string);
  }
  get(id: string): TaskCall | undefined {
    return this.calls.get(id);
  }
}

/** A producer: `app.send_task` from the web application, Beat, or a worker retrying a task. */
export class Producer {
  private readonly sender: EventSender;
  constructor(
    private readonly server: DemoServer,
    private readonly registry: Registry,
    hostname: string,
  ) {
    this.sender = new EventSender(hostname);
  }

  send(call: TaskCall, o: { id?: string; retries?: number; rootId?: string; parentId?: string | null } = {}): string {
    const id = o.id ?? crypto.randomUUID();
    const retries = o.retries ?? 0;
    const rootId = o.rootId ?? id;
    const parentId = o.parentId ?? null;
    this.registry.set(id, call);
    const expires = call.expiresInS === undefined ? null : new Date(Date.now() + call.expiresInS * 1000).toISOString();
    this.server.push(
      call.queue,
      taskMessage({ id, name: call.name, args: call.args, kwargs: call.kwargs, retries, rootId, parentId, origin: this.sender.hostname, queue: call.queue, eta: null, expires }),
    );
    // task_send_sent_event=True: one `task-sent` per message, on its own routing key.
    this.server.publishEvent(
      "task.sent",
      this.sender.hostname,
      this.sender.event("task-sent", {
        uuid: id,
        root_id: rootId,
        parent_id: parentId,
        name: call.name,
        args: pyRepr(call.args, true),
        kwargs: pyRepr(call.kwargs),
        retries,
        eta: null,
        expires,
        queue: call.queue,
        exchange: "",
        routing_key: call.queue,
      }),
    );
    return id;
  }
}

/** A task message as a worker reads it: headers, and the body's args and kwargs. */
interface Request {
  delivery: Delivery;
  id: string;
  name: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  argsrepr: string;
  kwargsrepr: string;
  retries: number;
  /** Unix seconds after which a worker discards it unrun; null without `expires`. */
  expiresAt: number | null;
  rootId: string;
  parentId: string | null;
  redelivered: boolean;
  call: TaskCall;
  startedAt: number | null;
  acknowledged: boolean;
  timer: ReturnType<typeof setTimeout> | null;
}

export interface WorkerOptions {
  hostname: string;
  queues: string[];
  concurrency: number;
  /** Messages prefetched beyond the free pool processes (Celery prefetches `concurrency × worker_prefetch_multiplier`). */
  prefetchExtra: number;
  visibilityTimeoutS: number;
  /** `celery worker -E`: task events on from the start (otherwise off until Crisper's `enable_events`, Celery's default). */
  sendTaskEvents?: boolean;
}

export class Worker {
  private sender: EventSender;
  private alive = false;
  private taskEvents = false;
  private processed = 0;
  private startedAt = 0;
  private readonly reserved: Request[] = [];
  private readonly active = new Map<string, Request>();
  private buffer: Record<string, unknown>[] = [];
  private timers: ReturnType<typeof setInterval>[] = [];
  private unsubscribe: (() => void) | null = null;
  private draining = false;
  private onDrained: (() => void) | null = null;
  private readonly retry: Producer;

  constructor(
    private readonly server: DemoServer,
    private readonly registry: Registry,
    readonly o: WorkerOptions,
  ) {
    this.sender = new EventSender(o.hostname);
    this.retry = new Producer(server, registry, o.hostname);
  }

  get hostname() {
    return this.o.hostname;
  }
  get isAlive() {
    return this.alive;
  }
  /** What it holds now: running, and prefetched. */
  holding(): { active: number; reserved: number } {
    return { active: this.active.size, reserved: this.reserved.length };
  }

  start() {
    if (this.alive) return;
    // A new process: new pid, counters from zero, task events off (Celery's default).
    this.sender = new EventSender(this.o.hostname);
    this.alive = true;
    this.draining = false;
    this.taskEvents = this.o.sendTaskEvents === true;
    this.processed = 0;
    this.startedAt = now();
    for (const q of this.o.queues) this.server.declareQueue(q);
    // kombu restores unacknowledged messages past the visibility timeout when a worker starts.
    this.server.restoreVisible(this.o.visibilityTimeoutS);
    this.unsubscribe = this.server.onControl((envelope) => this.onControl(envelope));
    this.workerEvent("worker-online");
    this.timers.push(setInterval(() => this.workerEvent("worker-heartbeat"), FREQ * 1000));
    this.timers.push(setInterval(() => this.tick(), TICK_MS));
    // Its consumer starts at once: what it just restored is likely its own to run.
    this.tick();
  }

  /** SIGKILL: everything stops at once; nothing is said, nothing acknowledged. */
  kill() {
    if (!this.alive) return;
    this.alive = false;
    this.stopTimers();
    for (const r of this.active.values()) if (r.timer) clearTimeout(r.timer);
    this.active.clear();
    this.reserved.length = 0;
    this.buffer = [];
  }

  /** Warm shutdown: stops taking messages, gives prefetched ones back, finishes what runs, says `worker-offline`. */
  shutdown(): Promise<void> {
    if (!this.alive) return Promise.resolve();
    this.draining = true;
    for (const r of this.reserved.splice(0)) {
      this.server.ack(r.delivery.tag);
      this.server.push(r.delivery.queue, r.delivery.message);
    }
    return new Promise((resolve) => {
      this.onDrained = resolve;
      this.maybeDrained();
    });
  }

  private maybeDrained() {
    if (!this.draining || this.active.size > 0 || !this.alive) return;
    this.flush();
    this.workerEvent("worker-offline");
    this.alive = false;
    this.stopTimers();
    this.onDrained?.();
    this.onDrained = null;
  }

  private stopTimers() {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  private workerEvent(type: "worker-online" | "worker-heartbeat" | "worker-offline") {
    const load = Math.min(4, this.active.size * 0.6 + Math.random() * 0.3);
    const event = this.sender.event(type, {
      freq: FREQ,
      active: this.active.size,
      processed: this.processed,
      loadavg: [Number(load.toFixed(2)), Number((load * 0.8).toFixed(2)), Number((load * 0.6).toFixed(2))],
      ...SW,
    });
    this.server.publishEvent(type.replace("-", "."), this.hostname, event);
  }

  private taskEvent(type: string, fields: Record<string, unknown>) {
    // The Lamport clock moves with every event, sent or not.
    const event = this.sender.event(type, fields);
    if (this.taskEvents) this.buffer.push(event);
  }

  private flush() {
    if (this.buffer.length === 0) return;
    const events = this.buffer;
    this.buffer = [];
    this.server.publishEvent("task.multi", this.hostname, events);
  }

  private tick() {
    if (!this.alive) return;
    if (!this.draining) {
      for (;;) {
        const free = this.o.concurrency - this.active.size;
        if (this.reserved.length >= Math.max(0, free) + this.o.prefetchExtra) break;
        const delivery = this.server.take(this.o.queues);
        if (!delivery) break;
        const r = this.read(delivery);
        if (!r) {
          this.server.ack(delivery.tag);
          continue;
        }
        if (r.expiresAt !== null && r.expiresAt < now()) {
          // Celery 5.2 on receipt of an expired task: acknowledged, revoked
          // with expired=True, never run (and no task-received).
          this.server.ack(delivery.tag);
          this.taskEvent("task-revoked", { uuid: r.id, terminated: false, signum: null, expired: true });
          continue;
        }
        this.reserved.push(r);
        this.taskEvent("task-received", {
          uuid: r.id,
          name: r.name,
          args: r.argsrepr,
          kwargs: r.kwargsrepr,
          root_id: r.rootId,
          parent_id: r.parentId,
          retries: r.retries,
          eta: null,
          expires: null,
        });
      }
      while (this.active.size < this.o.concurrency && this.reserved.length > 0) this.run(this.reserved.shift() as Request);
    }
    this.flush();
  }

  /** The message as Celery's worker reads it (protocol 2). */
  private read(delivery: Delivery): Request | null {
    try {
      const env = JSON.parse(delivery.message) as { headers: Record<string, unknown>; body: string; properties: { delivery_info?: { redelivered?: boolean } } };
      const h = env.headers;
      const [args, kwargs] = JSON.parse(Buffer.from(env.body, "base64").toString("utf8")) as [unknown[], Record<string, unknown>];
      const id = String(h.id);
      const name = String(h.task);
      return {
        delivery,
        id,
        name,
        args,
        kwargs,
        argsrepr: String(h.argsrepr),
        kwargsrepr: String(h.kwargsrepr),
        retries: Number(h.retries) || 0,
        expiresAt: typeof h.expires === "string" && Number.isFinite(Date.parse(h.expires)) ? Date.parse(h.expires) / 1000 : null,
        rootId: String(h.root_id ?? id),
        parentId: typeof h.parent_id === "string" ? h.parent_id : null,
        redelivered: h.redelivered === true || env.properties.delivery_info?.redelivered === true,
        call: this.registry.get(id) ?? { name, args, kwargs, queue: delivery.queue, runtimeS: 0.2 },
        startedAt: null,
        acknowledged: false,
        timer: null,
      };
    } catch {
      return null;
    }
  }

  private run(r: Request) {
    r.startedAt = now();
    this.active.set(r.id, r);
    if (!r.call.acksLate) {
      this.server.ack(r.delivery.tag);
      r.acknowledged = true;
    }
    this.taskEvent("task-started", { uuid: r.id });
    r.timer = setTimeout(() => this.finish(r), r.call.runtimeS * 1000);
  }

  private finish(r: Request) {
    if (!this.alive || this.active.get(r.id) !== r) return;
    this.active.delete(r.id);
    const runtime = now() - (r.startedAt ?? now());
    const outcome: Outcome = outcomeOf(r.call, r.retries);
    if (outcome.kind === "success") {
      this.taskEvent("task-succeeded", { uuid: r.id, result: pyRepr(outcome.result), runtime });
    } else if (outcome.kind === "failure") {
      this.taskEvent("task-failed", { uuid: r.id, exception: outcome.exception, traceback: outcome.traceback });
    } else {
      // `self.retry(countdown=…)`: the same id, sent again with retries + 1.
      this.taskEvent("task-retried", { uuid: r.id, exception: outcome.exception, traceback: outcome.traceback });
      const call = r.call;
      setTimeout(() => this.retry.send(call, { id: r.id, retries: r.retries + 1, rootId: r.rootId, parentId: r.parentId }), outcome.countdownS * 1000);
    }
    if (r.call.acksLate) this.server.ack(r.delivery.tag);
    this.processed++;
    this.maybeDrained();
  }

  /** The worker's pidbox: a remote-control request, answered if it asks for a reply. */
  private onControl(envelope: string) {
    if (!this.alive) return;
    let body: { method?: unknown; arguments?: Record<string, unknown>; destination?: unknown; ticket?: unknown; reply_to?: { routing_key?: unknown } };
    let expires: unknown;
    try {
      const env = JSON.parse(envelope) as { body: string; headers?: { expires?: unknown } };
      expires = env.headers?.expires;
      body = JSON.parse(Buffer.from(env.body, "base64").toString("utf8"));
    } catch {
      return;
    }
    if (typeof expires === "number" && expires < now()) return;
    if (Array.isArray(body.destination) && !body.destination.includes(this.hostname)) return;
    const value = this.control(String(body.method), body.arguments ?? {});
    const routingKey = body.reply_to?.routing_key;
    if (typeof body.ticket !== "string" || typeof routingKey !== "string") return;
    this.server.reply(
      routingKey,
      kombuEnvelope(
        { [this.hostname]: value },
        { exchange: REPLY_EXCHANGE, routingKey, headers: { ticket: body.ticket, clock: this.sender.clock, expires: now() + 10 }, deliveryMode: 1 },
      ),
    );
  }

  private control(method: string, args: Record<string, unknown>): unknown {
    switch (method) {
      case "ping":
        return { ok: "pong" };
      case "enable_events":
        if (this.taskEvents) return { ok: "task events already enabled" };
        this.taskEvents = true;
        return { ok: "task events enabled" };
      case "disable_events":
        this.taskEvents = false;
        return { ok: "task events disabled" };
      case "reserved":
        return this.reserved.map((r) => this.info(r));
      case "active":
        return [...this.active.values()].map((r) => this.info(r));
      case "active_queues":
        return this.o.queues.map((name) => ({
          name,
          exchange: { name, type: "direct", arguments: null, durable: true, passive: false, auto_delete: false, delivery_mode: null, no_declare: false },
          routing_key: name,
          queue_arguments: null,
          binding_arguments: null,
          consumer_arguments: null,
          durable: true,
          exclusive: false,
          auto_delete: false,
          no_ack: false,
          alias: null,
          bindings: [],
          no_declare: null,
          expires: null,
          message_ttl: null,
          max_length: null,
          max_length_bytes: null,
          max_priority: null,
        }));
      case "stats":
        return {
          broker: { hostname: "localhost", userid: null, virtual_host: "0", port: 6379, insist: false, ssl: false, transport: "redis", connect_timeout: 4, transport_options: { visibility_timeout: this.o.visibilityTimeoutS }, login_method: null, uri_prefix: null, heartbeat: 120.0, failover_strategy: "round-robin", alternates: [] },
          clock: String(this.sender.clock),
          uptime: Math.round(now() - this.startedAt),
          pid: this.sender.pid,
          pool: { "max-concurrency": this.o.concurrency, processes: Array.from({ length: this.o.concurrency }, (_, i) => this.sender.pid + 1 + i), "max-tasks-per-child": "N/A", "put-guarded-by-semaphore": false, timeouts: [0, 0], writes: { total: this.processed, avg: "1.00", all: "1.00", raw: String(this.processed), strategy: "fair", inqueues: { total: this.o.concurrency, active: this.active.size } } },
          prefetch_count: this.o.concurrency + this.o.prefetchExtra,
          rusage: { utime: 1.2, stime: 0.3, maxrss: 61_440, ixrss: 0, idrss: 0, isrss: 0, minflt: 21_000, majflt: 0, nswap: 0, inblock: 0, oublock: 8, msgsnd: 0, msgrcv: 0, nsignals: 0, nvcsw: 4000, nivcsw: 90 },
          total: {},
        };
      case "revoke":
        return this.revoke(String(args.task_id ?? ""), args.terminate === true, typeof args.signal === "string" ? args.signal : "SIGTERM");
      default:
        return { error: `No such control command: ${method.slice(0, 100)}` };
    }
  }

  private revoke(id: string, terminate: boolean, signal: string): unknown {
    const i = this.reserved.findIndex((r) => r.id === id);
    if (i >= 0) {
      const [r] = this.reserved.splice(i, 1) as [Request];
      this.server.ack(r.delivery.tag);
      this.taskEvent("task-revoked", { uuid: id, terminated: false, signum: null, expired: false });
    }
    const running = this.active.get(id);
    if (running && terminate) {
      if (running.timer) clearTimeout(running.timer);
      this.active.delete(id);
      if (running.call.acksLate) this.server.ack(running.delivery.tag);
      this.taskEvent("task-revoked", { uuid: id, terminated: true, signum: signal === "SIGKILL" ? 9 : 15, expired: false });
      this.maybeDrained();
    }
    return { ok: `tasks ${id} flagged as revoked` };
  }

  /** A request as `inspect active` / `inspect reserved` lists it (celery/worker/request.py `info()`). */
  private info(r: Request) {
    return {
      id: r.id,
      name: r.name,
      args: r.args,
      kwargs: r.kwargs,
      type: r.name,
      hostname: this.hostname,
      time_start: r.startedAt,
      acknowledged: r.acknowledged,
      delivery_info: { exchange: "", routing_key: r.delivery.queue, priority: 0, redelivered: r.redelivered },
      worker_pid: r.startedAt === null ? null : this.sender.pid + 1,
    };
  }
}

/** Celery Beat: sends each periodic task on time, while it runs. */
export class Beat {
  private timers: ReturnType<typeof setInterval>[] = [];
  constructor(
    private readonly producer: Producer,
    private readonly schedule: readonly { task: string; everyS: number; queue: string; runtimeS: number }[],
  ) {}
  get running() {
    return this.timers.length > 0;
  }
  start() {
    if (this.running) return;
    for (const s of this.schedule) {
      const send = () => this.producer.send({ name: s.task, args: [], kwargs: {}, queue: s.queue, runtimeS: s.runtimeS });
      send();
      this.timers.push(setInterval(send, s.everyS * 1000));
    }
  }
  stop() {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }
}
