/**
 * The Redis broker adapter: Celery's event stream over PUB/SUB, queue depths
 * and the unacked set from kombu's keys, remote control over the pidbox, and
 * the Redis result backend's publishes. Wire facts: celery-wire.md.
 *
 * Connections are separate on purpose: the subscriber connection only reads
 * (Redis cuts a PUB/SUB client that falls behind, so nothing else may share
 * or slow its socket), blocking BRPOPs for control replies get their own
 * short-lived connection, and everything else shares one command connection.
 */
import { Redis, type RedisOptions } from "ioredis";
import type { Logger } from "../../log.ts";
import type {
  BrokerPort,
  ControlCallOptions,
  QueueSample,
  RawMessage,
  StreamStatus,
  Subscription,
  UnackedMessage,
} from "../port.ts";
import { controlEnvelope, parseControlReply, replyBinding } from "./pidbox.ts";
import { isPlumbingExchange, isPlumbingQueue, parseBinding, parseRedisUrl, PRIORITY_STEPS, priorityQueueKey } from "./url.ts";

export interface RedisBrokerOptions {
  brokerUrl: string;
  resultBackendUrl?: string;
  /** kombu's `global_keyprefix`: prefixes every key and PUB/SUB channel. */
  globalKeyprefix?: string;
  log: Logger;
}

/** Past this many unacked messages, per-queue unacked counts come from a sample. */
const MAX_UNACKED_SCANNED = 50_000;
const MAX_QUEUES_SAMPLED = 1000;
/** How long subscribe() waits for the broker before returning and retrying in the background. */
const SUBSCRIBE_WAIT_MS = 3000;

const now = () => Date.now() / 1000;
/** Much faster than Buffer#toString for ASCII (measured); invalid UTF-8 becomes U+FFFD. */
const TEXT = new TextDecoder();

/** Reconnect forever, quickly at first: a monitor must come back on its own. */
const retryStrategy = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000);

export function createRedisBroker(opts: RedisBrokerOptions): BrokerPort {
  const { log } = opts;
  const prefix = opts.globalKeyprefix ?? "";
  const broker = parseRedisUrl(opts.brokerUrl);
  // lazyConnect: connections open on their first command, so an unused one
  // (the result backend's, without RESULT_BACKEND_URL) never does.
  const base: RedisOptions = { retryStrategy, lazyConnect: true };

  // Commands fail after one reconnect attempt so /readyz and sampling report an
  // outage promptly instead of queueing behind it.
  const commands = new Redis(broker.url, { ...base, maxRetriesPerRequest: 1, connectionName: "crisper" });
  commands.on("error", (e) => {
    lastErrors.set(commands, e.message);
    log.once(`redis-commands:${e.message}`, `broker connection: ${e.message}`);
  });
  let resultCommands: Redis | null = null;
  const subscribers: Redis[] = [];
  /** Set by close(): the drops that follow are ours, not outages. */
  let closing = false;
  const unsubscribed = new WeakSet<Redis>();
  const key = (k: string) => prefix + k;

  function backend(): Redis | null {
    if (!opts.resultBackendUrl) return null;
    if (!resultCommands) {
      resultCommands = new Redis(opts.resultBackendUrl, { ...base, maxRetriesPerRequest: 1, connectionName: "crisper-results" });
      const rc = resultCommands;
      rc.on("error", (e) => {
        lastErrors.set(rc, e.message);
        log.once(`redis-results:${e.message}`, `result backend connection: ${e.message}`);
      });
    }
    return resultCommands;
  }

  /**
   * One PSUBSCRIBE on its own connection, resubscribed by ioredis after every
   * reconnect. Each drop is reported, because events published meanwhile are
   * gone for good.
   */
  function psubscribe(
    url: string,
    pattern: string,
    stream: RawMessage["stream"],
    onMessage: (m: RawMessage) => void,
    onStatus: (s: StreamStatus) => void,
  ): Redis {
    const sub = new Redis(url, { ...base, autoResubscribe: true, maxRetriesPerRequest: null, connectionName: `crisper-${stream}` });
    let connected = false;
    let lastError = "connection closed";
    sub.on("pmessageBuffer", (_pattern: string, channel: Buffer, data: Buffer) => {
      onMessage({ stream, channel: TEXT.decode(channel), data: TEXT.decode(data), receivedAt: now() });
    });
    sub.on("error", (e: Error) => {
      lastError = e.message;
      if (!connected) log.once(`unreachable:${stream}:${e.message}`, `${stream === "events" ? "broker" : "result backend"} unreachable (${e.message}); retrying`);
    });
    sub.on("ready", () => {
      if (!connected) {
        connected = true;
        onStatus({ state: "connected", at: now() });
      }
    });
    sub.on("close", () => {
      if (connected && !closing && !unsubscribed.has(sub)) {
        connected = false;
        onStatus({ state: "disconnected", at: now(), reason: `${stream === "events" ? "broker" : "result backend"}: ${lastError}` });
      }
      lastError = "connection closed";
    });
    subscribers.push(sub);
    return sub;
  }

  /** Queue names from `_kombu.binding.<exchange>` sets, without Celery's plumbing. */
  async function discoverQueues(): Promise<{ queues: Set<string>; routes: Map<string, string> }> {
    const queues = new Set<string>();
    /** `exchange SEP routing_key` → queue, to attribute unacked messages. */
    const routes = new Map<string, string>();
    const bindingPrefix = key("_kombu.binding.");
    let cursor = "0";
    do {
      const [next, keys] = await commands.scan(cursor, "MATCH", `${escapeGlob(bindingPrefix)}*`, "COUNT", 1000);
      cursor = next;
      for (const k of keys) {
        const exchange = k.slice(bindingPrefix.length);
        if (isPlumbingExchange(exchange)) continue;
        for (const member of await commands.smembers(k)) {
          const b = parseBinding(member);
          if (!b || isPlumbingQueue(b.queue)) continue;
          if (queues.size < MAX_QUEUES_SAMPLED) queues.add(b.queue);
          routes.set(`${exchange}\x00${b.routingKey}`, b.queue);
        }
      }
    } while (cursor !== "0");
    return { queues, routes };
  }

  /** Entries of the `unacked` hash, their queue resolved through the bindings. */
  async function readUnacked(limit: number, routes: Map<string, string>): Promise<UnackedMessage[]> {
    const total = await commands.hlen(key("unacked"));
    const messages: UnackedMessage[] = [];
    const delivered = new Map<string, number>();
    if (total > 0) {
      const index = await commands.zrange(key("unacked_index"), "0", String(limit - 1), "WITHSCORES");
      for (let i = 0; i + 1 < index.length; i += 2) delivered.set(index[i] as string, Number(index[i + 1]));
      let cursor = "0";
      do {
        const [next, entries] = await commands.hscan(key("unacked"), cursor, "COUNT", 1000);
        cursor = next;
        for (let i = 0; i + 1 < entries.length && messages.length < limit; i += 2) {
          messages.push(parseUnacked(entries[i] as string, entries[i + 1] as string, delivered, routes));
        }
      } while (cursor !== "0" && messages.length < limit);
    }
    return messages;
  }

  return {
    async subscribe(onMessage, onStatus): Promise<Subscription> {
      const subs = [psubscribe(broker.url, `${escapeGlob(prefix)}/${broker.db}.celeryev/*`, "events", onMessage, onStatus)];
      if (opts.resultBackendUrl) {
        // Result-backend drops are logged, not reported as event-stream gaps:
        // the events stream is what the gap record describes.
        const resultLog = (s: StreamStatus) => {
          if (s.state === "disconnected") log.warn(`result backend stream lost (${s.reason}); reconnecting`);
        };
        subs.push(psubscribe(opts.resultBackendUrl, "celery-task-meta-*", "result-backend", onMessage, resultLog));
      }
      // A broker that is down at start is an outage like any other: ioredis
      // keeps reconnecting and subscribes once it can (the command waits in
      // its offline queue); meanwhile /readyz says the broker is unreachable.
      await Promise.all(
        subs.map(async (sub, i) => {
          const subscribed = sub.psubscribe(i === 0 ? `${escapeGlob(prefix)}/${broker.db}.celeryev/*` : "celery-task-meta-*");
          subscribed.catch(() => {});
          await Promise.race([subscribed, Bun.sleep(SUBSCRIBE_WAIT_MS)]);
        }),
      );
      return {
        async close() {
          for (const s of subs) unsubscribed.add(s);
          await Promise.all(subs.map((s) => quit(s)));
        },
      };
    },

    async sampleQueues(knownQueues = []) {
      await ensureConnected(commands);
      const { queues, routes } = await discoverQueues();
      for (const q of knownQueues) if (queues.size < MAX_QUEUES_SAMPLED && !isPlumbingQueue(q)) queues.add(q);
      const names = [...queues].sort();
      const pipeline = commands.pipeline();
      for (const q of names) for (const step of PRIORITY_STEPS) pipeline.llen(key(priorityQueueKey(q, step)));
      const lengths = (await pipeline.exec()) ?? [];
      const messages = await readUnacked(MAX_UNACKED_SCANNED, routes);
      const sampledAt = now();
      const unackedBy = new Map<string, { count: number; oldest: number | null }>();
      for (const m of messages) {
        const q = m.queue ?? "";
        const entry = unackedBy.get(q) ?? { count: 0, oldest: null };
        entry.count++;
        if (m.deliveredAt !== null && (entry.oldest === null || m.deliveredAt < entry.oldest)) entry.oldest = m.deliveredAt;
        unackedBy.set(q, entry);
      }
      return names.map((name, qi): QueueSample => {
        const byPriority: Record<string, number> = {};
        let depth = 0;
        PRIORITY_STEPS.forEach((step, si) => {
          const [err, n] = lengths[qi * PRIORITY_STEPS.length + si] ?? [null, 0];
          const count = err ? 0 : Number(n);
          byPriority[String(step)] = count;
          depth += count;
        });
        const u = unackedBy.get(name);
        return {
          name,
          depth,
          byPriority,
          unacked: u?.count ?? 0,
          oldestUnackedAgeS: u?.oldest != null ? Math.max(0, sampledAt - u.oldest) : null,
          sampledAt,
        };
      });
    },

    async unacked() {
      await ensureConnected(commands);
      const { routes } = await discoverQueues();
      return readUnacked(MAX_UNACKED_SCANNED, routes);
    },

    async broadcast(method, args = {}, destination) {
      await ensureConnected(commands);
      const envelope = controlEnvelope({
        method,
        arguments: args,
        destination: destination ?? null,
        expires: now() + 10,
      });
      await commands.publish(`${prefix}/${broker.db}.celery.pidbox`, envelope);
    },

    async call(method, args = {}, callOpts: ControlCallOptions = {}) {
      const timeoutMs = callOpts.timeoutMs ?? 1000;
      const limit = callOpts.limit ?? callOpts.destination?.length ?? Number.POSITIVE_INFINITY;
      await ensureConnected(commands);
      const oid = crypto.randomUUID();
      const ticket = crypto.randomUUID();
      const binding = replyBinding(oid);
      const bindingKey = key("_kombu.binding.reply.celery.pidbox");
      const replyList = key(binding.queue);
      // Without the binding kombu drops the worker's reply on the floor.
      await commands.sadd(bindingKey, binding.member);
      const blocking = commands.duplicate({ connectionName: "crisper-control", lazyConnect: false });
      blocking.on("error", () => {});
      const replies: Record<string, unknown> = {};
      try {
        await commands.publish(
          `${prefix}/${broker.db}.celery.pidbox`,
          controlEnvelope({
            method,
            arguments: args,
            destination: callOpts.destination ?? null,
            ticket,
            replyTo: oid,
            expires: now() + timeoutMs / 1000,
          }),
        );
        const deadline = Date.now() + timeoutMs;
        let count = 0;
        while (count < limit) {
          const left = deadline - Date.now();
          if (left <= 0) break;
          const popped = await blocking.brpop(replyList, Math.max(0.01, left / 1000));
          if (!popped) break;
          const reply = parseControlReply(popped[1], ticket);
          if (!reply) continue;
          for (const [worker, value] of Object.entries(reply)) {
            replies[worker] = value;
            count++;
          }
        }
      } finally {
        blocking.disconnect();
        await commands.srem(bindingKey, binding.member).catch(() => {});
        await commands.del(replyList).catch(() => {});
      }
      return replies;
    },

    async getResult(taskId) {
      const r = backend();
      if (!r) return null;
      await ensureConnected(r);
      return r.get(`celery-task-meta-${taskId}`);
    },

    async ping() {
      await ensureConnected(commands);
      await commands.ping();
    },

    async close() {
      closing = true;
      await Promise.all([...subscribers.map(quit), quit(commands), resultCommands ? quit(resultCommands) : Promise.resolve()]);
    },
  };
}

/** One `unacked` hash entry: JSON `[message, exchange, routing_key]`. */
function parseUnacked(tag: string, raw: string, delivered: Map<string, number>, routes: Map<string, string>): UnackedMessage {
  const out: UnackedMessage = {
    deliveryTag: tag,
    taskId: null,
    taskName: null,
    queue: null,
    deliveredAt: delivered.get(tag) ?? null,
    redelivered: false,
  };
  try {
    const [message, exchange, routingKey] = JSON.parse(raw) as [
      { headers?: Record<string, unknown>; properties?: { delivery_info?: Record<string, unknown> } },
      string,
      string,
    ];
    const headers = message?.headers ?? {};
    const info = message?.properties?.delivery_info ?? {};
    out.taskId = typeof headers.id === "string" ? headers.id.slice(0, 255) : null;
    out.taskName = typeof headers.task === "string" ? headers.task.slice(0, 255) : null;
    // Routed through (exchange, routing_key): the bindings say which queue;
    // the default exchange ("") routes straight to the queue named by the key.
    if (typeof routingKey === "string") out.queue = (routes.get(`${exchange ?? ""}\x00${routingKey}`) ?? routingKey).slice(0, 255);
    out.redelivered = headers.redelivered === true || info.redelivered === true;
  } catch {
    // An unreadable entry still counts as unacked; it just has no task id.
  }
  return out;
}

/** Last connection error per client, for a plain "unreachable" message. */
const lastErrors = new WeakMap<Redis, string>();

/**
 * Fails fast, with the reason, while a client is reconnecting: a command
 * would otherwise wait out ioredis's retries and fail with a message about
 * its settings.
 */
async function ensureConnected(r: Redis) {
  if (r.status === "wait") {
    try {
      await r.connect();
    } catch (e) {
      throw new Error(`unreachable (${lastErrors.get(r) ?? (e as Error).message})`);
    }
  }
  if (r.status === "connecting" || r.status === "connect") {
    // Mid-handshake: worth a short wait, not an error.
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        r.off("ready", done);
        r.off("close", done);
        resolve();
      };
      const timer = setTimeout(done, 2000);
      r.once("ready", done);
      r.once("close", done);
    });
  }
  if (r.status !== "ready") throw new Error(`unreachable (${lastErrors.get(r) ?? r.status})`);
}

async function quit(r: Redis) {
  try {
    if (r.status === "ready") await r.quit();
    else r.disconnect();
  } catch {
    r.disconnect();
  }
}

function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, "\\$&");
}
