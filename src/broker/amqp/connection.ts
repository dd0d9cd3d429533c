/**
 * An AMQP connection that comes back by itself: amqplib's connection, opened
 * on first use, reopened with backoff after every drop, each drop told to
 * whoever listens. Nothing Celery-specific lives here.
 *
 * The adapter holds two, as the Redis one does: one for the event stream
 * alone (its deliveries and acks), one for everything else (queue depths,
 * remote control), so that neither slows the other and a slow command never
 * holds up events.
 */
import type { Channel, ChannelModel } from "amqplib";
import { errorText, type Logger } from "../../log.ts";
import type { AmqpTarget } from "./url.ts";
import { type BrokerReachability, BrokerUnreachable } from "../reachability.ts";

/** Reconnect forever, quickly at first: a monitor must come back on its own. */
const retryDelayMs = (attempt: number) => Math.min(100 * 2 ** Math.min(attempt, 5), 3000);

/** Seconds between heartbeats: a broker host that vanishes is noticed within two of them. */
const HEARTBEAT_S = 10;
const CONNECT_TIMEOUT_MS = 5000;

export interface AmqpConnection {
  /**
   * The open connection, connecting first if need be. While the broker is
   * unreachable it fails within `waitMs` with "unreachable (reason)", so
   * /readyz and sampling report an outage promptly.
   */
  ready(waitMs?: number): Promise<ChannelModel>;
  /**
   * Runs `up` after every (re)connect (e.g. to declare and consume again)
   * and `down` after every drop, with the reason. Starts connecting.
   */
  watch(up: (model: ChannelModel) => Promise<void> | void, down: (reason: string) => void): void;
  close(): Promise<void>;
}

export function amqpConnection(target: AmqpTarget, connectionName: string, what: string, log: Logger, reachability?: BrokerReachability): AmqpConnection {
  let model: ChannelModel | null = null;
  let connecting: Promise<void> | null = null;
  let closed = false;
  let lastError = "not connected yet";
  let attempt = 0;
  let retryTimer: ReturnType<typeof setTimeout> | null = null;
  const ups: ((model: ChannelModel) => Promise<void> | void)[] = [];
  const downs: ((reason: string) => void)[] = [];
  /** Resolved at each successful connect, for ready() callers waiting on one. */
  let waiters: (() => void)[] = [];

  async function open(): Promise<void> {
    try {
      // Loaded at the first connection: a Crisper watching Redis alone never loads it.
      const { default: amqplib } = await import("amqplib");
      const m = await amqplib.connect(
        {
          protocol: target.tls ? "amqps" : "amqp",
          hostname: target.hostname,
          port: target.port,
          username: target.username,
          password: target.password,
          vhost: target.vhost,
          heartbeat: HEARTBEAT_S,
        },
        { clientProperties: { connection_name: connectionName }, timeout: CONNECT_TIMEOUT_MS },
      );
      if (closed) {
        await m.close().catch(() => {});
        return;
      }
      attempt = 0;
      model = m;
      reachability?.up();
      m.on("error", (e: Error) => {
        lastError = e.message;
      });
      m.on("close", (e?: Error) => {
        if (model !== m) return;
        model = null;
        const reason = e?.message ?? lastError ?? "connection closed";
        lastError = reason;
        if (closed) return;
        log.warn(`${what} connection lost (${reason}); reconnecting`);
        for (const d of downs) d(`${what}: ${reason}`);
        scheduleRetry();
      });
      if (lastError !== "not connected yet") log.info(`${what} connection back`);
      for (const up of ups) {
        try {
          await up(m);
        } catch (e) {
          // A failed set-up (e.g. a declare refused) closes the channel, not
          // the connection: say so, and try again from scratch shortly.
          log.error(`${what}: ${errorText(e)}`);
          await m.close().catch(() => {});
          return;
        }
      }
      const ws = waiters;
      waiters = [];
      for (const w of ws) w();
    } catch (e) {
      lastError = errorText(e);
      if (reachability) reachability.down(lastError);
      else log.once(`amqp-unreachable:${connectionName}:${lastError}`, `${what} unreachable (${lastError}); retrying`);
      scheduleRetry();
    }
  }

  function scheduleRetry() {
    if (closed || retryTimer) return;
    retryTimer = setTimeout(() => {
      retryTimer = null;
      start();
    }, retryDelayMs(attempt++));
  }

  function start() {
    if (closed || model || connecting) return;
    connecting = open().finally(() => {
      connecting = null;
    });
  }

  return {
    async ready(waitMs = 2000) {
      if (model) return model;
      start();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, waitMs);
        function done() {
          clearTimeout(timer);
          waiters = waiters.filter((w) => w !== done);
          resolve();
        }
        waiters.push(done);
      });
      if (!model) throw new BrokerUnreachable(lastError);
      return model;
    },

    watch(up, down) {
      ups.push(up);
      downs.push(down);
      if (model) void Promise.resolve(up(model)).catch((e) => log.error(`${what}: ${errorText(e)}`));
      else start();
    },

    async close() {
      closed = true;
      if (retryTimer) clearTimeout(retryTimer);
      for (const w of waiters) w();
      waiters = [];
      await connecting;
      const m = model;
      model = null;
      if (m) await m.close().catch(() => {});
    },
  };
}

/**
 * A channel of its own for one piece of work, closed after it whatever
 * happens: a refused operation (a passive declare of a missing queue)
 * closes its channel, which must not take anything else down.
 */
export async function withChannel<T>(model: ChannelModel, work: (ch: Channel) => Promise<T>): Promise<T> {
  const ch = await model.createChannel();
  // A channel closed by the broker also emits "error"; the awaited operation rejects with it.
  ch.on("error", () => {});
  try {
    return await work(ch);
  } finally {
    await ch.close().catch(() => {});
  }
}

/** The AMQP reply code of a channel or connection error (404 NOT_FOUND, 406 PRECONDITION_FAILED), if any. */
export function replyCode(e: unknown): number | null {
  if (typeof e === "object" && e !== null && "code" in e && typeof e.code === "number") return e.code;
  return null;
}
